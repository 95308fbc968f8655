using Gateway.Net;
using System.Buffers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Gateway.Proxy.Upstream;

internal sealed partial class Http1Connection
{
    private enum Framing : byte { None, ContentLength, Chunked, UntilClose }

    private Framing _framing;
    private long _remaining;
    private ChunkedDecoder _chunked;
    private bool _bodyDone;
    private bool _keepAlive;

    /// <summary>
    /// Reads body bytes straight into <paramref name="destination"/> (chunked framing is removed in place); 0 = the body ended.
    /// A zero-length <paramref name="destination"/> waits until data is available without holding any buffer, which is how a
    /// PipeReader with zero-byte reads keeps an idle stream at no buffer memory.
    /// </summary>
    public ValueTask<int> ReadBodyAsync(Memory<byte> destination, CancellationToken cancellationToken) =>
        destination.IsEmpty ? WaitForBodyDataAsync(cancellationToken) : ReadIntoAsync(destination, cancellationToken); // one async frame either way

    [AsyncMethodBuilder(typeof(PooledTaskBuilder<>))]
    private async ValueTask<int> ReadIntoAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        if (_bodyDone) return 0;
        // Closed by a cancellation (or a failure) while bytes were still buffered: the exchange is over, whatever is left.
        if (IsClosed) throw Failure(null, UpstreamFailure.BodyIncomplete, "The upstream connection was closed mid-body.", cancellationToken);
        // The request's own token already closes the socket; another token (the relay passes the client's) goes to the receive.
        var token = cancellationToken == _requestToken ? default : cancellationToken;
        while (true)
        {
            var target = destination;
            if (_framing == Framing.ContentLength && target.Length > _remaining) target = target[..(int)_remaining];
            int raw;
            if (_start < _end)
            {
                // Body bytes that came with the head.
                raw = Math.Min(target.Length, _end - _start);
                _buffer.AsSpan(_start, raw).CopyTo(target.Span);
                _start += raw;
                if (_start == _end) ReturnBuffer();
            }
            else
            {
                try { raw = await _socket.ReceiveAsync(target, token).ConfigureAwait(false); }
                catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
                {
                    throw Failure(e, UpstreamFailure.BodyIncomplete, "The upstream connection was reset mid-body.", cancellationToken);
                }
                if (raw == 0)
                {
                    if (_framing == Framing.UntilClose)
                    {
                        _bodyDone = true;
                        return 0;
                    }
                    throw Failure(null, UpstreamFailure.BodyIncomplete, "The upstream closed the connection mid-body.", cancellationToken);
                }
            }
            switch (_framing)
            {
                case Framing.ContentLength:
                    _remaining -= raw;
                    _bodyDone = _remaining == 0;
                    return raw;
                case Framing.UntilClose:
                    return raw;
                default:
                    var status = _chunked.Decode(target.Span[..raw], out int produced, out int consumed);
                    if (status == OperationStatus.InvalidData)
                        throw Failure(null, UpstreamFailure.InvalidResponse, "Invalid chunked framing from the upstream.", cancellationToken);
                    if (status == OperationStatus.Done)
                    {
                        _bodyDone = true;
                        if (consumed < raw || _start < _end) _keepAlive = false; // bytes after the body: not a connection to reuse
                        return produced;
                    }
                    if (produced > 0) return produced;
                    break; // only framing arrived: read on, 0 would mean the end
            }
        }
    }

    /// <summary>
    /// The whole Content-Length body when it came with the head: handed out in place (no read, no copy) and counted as read to its
    /// end. Valid until the exchange ends. False, with nothing taken, for any other body.
    /// </summary>
    public bool TryTakeBufferedBody(out ReadOnlySpan<byte> body)
    {
        body = default;
        if (_framing != Framing.ContentLength || _bodyDone || IsClosed || _end - _start < _remaining) return false;
        int length = (int)_remaining;
        body = _buffer.AsSpan(_start, length);
        _start += length; // the buffer stays until Release: the caller reads the body from it
        _remaining = 0;
        _bodyDone = true;
        return true;
    }

    /// <summary>How many body bytes (still chunk-framed, if chunked) came with the head and wait to be read.</summary>
    public int BufferedBodyLength => _end - _start;

    /// <summary>
    /// Waits until body bytes (or the end of the connection) can be read, holding no buffer. Returns (0) at once when bytes are
    /// buffered or the body has ended.
    /// </summary>
    [AsyncMethodBuilder(typeof(PooledTaskBuilder<>))]
    public async ValueTask<int> WaitForBodyDataAsync(CancellationToken cancellationToken)
    {
        if (_bodyDone || _start < _end) return 0;
        if (IsClosed) throw Failure(null, UpstreamFailure.BodyIncomplete, "The upstream connection was closed mid-body.", cancellationToken);
        var token = cancellationToken == _requestToken ? default : cancellationToken;
        try
        {
            while (true)
            {
                var wait = _socket.WaitReadableAsync(token);
                bool fresh = !wait.IsCompleted || _socket.LastReadFilled;
                await wait.ConfigureAwait(false);
                // An edge that came while we waited means bytes (or the end). One seen at once may be stale (a read took its bytes
                // with an earlier edge's): then peek, so an idle stream does not rent its buffer only to find nothing.
                if (fresh || _socket.Peek()) break;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            throw Failure(e, UpstreamFailure.BodyIncomplete, "The upstream connection was reset mid-body.", cancellationToken);
        }
        return 0;
    }

    /// <summary>
    /// Ends the exchange of <paramref name="generation"/>: back to the pool when the body was read to its end and the server keeps
    /// the connection alive; closed otherwise (cancelled, failed, or abandoned early — draining would keep vLLM generating for nobody).
    /// </summary>
    public void Release(int generation)
    {
        // A copy of a response that was disposed already does nothing; so does the loser of two disposals racing (one compare-and-
        // swap), or the connection could go back to the pool twice.
        if (Interlocked.CompareExchange(ref _generation, generation + 1, generation) != generation) return;
        _abortOnCancel.Dispose(); // after this, a cancellation can no longer close a socket that is back in the pool
        _abortOnCancel = default;
        _requestToken = default;
        _bodyReader?.Reset();
        if (!_bodyDone && _framing == Framing.Chunked && !IsClosed) TryFinishChunkedWithoutWaiting();
        bool reusable = _bodyDone && _keepAlive && _start == _end && !IsClosed;
        ReturnBuffer();
        if (reusable)
        {
            Reused = true;
            _pool.Return(this);
        }
        else Close();
    }

    /// <summary>
    /// The SSE relay stops at <c>data: [DONE]</c> and does not wait for the terminating <c>0\r\n\r\n</c> behind it. When that tail
    /// is already in the buffer or the socket, consume it (no waiting, no allocation) so the connection can be reused; when it is
    /// not, or anything else is there, the connection is closed as for any unfinished body.
    /// </summary>
    private void TryFinishChunkedWithoutWaiting()
    {
        Span<byte> tail = stackalloc byte[64];
        int length = 0;
        if (_start < _end)
        {
            length = _end - _start;
            if (length > tail.Length) return;
            _buffer.AsSpan(_start, length).CopyTo(tail);
            _start = _end;
        }
        try
        {
            int available = _socket.Socket.Available;
            if (available > tail.Length - length) return;
            if (available > 0 && _socket.TryReceive(tail[length..(length + available)]) is var n and > 0) length += n;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { return; }
        var status = _chunked.Decode(tail[..length], out int produced, out int consumed);
        if (status == OperationStatus.Done && produced == 0 && consumed == length) _bodyDone = true;
    }
}
