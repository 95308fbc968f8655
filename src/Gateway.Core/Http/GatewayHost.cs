using System.Net;
using Gateway.Config;
using Gateway.Observability;
using Gateway.Proxy;
using Gateway.Routing;

namespace Gateway.Http;

/// <summary>The composed gateway: snapshot, upstream pool, request path and Kestrel. Used by <c>gateway serve</c> and by tests (port 0).</summary>
public sealed class GatewayHost : IAsyncDisposable
{
    private readonly HttpServer _server;
    private readonly UpstreamClient _upstream;

    /// <param name="logSink">Where log lines go; stdout when null (tests pass a stream to capture them).</param>
    public GatewayHost(GatewayOptions options, Stream? logSink = null)
    {
        Options = options;
        Metrics = new GatewayMetrics();
        Log = new GatewayLog(options.LogLevel, options.LogFormat, logSink, Metrics.LogLinesDropped);
        Snapshots = new SnapshotHolder();
        var snapshot = Snapshot.FromConfig(options);
        Metrics.Attach(snapshot);
        Snapshots.Swap(snapshot);
        _upstream = new UpstreamClient(options.Proxy);
        var proxy = new ProxyHandler(Snapshots, _upstream, options, Metrics, Log);
        Application = new GatewayApplication(Snapshots, proxy, Metrics, Log);
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
    public GatewayMetrics Metrics { get; }
    /// <summary>The request and lifecycle log; flushed when the host is disposed.</summary>
    public GatewayLog Log { get; }
    public GatewayApplication Application { get; }
    public int Port => _server.Port;

    public Task StartAsync(CancellationToken cancellationToken = default) => _server.StartAsync(Application, cancellationToken);

    /// <summary>Stops accepting and drains in-flight requests until <paramref name="cancellationToken"/> fires.</summary>
    public Task StopAsync(CancellationToken cancellationToken) => _server.StopAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _upstream.Dispose();
        await Log.DisposeAsync();
    }
}
