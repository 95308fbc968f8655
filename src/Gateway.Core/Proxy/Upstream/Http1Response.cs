using System.IO.Pipelines;
using System.Text;

namespace Gateway.Proxy.Upstream;

/// <summary>
/// The response head of one exchange and access to its body. A struct handle over the connection (nothing allocated per request);
/// it carries the exchange's generation, so a copy used or disposed after <see cref="Dispose"/> cannot reach the connection's next
/// exchange. Dispose it exactly when done: that returns the connection to the pool if the body was read to the end, else closes it.
/// </summary>
public readonly struct Http1Response : IDisposable
{
    private readonly Http1Connection? _connection;
    private readonly int _generation;

    internal Http1Response(Http1Connection connection)
    {
        _connection = connection;
        _generation = connection.Generation;
    }

    private Http1Connection Connection =>
        _connection is { } c && c.Generation == _generation ? c : throw new ObjectDisposedException(nameof(Http1Response));

    public int StatusCode => Connection.StatusCode;

    /// <summary>The body length from Content-Length (0 for 204/304); -1 for chunked or read-until-close bodies.</summary>
    public long ContentLength => Connection.ContentLength;

    /// <summary>The raw Content-Type value (empty when absent), valid until <see cref="Dispose"/>.</summary>
    public ReadOnlySpan<byte> ContentType => Connection.ContentType;

    public bool IsEventStream => ContentType.Length >= 17 && Ascii.EqualsIgnoreCase(ContentType[..17], "text/event-stream"u8);

    /// <summary>The Content-Type as a string: the common values are shared constants, anything else is decoded (allocates).</summary>
    public string? GetContentTypeString()
    {
        var value = ContentType;
        if (value.IsEmpty) return null;
        if (value.SequenceEqual("application/json"u8)) return "application/json";
        if (value.SequenceEqual("text/event-stream; charset=utf-8"u8)) return "text/event-stream; charset=utf-8";
        return Encoding.Latin1.GetString(value);
    }

    /// <summary>
    /// The body as a read-only, async-only stream (one per connection, reused). Disposing the stream does nothing; disposing the
    /// response ends the exchange. Zero-byte reads wait for data without a buffer (PipeReader's <c>useZeroByteReads</c>).
    /// </summary>
    public Stream Body => Connection.Body;

    /// <summary>
    /// The body as a PipeReader over one pooled buffer, de-chunked in place, with no buffer held while waiting for data (one per
    /// connection, reused; the relay's reader). Completing it does not end the exchange; disposing the response does. Use either
    /// this or <see cref="Body"/>/<see cref="ReadAsync"/> for one response, not both.
    /// </summary>
    public PipeReader BodyReader => Connection.BodyReader;

    /// <summary>The whole body, in place, when it came with the head and has a Content-Length; valid until <see cref="Dispose"/>.</summary>
    public bool TryTakeBufferedBody(out ReadOnlySpan<byte> body) => Connection.TryTakeBufferedBody(out body);

    /// <summary>Reads body bytes; 0 = the body ended. See <see cref="Body"/> for zero-length reads.</summary>
    public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Connection.ReadBodyAsync(buffer, cancellationToken);

    public void Dispose() => _connection?.Release(_generation);
}
