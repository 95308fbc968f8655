using System.Net;
using Gateway.Admin;
using Gateway.Config;
using Gateway.Control;
using Gateway.Limits;
using Gateway.Limits.Resp;
using Gateway.Observability;
using Gateway.Proxy;
using Gateway.Routing;

namespace Gateway.Http;

/// <summary>
/// The composed gateway: control plane, snapshot, upstream pool, request path and Kestrel. Used by <c>gateway serve</c> (always with a
/// store) and by tests (port 0). Without a store the snapshot comes straight from the config file and nothing can change it at run
/// time: tests and benchmarks of the data plane use that to start without a data directory.
/// </summary>
public sealed class GatewayHost : IAsyncDisposable
{
    private readonly HttpServer _server;
    private readonly UpstreamClient _upstream;
    private readonly HealthChecker? _healthChecker;
    private readonly CancellationTokenSource _drainExpired = new();

    /// <summary>
    /// After the drain time runs out, how long open streams get to write their error event and end before the server aborts what
    /// is left. <c>gateway serve</c> gives the host this much (and more) beyond server.shutdown_timeout.
    /// </summary>
    public static readonly TimeSpan StreamEndGrace = TimeSpan.FromSeconds(1);

    /// <param name="logSink">Where log lines go; stdout when null (tests pass a stream to capture them).</param>
    /// <param name="store">The control plane's store (the host owns it from here); the first snapshot is loaded from it in
    /// <see cref="StartAsync"/>, before the server accepts a request.</param>
    public GatewayHost(GatewayOptions options, Stream? logSink = null, Storage.IStore? store = null)
    {
        Options = options;
        Metrics = new GatewayMetrics { Enabled = options.MetricsEnabled };
        Log = new GatewayLog(options.LogLevel, options.LogFormat, logSink, Metrics.LogLinesDropped);
        Snapshots = new SnapshotHolder();
        Health = new BackendHealthRegistry();
        _upstream = new UpstreamClient(options.Proxy);
        if (store is null)
        {
            var snapshot = Snapshot.FromConfig(options, health: Health);
            Prepare(snapshot);
            Snapshots.Swap(snapshot);
        }
        // health_check.interval = 0 turns active checks off (and with them passive ejection, which only they could undo).
        _healthChecker = options.HealthCheck.Interval > TimeSpan.Zero ? new HealthChecker(Snapshots, Health, options.HealthCheck) : null;
        if (_healthChecker is not null) _healthChecker.StateChanged += OnHealthChanged;
        Limiter = CreateLimiter(options);
        Control = store is null ? null : new ControlPlane(store, Snapshots, options, Health, Prepare, Log, _redis);
        if (Control is not null && _healthChecker is not null)
        {
            // What this instance's checks see goes into the store, for the admin API; coalesced, never per check.
            var heartbeat = options.HealthCheck.Interval > TimeSpan.FromSeconds(30) ? options.HealthCheck.Interval : TimeSpan.FromSeconds(30);
            HealthWriter = new BackendHealthWriter(store!, Snapshots, Log, heartbeat);
            _healthChecker.StateChanged += (_, _, _) => HealthWriter.OnFlip();
            _healthChecker.RoundCompleted += HealthWriter.OnRound;
        }
        if (Control is not null)
            KeyUsageWriter = new KeyUsageWriter(store!, Control.KeyUsage, Log, options.KeyLastUsedFlushInterval);
        var proxy = new ProxyHandler(Snapshots, _upstream, Limiter, options, Metrics, Log, Control?.KeyResolver, _drainExpired.Token);
        Admin = new AdminApi(options, Control, Health, Log);
        Application = new GatewayApplication(Snapshots, proxy, Metrics, Log, Control?.KeyResolver, Admin);
        var address = IPAddress.TryParse(options.Server.Host, out var ip) ? ip : IPAddress.Any;
        _server = new HttpServer(new IPEndPoint(address, options.Server.Port), new HttpServerLimits
        {
            KeepAliveTimeout = options.Server.IdleTimeout,
            RequestHeadersTimeout = options.Server.ReadTimeout,
            InlineIo = options.Server.InlineIo,
            LoopTransport = options.Server.Transport == ServerTransport.Loop,
            WriteTimeout = options.Server.WriteTimeout,
        });
    }

    /// <summary>Redis configured: limits exact across instances. Otherwise in-process, exact for this one.</summary>
    private IRateLimiter CreateLimiter(GatewayOptions options)
    {
        if (options.RedisUrl is not { } url) return new InProcessRateLimiter(options.RateLimitWindow);
        _redis = StackExchange.Redis.ConnectionMultiplexer.Connect(RedisConnection.Parse(url)); // pub/sub, and the limiter below if need be
        Action onError = () => Metrics.RateLimiterErrors.Inc();
        // The loop client speaks plain TCP to one server; TLS and StackExchange.Redis's option strings stay with the multiplexer.
        if (options.RedisLimiterClient == RedisLimiterClientKind.Loop && RespEndpoint.TryParse(url) is { } endpoint)
            return new RedisRateLimiter(endpoint, options.RateLimitWindow, options.RateLimiterTimeout, Log.Warn, onError);
        return new RedisRateLimiter(_redis, options.RateLimitWindow, options.RateLimiterTimeout, Log.Warn, onError);
    }

    private StackExchange.Redis.ConnectionMultiplexer? _redis;

    private void OnHealthChanged(string modelId, string url, bool healthy)
    {
        foreach (var model in Snapshots.Current?.Models ?? [])
            if (model.ModelId == modelId)
                foreach (var backend in model.Backends)
                    if (string.Equals(backend.Url, url.TrimEnd('/'), StringComparison.OrdinalIgnoreCase))
                        Metrics.For(model, backend).Health.Set(healthy && backend.Active && model.Active ? 1 : 0); // as Attach has it
        Log.Info($"backend {url} for {modelId} is now {(healthy ? "healthy" : "unhealthy")}");
    }

    public GatewayOptions Options { get; }
    /// <summary>Null when the host runs on the config file alone (no store).</summary>
    public ControlPlane? Control { get; }
    /// <summary>Writes backend health into the store; null without a store or without active checks.</summary>
    public BackendHealthWriter? HealthWriter { get; }
    /// <summary>Persists keys' last-use times every <c>auth.last_used_flush_interval</c> and at shutdown; null without a store.</summary>
    public KeyUsageWriter? KeyUsageWriter { get; }
    /// <summary>The admin API; off (404 with the reason) without a store or without an admin key.</summary>
    public AdminApi Admin { get; }
    public SnapshotHolder Snapshots { get; }
    public BackendHealthRegistry Health { get; }
    public IRateLimiter Limiter { get; }
    public GatewayMetrics Metrics { get; }
    /// <summary>The request and lifecycle log; flushed when the host is disposed.</summary>
    public GatewayLog Log { get; }
    public GatewayApplication Application { get; }
    public int Port => _server.Port;
    /// <summary>The upstream pools (SocketsHttpHandler, and Http1Client when proxy.upstream_client = "http1").</summary>
    public UpstreamClient Upstream => _upstream;

    /// <summary>Readies a snapshot before it serves a request: its backends' metric children and upstream routes, resolved once.</summary>
    private void Prepare(Snapshot snapshot)
    {
        Metrics.Attach(snapshot);
        _upstream.Attach(snapshot);
    }

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (Control is not null) await Control.StartAsync(cancellationToken);
        await _server.StartAsync(Application, cancellationToken);
        _healthChecker?.Start();
        HealthWriter?.Start();
        KeyUsageWriter?.Start();
    }

    /// <summary>
    /// Stops accepting and drains in-flight requests until <paramref name="cancellationToken"/> fires. Then streams still open end
    /// with an OpenAI-shaped <c>shutting_down</c> error event (never a silent cut a client could take for a complete answer), and
    /// after <see cref="StreamEndGrace"/> the server aborts whatever is left (requests whose backend has not answered yet, so their
    /// clients got nothing to mistake for an answer).
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        using var abort = new CancellationTokenSource();
        var stopping = _server.StopAsync(abort.Token);
        try
        {
            await stopping.WaitAsync(cancellationToken).ConfigureAwait(false);
            return;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested) { }
        Log.Warn("shutdown: drain time is up; ending open streams with an error event");
        await _drainExpired.CancelAsync().ConfigureAwait(false);
        await Task.WhenAny(stopping, Task.Delay(StreamEndGrace)).ConfigureAwait(false);
        await abort.CancelAsync().ConfigureAwait(false);
        await stopping.ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        if (_healthChecker is not null) await _healthChecker.DisposeAsync();
        if (Limiter is IAsyncDisposable limiter) await limiter.DisposeAsync();
        if (HealthWriter is not null) await HealthWriter.DisposeAsync();
        // After the server (no request can use a key any more), before the control plane closes the store: the final flush.
        if (KeyUsageWriter is not null) await KeyUsageWriter.DisposeAsync();
        if (Control is not null) await Control.DisposeAsync();
        if (_redis is not null) await _redis.DisposeAsync();
        _upstream.Dispose();
        _drainExpired.Dispose();
        await Log.DisposeAsync();
    }
}
