using System.IO.Pipelines;
using Gateway.Proxy.Upstream;
using Microsoft.Net.Http.Headers;

namespace Gateway.Proxy;

/// <summary>
/// A backend's response as step 10 reads it, from whichever client carried the request: SocketsHttpHandler's
/// <see cref="HttpResponseMessage"/> or <see cref="Http1Client"/>'s <see cref="Http1Response"/>. A struct over the one or the other,
/// so choosing the client per request allocates nothing. Dispose it when done: that ends the exchange (an http1 connection whose
/// body was not read to its end is closed, never pooled).
/// </summary>
internal readonly struct UpstreamResponse : IDisposable
{
    private readonly HttpResponseMessage? _message;
    private readonly Http1Response _http1;

    public UpstreamResponse(HttpResponseMessage message) => _message = message;

    public UpstreamResponse(Http1Response response) => _http1 = response;

    public int StatusCode => _message is { } m ? (int)m.StatusCode : _http1.StatusCode;

    /// <summary>The body length the headers announce; null when they do not (chunked).</summary>
    public long? ContentLength => _message is { } m ? m.Content.Headers.ContentLength : _http1.ContentLength is >= 0 and var n ? n : null;

    public bool IsEventStream => _message is { } m
        ? m.Content.Headers.NonValidated.TryGetValues(HeaderNames.ContentType, out var values) &&
          values.ToString().StartsWith("text/event-stream", StringComparison.OrdinalIgnoreCase) // NonValidated: no header parsing
        : _http1.IsEventStream;

    /// <summary>The Content-Type to relay a JSON body with: <c>application/json</c> (parameters dropped) or the upstream's own value.</summary>
    public string JsonContentType
    {
        get
        {
            if (_message is { } m)
            {
                var type = m.Content.Headers.ContentType;
                return type?.MediaType == "application/json" ? "application/json" : type?.ToString() ?? "application/json";
            }
            var raw = _http1.ContentType;
            if (raw.IsEmpty || IsJson(raw)) return "application/json";
            return _http1.GetContentTypeString() ?? "application/json";
        }
    }

    /// <summary><c>application/json</c> with or without parameters: the same test as the handler path's parsed media type.</summary>
    private static bool IsJson(ReadOnlySpan<byte> contentType)
    {
        int end = contentType.IndexOf((byte)';');
        return (end < 0 ? contentType : contentType[..end]).TrimEnd(" \t"u8).SequenceEqual("application/json"u8);
    }

    /// <summary>
    /// The whole body without a read when it is already in hand (http1, Content-Length, arrived with the head: the usual small JSON
    /// answer); valid until <see cref="Dispose"/>. False for anything else, which is then read through <see cref="OpenBodyAsync"/>.
    /// </summary>
    public bool TryTakeBufferedBody(out ReadOnlySpan<byte> body)
    {
        if (_message is null) return _http1.TryTakeBufferedBody(out body);
        body = default;
        return false;
    }

    /// <summary>The body as a stream (JSON relay). An http1 body stream is the connection's own, reused: disposing it does nothing.</summary>
    public ValueTask<Stream> OpenBodyAsync(CancellationToken cancellationToken) =>
        _message is { } m ? new ValueTask<Stream>(m.Content.ReadAsStreamAsync(cancellationToken)) : new ValueTask<Stream>(_http1.Body);

    /// <summary>
    /// The body as a <see cref="PipeReader"/> (SSE relay): http1's own reader (one pooled buffer, de-chunked in place, none held between
    /// events); for the handler, a StreamPipeReader with zero-byte reads over the content stream. Complete it when done.
    /// </summary>
    public ValueTask<PipeReader> OpenBodyReaderAsync(CancellationToken cancellationToken) =>
        _message is null ? new ValueTask<PipeReader>(_http1.BodyReader) : OpenStreamReaderAsync(_message, cancellationToken);

    private static readonly StreamPipeReaderOptions StreamReaderOptions =
        new(bufferSize: 4096, minimumReadSize: 1024, leaveOpen: false, useZeroByteReads: true);

    private static async ValueTask<PipeReader> OpenStreamReaderAsync(HttpResponseMessage message, CancellationToken cancellationToken) =>
        PipeReader.Create(await message.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), StreamReaderOptions);

    /// <summary>
    /// Drops the handler's reference to the request body once the response is streaming (its pooled buffer goes back to the pool
    /// then). http1 sent the body from the caller's memory before it returned the response: nothing to drop.
    /// </summary>
    public void ForgetRequestBody()
    {
        if (_message?.RequestMessage?.Content is BufferContent sent) sent.Forget();
    }

    public void Dispose()
    {
        if (_message is { } m) m.Dispose();
        else _http1.Dispose();
    }
}
