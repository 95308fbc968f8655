using System.Net;
using Gateway.Config;
using Gateway.Proxy.Upstream;
using Gateway.Routing;

namespace Gateway.Proxy;

/// <summary>
/// The connection pools to every backend. Always an <see cref="HttpMessageInvoker"/> (never HttpClient, which can buffer) over a
/// <see cref="SocketsHttpHandler"/> with proxying, redirects, decompression and cookies off; with <c>proxy.upstream_client =
/// "http1"</c> (the default) also the gateway's own <see cref="Http1Client"/>, which then carries every request to an http://
/// backend (https ones stay on the handler: TLS is not worth re-implementing).
/// </summary>
public sealed class UpstreamClient : IDisposable
{
    public UpstreamClient(ProxyOptions options)
    {
        Handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            ConnectTimeout = options.ConnectTimeout,
            PooledConnectionIdleTimeout = options.PooledConnectionIdleTimeout,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            MaxConnectionsPerServer = int.MaxValue,
            EnableMultipleHttp2Connections = true,
            ActivityHeadersPropagator = null, // no W3C trace headers we did not ask for
            // An abandoned response (the client left mid-stream) must close its connection at once so vLLM stops generating;
            // draining it to reuse the socket would keep the GPU busy for nobody.
            MaxResponseDrainSize = 0,
        };
        Invoker = new HttpMessageInvoker(Handler, disposeHandler: true);
        Options = options;
        if (options.UpstreamClient == UpstreamClientKind.Http1)
        {
            Http1 = new Http1Client(new Http1ClientOptions
            {
                ConnectTimeout = options.ConnectTimeout,
                // 0 tells the handler not to keep idle connections; the client needs a positive time, and 1 ms keeps none either.
                IdleTimeout = options.PooledConnectionIdleTimeout > TimeSpan.Zero ? options.PooledConnectionIdleTimeout : TimeSpan.FromMilliseconds(1),
            });
        }
    }

    public SocketsHttpHandler Handler { get; }
    public HttpMessageInvoker Invoker { get; }
    public ProxyOptions Options { get; }

    /// <summary>The HTTP/1.1 client for http:// backends; null unless <c>proxy.upstream_client = "http1"</c>.</summary>
    public Http1Client? Http1 { get; }

    /// <summary>
    /// The <see cref="Http1Client"/> route of <paramref name="backend"/> × <paramref name="endpoint"/>, or null when the request goes
    /// through <see cref="Invoker"/> (the switch is off, or the backend is https). A field read on the request path: the routes are
    /// resolved once per snapshot (<see cref="Attach"/>), or by the first request on a backend of a snapshot nobody attached.
    /// </summary>
    public Http1Route? RouteFor(Backend backend, ProxyEndpoint endpoint)
    {
        if (Http1 is null) return null;
        // The slot is typed object so Routing does not depend on Proxy; the owner check keeps two gateways in one process apart.
        var routes = backend.UpstreamSlot is BackendRoutes r && ReferenceEquals(r.Owner, Http1) ? r : Resolve(backend, Http1);
        return endpoint switch
        {
            ProxyEndpoint.ChatCompletions => routes.ChatCompletions,
            ProxyEndpoint.Completions => routes.Completions,
            _ => routes.Embeddings,
        };
    }

    /// <summary>Resolves the routes of every backend in <paramref name="snapshot"/> before it serves a request.</summary>
    public void Attach(Snapshot snapshot)
    {
        if (Http1 is null) return;
        foreach (var model in snapshot.Models)
            foreach (var backend in model.Backends)
                Resolve(backend, Http1);
    }

    private static BackendRoutes Resolve(Backend backend, Http1Client client)
    {
        BackendRoutes routes;
        try
        {
            routes = backend.ChatCompletions.Scheme == Uri.UriSchemeHttp
                ? new BackendRoutes(client, client.CreateRoute(backend.ChatCompletions), client.CreateRoute(backend.Completions), client.CreateRoute(backend.Embeddings))
                : new BackendRoutes(client, null, null, null);
        }
        catch (ArgumentException)
        {
            routes = new BackendRoutes(client, null, null, null); // a URL the client does not take (user info): the handler does
        }
        backend.UpstreamSlot = routes;
        return routes;
    }

    public void Dispose()
    {
        Invoker.Dispose();
        Http1?.Dispose();
    }
}

/// <summary>A backend's three <see cref="Http1Client"/> routes; all null for a backend the handler serves (https).</summary>
internal sealed record BackendRoutes(Http1Client Owner, Http1Route? ChatCompletions, Http1Route? Completions, Http1Route? Embeddings);

/// <summary>A request body over memory the gateway owns; re-serializable, so the handler may resend it on a dead pooled connection.</summary>
internal sealed class BufferContent : HttpContent
{
    private ReadOnlyMemory<byte> _body;

    public BufferContent(ReadOnlyMemory<byte> body)
    {
        _body = body;
        Headers.TryAddWithoutValidation("Content-Type", "application/json");
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        stream.WriteAsync(_body).AsTask();

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
        stream.WriteAsync(_body, cancellationToken).AsTask();

    /// <summary>Drops the reference to the body once it is sent (its pooled array may be reused by then).</summary>
    public void Forget() => _body = default;

    protected override bool TryComputeLength(out long length)
    {
        length = _body.Length;
        return true;
    }
}
