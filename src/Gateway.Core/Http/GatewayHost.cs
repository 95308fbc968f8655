using System.Net;
using Gateway.Config;
using Gateway.Limits;
using Gateway.Proxy;
using Gateway.Routing;

namespace Gateway.Http;

/// <summary>The composed gateway: snapshot, upstream pool, request path and Kestrel. Used by <c>gateway serve</c> and by tests (port 0).</summary>
public sealed class GatewayHost : IAsyncDisposable
{
    private readonly HttpServer _server;
    private readonly UpstreamClient _upstream;
    private readonly HealthChecker? _healthChecker;

    public GatewayHost(GatewayOptions options)
    {
        Options = options;
        Snapshots = new SnapshotHolder();
        Health = new BackendHealthRegistry();
        Snapshots.Swap(Snapshot.FromConfig(options, health: Health));
        // health_check.interval = 0 turns active checks off (passive marks still apply).
        _healthChecker = options.HealthCheck.Interval > TimeSpan.Zero ? new HealthChecker(Snapshots, Health, options.HealthCheck) : null;
        _upstream = new UpstreamClient(options.Proxy);
        Limiter = new InProcessRateLimiter(options.RateLimitWindow);
        var proxy = new ProxyHandler(Snapshots, _upstream, Limiter, options);
        Application = new GatewayApplication(Snapshots, proxy);
        var address = IPAddress.TryParse(options.Server.Host, out var ip) ? ip : IPAddress.Any;
        _server = new HttpServer(new IPEndPoint(address, options.Server.Port), new HttpServerLimits
        {
            KeepAliveTimeout = options.Server.IdleTimeout,
            RequestHeadersTimeout = options.Server.ReadTimeout,
            InlineIo = options.Server.InlineIo,
        });
    }

    public GatewayOptions Options { get; }
    public SnapshotHolder Snapshots { get; }
    public BackendHealthRegistry Health { get; }
    public IRateLimiter Limiter { get; }
    public GatewayApplication Application { get; }
    public int Port => _server.Port;

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        await _server.StartAsync(Application, cancellationToken);
        _healthChecker?.Start();
    }

    /// <summary>Stops accepting and drains in-flight requests until <paramref name="cancellationToken"/> fires.</summary>
    public Task StopAsync(CancellationToken cancellationToken) => _server.StopAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        if (_healthChecker is not null) await _healthChecker.DisposeAsync();
        if (Limiter is IAsyncDisposable limiter) await limiter.DisposeAsync();
        _upstream.Dispose();
    }
}
