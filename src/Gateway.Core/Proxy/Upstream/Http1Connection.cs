using System.Buffers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Gateway.Net;

namespace Gateway.Proxy.Upstream;

/// <summary>
/// One keep-alive TCP connection to a backend and the state of the one exchange it carries at a time. Everything per connection is
/// allocated once (this object, its socket on an event loop, the body stream); per request it rents one
/// buffer for the request head (+ small body) and one for the response head, and gives both back as soon as they are drained, so a
/// stream waiting between tokens holds no buffer at all.
/// </summary>
internal sealed partial class Http1Connection
{
    // 16 KB: a short answer (a JSON body, or a burst of SSE events) usually arrives with its head, and reading it in one receive
    // spares a syscall and a relay round. It is rented only once the head's first bytes are there, and goes back as soon as its
    // bytes are drained: a request waiting for its answer, or a stream between tokens, holds none.
    private const int HeadBufferSize = 16 * 1024;

    /// <summary>Bodies up to this size are copied behind the head and go out in one send; larger ones in a second send.</summary>
    private const int CopyBodyLimit = 64 * 1024;

    private readonly LoopSocket _socket;
    private readonly Http1Pool _pool;
    private int _closed;

    // The response head buffer; after the head it holds the body bytes that arrived with it, [_start, _end).
    private byte[]? _buffer;
    private int _start, _end;

    private byte[] _contentType = [];
    private CancellationToken _requestToken;
    private CancellationTokenRegistration _abortOnCancel;

    public Http1Connection(Http1Pool pool, LoopSocket socket)
    {
        _pool = pool;
        _socket = socket;
        Body = new Http1BodyStream(this);
    }

    /// <summary>Bumped when an exchange ends: a stale <see cref="Http1Response"/> copy no longer matches and cannot touch the next one.</summary>
    public int Generation => Volatile.Read(ref _generation);
    private int _generation;

    /// <summary>True once the connection completed an exchange and went back to the pool.</summary>
    public bool Reused { get; private set; }

    /// <summary><see cref="Environment.TickCount64"/> when it was last put in the pool.</summary>
    public long IdleSince { get; set; }

    public int StatusCode { get; private set; }
    public long ContentLength { get; private set; }
    public ReadOnlySpan<byte> ContentType => _contentType.AsSpan(0, _contentTypeLength);
    private int _contentTypeLength;

    public Http1BodyStream Body { get; }

    /// <summary>Created on first use and kept: a connection read only through <see cref="Body"/> never pays for it.</summary>
    public Http1BodyReader BodyReader => _bodyReader ??= new Http1BodyReader(this);
    private Http1BodyReader? _bodyReader;

    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>
    /// The event loop whose thread the connection's reads resume on; its index picks the pool's idle stack. (The socket is
    /// registered before the connection is made, so the fallback is never taken; it keeps a bug here from failing a return.)
    /// </summary>
    public int LoopIndex => _socket.Loop?.Index ?? 0;

    /// <summary>For tests and the memory probe: whether the connection holds a rented buffer right now.</summary>
    internal bool HoldsBuffer => _buffer is not null;

    /// <summary>Closed here, or its end already reported by the event loop: no syscall needed to rule it out.</summary>
    public bool KnownDead => IsClosed || _socket.PeerClosed;

    /// <summary>
    /// No edge since its last read drained the socket: nothing arrived while it was idle (no syscall; what the loop has counted).
    /// Bytes after a complete response are a broken or hostile server's, and would be read as the next request's answer.
    /// </summary>
    public bool QuietWhileIdle => !_socket.MayRead;

    /// <summary>
    /// An idle connection is usable when the server has neither closed it nor sent anything: a readable idle socket means EOF, a
    /// reset or stray bytes, all of which rule it out. One recv(MSG_PEEK), which also clears an edge that came for bytes already
    /// read (so the next reuse is syscall-free again).
    /// </summary>
    public bool IsUsableWhenIdle() => !IsClosed && !_socket.Peek();

    /// <summary>Starts an exchange: cancelling <paramref name="cancellationToken"/> from now until the response is disposed closes the socket.</summary>
    public void Begin(CancellationToken cancellationToken)
    {
        _requestToken = cancellationToken;
        _bodyDone = false;
        _keepAlive = false;
        StatusCode = 0;
        ContentLength = -1;
        _contentTypeLength = 0;
        _bodyReader?.Reset();
        // Closing the socket is what makes vLLM stop generating, so cancellation must reach it even while nobody is reading.
        if (cancellationToken.CanBeCanceled)
            _abortOnCancel = cancellationToken.UnsafeRegister(static s => ((Http1Connection)s!).Close(), this);
    }

    [AsyncMethodBuilder(typeof(PooledTaskBuilder))]
    public async ValueTask SendRequestAsync(Http1Route route, ReadOnlyMemory<byte> body, string? requestId,
        IReadOnlyList<KeyValuePair<string, string>>? headers, int headLength)
    {
        bool copyBody = body.Length <= CopyBodyLimit;
        byte[]? buffer = ArrayPool<byte>.Shared.Rent(copyBody ? headLength + body.Length : headLength);
        try
        {
            int length = RequestWriter.Write(buffer, route, body.Length, requestId, headers);
            if (copyBody)
            {
                body.Span.CopyTo(buffer.AsSpan(length));
                length += body.Length;
            }
            // On an event loop a whole request goes out with the batch's others, once the loop has handled the batch (BatchSends
            // owns the buffer from here). Elsewhere, or with a body too large to copy, it goes now: it almost always fits the socket
            // buffer, so SendAsync sends at once and waits only for what the kernel cannot take.
            if (copyBody && BatchSends.TryQueue(_socket, buffer, length))
            {
                buffer = null;
                return;
            }
            await _socket.SendAsync(buffer.AsMemory(0, length)).ConfigureAwait(false);
            if (!copyBody) await _socket.SendAsync(body).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Nothing came back yet: on a reused connection this is the server's idle close racing our send.
            throw Failure(e, Reused ? UpstreamFailure.ReusedConnectionClosed : UpstreamFailure.ClosedBeforeHeaders,
                "The connection to the upstream failed while sending the request.", default);
        }
        finally
        {
            if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // Reading the response head comes in steps that Http1Client's send awaits itself, instead of in an async method of the
    // connection: one async method fewer to resume per request. WaitForHeadAsync while HeadNeedsFirstBytes, BeginHead, then
    // TryTakeHead what is buffered and ReceiveHeadAsync more (HeadReceiveFailed / HeadBytesReceived after each) until it is in.

    /// <summary>
    /// No head buffer yet. A head can take the whole generation (a non-stream answer): its first bytes are awaited holding no
    /// buffer, as a stream between tokens does, with <see cref="WaitForHeadAsync"/>.
    /// </summary>
    public bool HeadNeedsFirstBytes => _buffer is null;

    /// <summary>Readiness only: it cannot fail (a close ends it, and the receive that follows reports the close).</summary>
    public ValueTask WaitForHeadAsync() => _socket.WaitReadableAsync();

    /// <summary>Starts reading a head into a 16 KB buffer: one receive usually takes the head and a short body together.</summary>
    public void BeginHead()
    {
        _buffer ??= ArrayPool<byte>.Shared.Rent(HeadBufferSize);
        _start = _end = 0;
        _headReceived = false;
    }

    /// <summary>
    /// True once the final (non-1xx) head is parsed and the body framing it announces is set up; false when more bytes are needed
    /// (room is made for them). Throws for an invalid or too large head.
    /// </summary>
    public bool TryTakeHead(int maxHeadBytes)
    {
        while (_end > _start)
        {
            var status = ResponseHeadParser.TryParse(_buffer.AsSpan(_start, _end - _start), out var head, out var error);
            if (status == HeadStatus.Invalid) throw Failure(null, UpstreamFailure.InvalidResponse, "Invalid upstream response: " + error, default);
            if (status != HeadStatus.Complete)
            {
                if (_end - _start >= maxHeadBytes) throw HeadTooLarge(maxHeadBytes);
                break;
            }
            if (head.Length > maxHeadBytes) throw HeadTooLarge(maxHeadBytes);
            if (head.StatusCode >= 200)
            {
                Accept(head);
                return true;
            }
            // 100 Continue, 103 Early Hints: interim heads without a body; the real one follows. 101 we never asked for.
            if (head.StatusCode == 101) throw Failure(null, UpstreamFailure.InvalidResponse, "Invalid upstream response: 101 Switching Protocols.", default);
            _start += head.Length;
        }
        MakeRoomForHead();
        return false;
    }

    /// <summary>Receives more head bytes after a false <see cref="TryTakeHead"/>; its failure goes through <see cref="HeadReceiveFailed"/>.</summary>
    public ValueTask<int> ReceiveHeadAsync() => _socket.ReceiveAsync(_buffer.AsMemory(_end));

    /// <summary>What a failed head receive (SocketException, ObjectDisposedException) is reported as.</summary>
    public Exception HeadReceiveFailed(Exception e) =>
        Failure(e, HeadLost, "The upstream connection was reset before the response headers.", default);

    /// <summary>Takes in <paramref name="n"/> received head bytes; 0 (the upstream closed) throws.</summary>
    public void HeadBytesReceived(int n)
    {
        if (n == 0) throw Failure(null, HeadLost, "The upstream closed the connection before the response headers.", default);
        _headReceived = true;
        _end += n;
    }

    private bool _headReceived; // a head receive of this exchange got bytes: a close after that is not a stale reused connection

    /// <summary>A reused connection that ends before any byte was the server's idle close (retried); anything else is a failure.</summary>
    private UpstreamFailure HeadLost => Reused && !_headReceived ? UpstreamFailure.ReusedConnectionClosed : UpstreamFailure.ClosedBeforeHeaders;

    private Exception HeadTooLarge(int max) =>
        Failure(null, UpstreamFailure.HeadersTooLarge, $"The upstream response head exceeds {max} bytes.", default);

    /// <summary>Shifts unparsed bytes to the front, or moves them to a buffer twice the size when they fill it.</summary>
    private void MakeRoomForHead()
    {
        var buffer = _buffer!;
        if (_end < buffer.Length) return;
        int length = _end - _start;
        if (_start > 0 && length < buffer.Length / 2)
        {
            buffer.AsSpan(_start, length).CopyTo(buffer);
        }
        else
        {
            var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
            buffer.AsSpan(_start, length).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(buffer);
            _buffer = larger;
        }
        _start = 0;
        _end = length;
    }

    private void Accept(in ResponseHead head)
    {
        StatusCode = head.StatusCode;
        if (head.ContentTypeLength > 0)
        {
            if (_contentType.Length < head.ContentTypeLength) _contentType = new byte[Math.Max(64, head.ContentTypeLength)];
            _buffer.AsSpan(_start + head.ContentTypeOffset, head.ContentTypeLength).CopyTo(_contentType);
            _contentTypeLength = head.ContentTypeLength;
        }
        _keepAlive = !head.ConnectionClose && !head.Http10;
        if (StatusCode is 204 or 304)
        {
            _framing = Framing.None; // no body, whatever the headers say (RFC 9112 §6.3)
            _bodyDone = true;
            ContentLength = 0;
        }
        else if (head.Chunked)
        {
            _framing = Framing.Chunked;
            _chunked.Reset();
        }
        else if (head.OtherTransferCoding || head.ContentLength < 0)
        {
            _framing = Framing.UntilClose;
            _keepAlive = false;
        }
        else
        {
            _framing = Framing.ContentLength;
            ContentLength = _remaining = head.ContentLength;
            _bodyDone = _remaining == 0;
        }
        _start += head.Length;
        if (_start == _end) ReturnBuffer();
    }

    private void ReturnBuffer()
    {
        if (_buffer is { } buffer)
        {
            _buffer = null;
            _start = _end = 0;
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Closes the socket (once). Safe from any thread, also from the cancellation callback while an operation is pending: the pending
    /// receive or send then fails and its owner sees <see cref="IsClosed"/>. The rented buffer is given back by the owner, never here.
    /// </summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        _socket.Close();
        _pool.OnClosed();
    }

    /// <summary>Ends the exchange and drops the connection: used on any failure before a response was handed out.</summary>
    public void Discard()
    {
        _abortOnCancel.Dispose();
        _abortOnCancel = default;
        _requestToken = default;
        Close();
        ReturnBuffer();
        _bodyReader?.Reset();
        Interlocked.Increment(ref _generation);
    }

    /// <summary>
    /// The exception for a failed socket operation. Any failure closes the socket; a cancelled request is reported as cancellation
    /// (that is what closed the socket), never as an upstream failure.
    /// </summary>
    private Exception Failure(Exception? inner, UpstreamFailure failure, string message, CancellationToken readToken)
    {
        Close();
        if (_requestToken.IsCancellationRequested) return new OperationCanceledException(_requestToken);
        if (readToken.IsCancellationRequested) return new OperationCanceledException(readToken);
        return new UpstreamException(failure, message, inner);
    }
}
