namespace Gateway.Proxy.Upstream;

/// <summary>
/// The response body as a <see cref="Stream"/>, for code that wants one (PipeReader.Create, SseParser). One per connection, reused
/// across exchanges; it reads through the connection, so it holds no buffer of its own. Async only: the gateway never blocks a thread
/// on an upstream read.
/// </summary>
internal sealed class Http1BodyStream(Http1Connection connection) : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        connection.ReadBodyAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        connection.ReadBodyAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("The upstream body is read asynchronously only.");
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <summary>Nothing to release: the <see cref="Http1Response"/> owns the exchange, so disposing the stream first is harmless.</summary>
    protected override void Dispose(bool disposing) { }
}
