using System.Net;
using Gateway.Config;
using Gateway.Proxy;
using Gateway.Routing;

namespace Gateway.Http;

/// <summary>The composed gateway: snapshot, upstream pool, request path and Kestrel. Used by <c>gateway serve</c> and by tests (port 0).</summary>
public sealed class GatewayHost : IAsyncDisposable
{
    private readonly HttpServer _server;
    private readonly UpstreamClient _upstream;

    public GatewayHost(GatewayOptions options)
    {
        Options = options;
        Snapshots = new SnapshotHolder();
        Snapshots.Swap(Snapshot.FromConfig(options));
        _upstream = new UpstreamClient(options.Proxy);
        var proxy = new ProxyHandler(Snapshots, _upstream, options);
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
    public GatewayApplication Application { get; }
    public int Port => _server.Port;

    public Task StartAsync(CancellationToken cancellationToken = default) => _server.StartAsync(Application, cancellationToken);

    /// <summary>Stops accepting and drains in-flight requests until <paramref name="cancellationToken"/> fires.</summary>
    public Task StopAsync(CancellationToken cancellationToken) => _server.StopAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _upstream.Dispose();
    }
}
