namespace Gateway.Proxy.Upstream;

/// <summary>What went wrong on the way to (or back from) a backend, in the terms the caller's failover needs.</summary>
public enum UpstreamFailure
{
    /// <summary>Refused, unreachable or unresolvable: nothing was sent, another backend may take the request.</summary>
    ConnectFailed,

    /// <summary>The TCP connect did not finish within <see cref="Http1ClientOptions.ConnectTimeout"/>: nothing was sent.</summary>
    ConnectTimeout,

    /// <summary>
    /// A pooled keep-alive connection turned out to be closed by the server (vLLM closes idle ones after 5 s) before any response
    /// byte. The server dropped the request unread, so it is safe to send again; the client already did so once on a new connection.
    /// </summary>
    ReusedConnectionClosed,

    /// <summary>A fresh connection was reset or closed before the response head was complete: the server may have seen the request.</summary>
    ClosedBeforeHeaders,

    /// <summary>The status line, a header or the chunked framing is not HTTP/1.1 this client understands.</summary>
    InvalidResponse,

    /// <summary>The response head exceeded <see cref="Http1ClientOptions.MaxResponseHeaderBytes"/>.</summary>
    HeadersTooLarge,

    /// <summary>The connection ended (EOF or reset) before the body its framing announced was complete.</summary>
    BodyIncomplete,
}

/// <summary>
/// A failure of the HTTP/1.1 upstream client. An <see cref="IOException"/>, so code written against a response stream (the SSE
/// relay catches IOException as "upstream broke") needs no new catch clause. Cancellation is never this type: a cancelled call
/// throws <see cref="OperationCanceledException"/>.
/// </summary>
public sealed class UpstreamException : IOException
{
    public UpstreamException(UpstreamFailure failure, string message, Exception? inner = null) : base(message, inner) => Failure = failure;

    public UpstreamFailure Failure { get; }

    /// <summary>
    /// True when the backend cannot have started on the request, so failing over to another backend does no double work:
    /// connect failures and a dead pooled connection.
    /// </summary>
    public bool RequestNotSent => Failure is UpstreamFailure.ConnectFailed or UpstreamFailure.ConnectTimeout or UpstreamFailure.ReusedConnectionClosed;
}
