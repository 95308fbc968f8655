using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Gateway.Net;

namespace Gateway.Proxy.Upstream;

/// <summary>
/// A minimal HTTP/1.1 client for exactly what the gateway sends to vLLM: <c>POST</c> of a JSON body with a few headers, a response
/// read as JSON (Content-Length) or SSE (chunked). Plain http only: an https backend keeps using SocketsHttpHandler (TLS, ALPN and
/// certificate handling are not worth re-implementing). No redirects, proxies, cookies, decompression, HTTP/2 or request pipelining.
/// <para>
/// Per request it allocates nothing in steady state: routes pre-encode the fixed head bytes, connections and their body streams are
/// reused, buffers come from <see cref="System.Buffers.ArrayPool{T}"/>, and the async methods use pooled builders.
/// </para>
/// </summary>
public sealed class Http1Client : IDisposable
{
    private readonly ConcurrentDictionary<(string Host, int Port), Http1Pool> _pools = new();
    private readonly Timer _sweeper;
    private int _disposed;

    public Http1Client(Http1ClientOptions? options = null)
    {
        Options = options ?? new Http1ClientOptions();
        if (Options.IdleTimeout <= TimeSpan.Zero) throw new ArgumentException("IdleTimeout must be positive.", nameof(options));
        if (Options.MaxResponseHeaderBytes < 256) throw new ArgumentException("MaxResponseHeaderBytes must be at least 256.", nameof(options));
        // A quarter of the idle timeout (50 ms–1 s): an idle socket outlives its timeout by at most that. Renting also skips expired
        // connections, so the sweep only decides when the file descriptor is given back, never whether a stale one is used.
        var period = TimeSpan.FromMilliseconds(Math.Clamp(Options.IdleTimeout.TotalMilliseconds / 4, 50, 1000));
        _sweeper = new Timer(static s => ((Http1Client)s!).Sweep(), this, period, period);
    }

    public Http1ClientOptions Options { get; }

    /// <summary>
    /// The route for an upstream URL (<c>http://host:port/path</c>). Call once per backend × endpoint and keep it: it holds the
    /// pre-encoded head and its pool, so a request looks nothing up. Routes to the same host:port share one pool.
    /// </summary>
    public Http1Route CreateRoute(Uri uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        if (!uri.IsAbsoluteUri || uri.Scheme != Uri.UriSchemeHttp)
            throw new ArgumentException($"'{uri}' is not an http:// URL; https backends stay on SocketsHttpHandler.", nameof(uri));
        if (uri.UserInfo.Length > 0) throw new ArgumentException("User info in an upstream URL is not supported.", nameof(uri));
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var pool = _pools.GetOrAdd((uri.DnsSafeHost, uri.Port), static (key, options) => new Http1Pool(key.Host, key.Port, options), Options);
        return new Http1Route(uri, pool);
    }

    /// <summary>
    /// Sends <c>POST</c> with <paramref name="body"/> (as application/json) and returns once the response head is in. The body
    /// memory must stay valid until this returns. Cancelling <paramref name="cancellationToken"/> at any time until the response is
    /// disposed closes the connection at once (that is what stops a vLLM generation) and surfaces as
    /// <see cref="OperationCanceledException"/>.
    /// <para>
    /// A pooled connection the server had closed is detected before use (poll), and if the server's close races the send so that the
    /// request gets no response byte, it is sent once more on a new connection. Failures are <see cref="UpstreamException"/>.
    /// </para>
    /// </summary>
    /// <exception cref="ArgumentException">A header name or value that cannot go on the wire as is.</exception>
    public ValueTask<Http1Response> SendAsync(Http1Route route, ReadOnlyMemory<byte> body, string? requestId = null,
        IReadOnlyList<KeyValuePair<string, string>>? headers = null, CancellationToken cancellationToken = default) =>
        SendAsync(route, body, requestId, headers, EventLoop.Current, cancellationToken);

    /// <summary>
    /// <see cref="SendAsync(Http1Route, ReadOnlyMemory{byte}, string?, IReadOnlyList{KeyValuePair{string, string}}?, CancellationToken)"/>
    /// on a connection of <paramref name="home"/> (the client connection's loop): the answer resumes on that loop's thread even
    /// when the caller went off the loops before (a rate-limit check in Redis, a key looked up in PostgreSQL). Null: any loop's.
    /// </summary>
    [AsyncMethodBuilder(typeof(PooledTaskBuilder<>))]
    internal async ValueTask<Http1Response> SendAsync(Http1Route route, ReadOnlyMemory<byte> body, string? requestId,
        IReadOnlyList<KeyValuePair<string, string>>? headers, EventLoop? home, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(route);
        int headLength = RequestWriter.Measure(route, body.Length, requestId, headers);
        cancellationToken.ThrowIfCancellationRequested();
        var pool = route.Pool;
        bool retried = false;
        while (true)
        {
            // The retry takes a new connection: whatever closed one idle connection (a server restart) likely closed its peers too.
            var connection = (retried ? null : pool.TryRentIdle(home)) ?? await pool.ConnectAsync(home, cancellationToken).ConfigureAwait(false);
            try
            {
                connection.Begin(cancellationToken);
                await connection.SendRequestAsync(route, body, requestId, headers, headLength).ConfigureAwait(false);
                // The response head, read here in the connection's steps rather than in an awaited method of its own: one async
                // method fewer to resume per request.
                if (connection.HeadNeedsFirstBytes) await connection.WaitForHeadAsync().ConfigureAwait(false);
                connection.BeginHead();
                while (!connection.TryTakeHead(Options.MaxResponseHeaderBytes))
                {
                    int n;
                    try { n = await connection.ReceiveHeadAsync().ConfigureAwait(false); }
                    catch (Exception e) when (e is SocketException or ObjectDisposedException) { throw connection.HeadReceiveFailed(e); }
                    connection.HeadBytesReceived(n);
                }
                return new Http1Response(connection);
            }
            catch (UpstreamException e) when (e.Failure == UpstreamFailure.ReusedConnectionClosed && !retried)
            {
                connection.Discard();
                retried = true;
            }
            catch
            {
                connection.Discard();
                throw;
            }
        }
    }

    /// <summary>Connections opened to <paramref name="route"/>'s host:port since the start.</summary>
    public long ConnectionsOpened(Http1Route route) => route.Pool.ConnectionsOpened;

    /// <summary>Connections to <paramref name="route"/>'s host:port open now, idle or busy.</summary>
    public long ConnectionsOpen(Http1Route route) => route.Pool.ConnectionsOpen;

    /// <summary>Idle connections to <paramref name="route"/>'s host:port.</summary>
    public int IdleConnections(Http1Route route) => route.Pool.IdleCount;

    private void Sweep()
    {
        long now = Environment.TickCount64;
        foreach (var pool in _pools.Values) pool.Sweep(now);
    }

    /// <summary>Closes the idle connections; busy ones close when their response is disposed.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _sweeper.Dispose();
        foreach (var pool in _pools.Values) pool.Dispose();
    }
}
