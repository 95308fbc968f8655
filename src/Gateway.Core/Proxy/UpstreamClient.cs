using System.Net;
using Gateway.Config;

namespace Gateway.Proxy;

/// <summary>
/// The one connection pool to every backend: an <see cref="HttpMessageInvoker"/> (never HttpClient, which can buffer) over a
/// <see cref="SocketsHttpHandler"/> with proxying, redirects, decompression and cookies off.
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
    }

    public SocketsHttpHandler Handler { get; }
    public HttpMessageInvoker Invoker { get; }
    public ProxyOptions Options { get; }

    public void Dispose() => Invoker.Dispose();
}

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
