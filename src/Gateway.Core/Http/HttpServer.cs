using System.Net;
using Gateway.Http.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Gateway.Http;

/// <summary>
/// A hand-built Kestrel server running one raw <see cref="IHttpApplication{TContext}"/>: no routing middleware, no HttpContext,
/// no DI container. Used by the gateway and by the built-in vLLM simulator.
/// </summary>
public sealed class HttpServer : IAsyncDisposable
{
    private readonly KestrelServer _server;
    private int _started;

    public HttpServer(IPEndPoint endpoint, HttpServerLimits? limits = null, ILoggerFactory? loggerFactory = null)
    {
        loggerFactory ??= NullLoggerFactory.Instance;
        limits ??= new HttpServerLimits();
        var options = new KestrelServerOptions { AddServerHeader = false, AllowSynchronousIO = false };
        options.Limits.MaxRequestBodySize = null; // enforced by the gateway itself with an OpenAI-shaped 413
        options.Limits.KeepAliveTimeout = limits.KeepAliveTimeout;
        options.Limits.RequestHeadersTimeout = limits.RequestHeadersTimeout;
        options.Limits.MaxConcurrentConnections = null;
        // LLM streams trickle, so no rate: only a write that waits too long. The loop transport bounds each send itself; on
        // Kestrel's socket transport its response rate check does it: with a rate no real write comes near, a flush still
        // pending write_timeout after the last write aborts the connection (Kestrel's grace period must exceed its 1 s heartbeat).
        options.Limits.MinResponseDataRate = !limits.LoopTransport && limits.WriteTimeout > TimeSpan.FromSeconds(1)
            ? new MinDataRate(bytesPerSecond: 1e12, gracePeriod: limits.WriteTimeout)
            : null;
        options.Listen(endpoint, o => o.Protocols = HttpProtocols.Http1);
        IConnectionListenerFactory transport = limits.LoopTransport ? new LoopTransportFactory(limits.InlineIo, limits.Backlog, limits.WriteTimeout) : new SocketTransportFactory(Options.Create(new SocketTransportOptions
        {
            NoDelay = true,
            UnsafePreferInlineScheduling = limits.InlineIo,
            // Kestrel's default of 512 overflows when thousands of streaming clients connect at once: the kernel drops SYNs and
            // clients retry after 1 s, 3 s, … (measured: 504s and ejected backends at 6,000 streams). The kernel caps this at
            // net.core.somaxconn (4096 on current Linux).
            Backlog = limits.Backlog,
        }), loggerFactory);
        _server = new KestrelServer(Options.Create(options), transport, loggerFactory);
    }

    /// <summary>The port actually bound (useful with port 0).</summary>
    public int Port { get; private set; }

    public async Task StartAsync(IHttpApplication<IFeatureCollection> application, CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0) throw new InvalidOperationException("Server already started.");
        await _server.StartAsync(application, cancellationToken).ConfigureAwait(false);
        var address = _server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        Port = address is null ? 0 : new Uri(address).Port;
    }

    /// <summary>Stops accepting, lets in-flight requests finish until <paramref name="cancellationToken"/> fires, then aborts the rest.</summary>
    public Task StopAsync(CancellationToken cancellationToken) => _server.StopAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try { await _server.StopAsync(cts.Token).ConfigureAwait(false); } catch (OperationCanceledException) { }
        _server.Dispose();
    }
}

public sealed record HttpServerLimits
{
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(120);
    public TimeSpan RequestHeadersTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Run request code on the socket threads instead of hopping to the thread pool (see ServerOptions.InlineIo).</summary>
    public bool InlineIo { get; init; }
    /// <summary>The listen queue for connections not yet accepted.</summary>
    public int Backlog { get; init; } = 4096;
    /// <summary>Kestrel on the gateway's own epoll loops (<see cref="Transport.LoopTransportFactory"/>) instead of its socket transport.</summary>
    public bool LoopTransport { get; init; }
    /// <summary>
    /// The longest a response write may wait for the client to take bytes (nginx's send_timeout): past it the connection is
    /// closed, which ends a stream and its upstream exchange. The loop transport bounds each send; on Kestrel's socket transport
    /// its response data rate check does (over 1 s only, with a heartbeat's slack).
    /// </summary>
    public TimeSpan WriteTimeout { get; init; } = TimeSpan.FromSeconds(300);
}
