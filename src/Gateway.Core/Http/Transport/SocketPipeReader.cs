using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Tasks.Sources;
using Gateway.Net;

namespace Gateway.Http.Transport;

/// <summary>
/// Kestrel's input, read straight from a <see cref="LoopSocket"/>: on each read edge the loop thread receives into this reader's
/// blocks and, when Kestrel waits, resumes it there. No pipe between the two and no receive loop of our own: the bytes a request
/// brings are in the buffer Kestrel parses once the edge's recv returns. Reading goes on while a request runs (up to
/// <see cref="MaxBuffered"/> unread bytes), so a client's FIN or reset is seen at once, as Kestrel's socket transport sees it.
/// </summary>
internal sealed class SocketPipeReader : PipeReader, IValueTaskSource<ReadResult>, LoopSocket.IReadReady
{
    /// <summary>Kestrel's socket transport defaults: stop reading at 1 MB of unread bytes, go on below half of that.</summary>
    private const long MaxBuffered = 1024 * 1024, ResumeBelow = MaxBuffered / 2;

    /// <summary>The least room worth a recv into the tail block; with less, a fresh block is taken.</summary>
    private const int MinRead = 1024;

    private readonly LoopSocket _socket;
    private readonly bool _inlineIo;
    private readonly Action _peerGone;
    private readonly Lock _lock = new();
    private readonly BlockChain _chain = new();
    private ManualResetValueTaskSourceCore<ReadResult> _core;
    private CancellationTokenRegistration _cancellation;
    private CancellationToken _waitToken;
    private long _examined;
    private bool _waiting, _finished, _cancelNext, _completed, _paused;
    private Exception? _error;

    /// <param name="peerGone">Called once, outside the lock, when the peer's FIN or a reset was read.</param>
    public SocketPipeReader(LoopSocket socket, bool inlineIo, Action peerGone)
    {
        _socket = socket;
        _inlineIo = inlineIo;
        _peerGone = peerGone;
    }

    /// <summary>Something for a waiting read: new bytes past what was examined, the end, an error or a cancellation.</summary>
    private bool Ready => _chain.End > _examined || _finished || _error is not null || _cancelNext;

    /// <summary>A read edge, on the loop thread: take what the socket has, then resume a waiting read inline.</summary>
    public void OnReadReady()
    {
        bool ended, wake;
        ReadResult result = default;
        Exception? error;
        lock (_lock)
        {
            ended = Receive();
            error = _error;
            wake = _waiting && Ready;
            if (wake && error is null) result = TakeResult();
            if (wake) _waiting = false;
        }
        if (ended) _peerGone();
        if (wake) Wake(result, error, inline: true);
    }

    /// <summary>
    /// Receives until the socket is drained, the stream ends or the buffer is full (under the lock). True when this call found the
    /// end or an error. Each recv goes into a pool block, which goes back at once when nothing came (an idle connection holds none).
    /// </summary>
    private bool Receive()
    {
        if (_finished || _error is not null || _completed) return false;
        try
        {
            while (_socket.MayRead)
            {
                if (_chain.Length >= MaxBuffered)
                {
                    _paused = true; // Kestrel's AdvanceTo reads on once it has taken enough
                    return false;
                }
                int n;
                if (_chain.TailWithRoom(MinRead) is { } tail)
                {
                    n = _socket.TryReceive(tail.FreeSpan);
                    if (n > 0) tail.End += n;
                }
                else
                {
                    var segment = _chain.Rent();
                    n = _socket.TryReceive(segment.FreeSpan);
                    if (n > 0)
                    {
                        segment.End = n;
                        _chain.Add(segment);
                    }
                    else _chain.Return(segment);
                }
                if (n < 0) return false; // drained (a stale edge, or the last read took it all)
                if (n == 0)
                {
                    _finished = true;
                    return true;
                }
            }
            return false;
        }
        catch (Exception e)
        {
            _error = LoopConnection.ConnectionError(e);
        }
        return true;
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            if (_completed) throw new InvalidOperationException("Reading is not allowed after the reader was completed.");
            if (_waiting) throw new InvalidOperationException("A read is already pending.");
            if (Ready) return _error is { } error ? ValueTask.FromException<ReadResult>(error) : new ValueTask<ReadResult>(TakeResult());
            if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled<ReadResult>(cancellationToken);
            _core.Reset();
            _waiting = true;
            _waitToken = cancellationToken;
            // Under the lock, so a waker (which takes it to see _waiting) unregisters this registration, not the last one. A token
            // that fires meanwhile runs CancelWait here, on this thread; the lock lets it in again.
            if (cancellationToken.CanBeCanceled)
                _cancellation = cancellationToken.UnsafeRegister(static (state, token) => ((SocketPipeReader)state!).CancelWait(token), this);
            return new ValueTask<ReadResult>(this, _core.Version);
        }
    }

    public override bool TryRead(out ReadResult result)
    {
        lock (_lock)
        {
            if (_completed) throw new InvalidOperationException("Reading is not allowed after the reader was completed.");
            if (_error is { } error) throw error;
            if (!Ready)
            {
                result = default;
                return false;
            }
            result = TakeResult();
            return true;
        }
    }

    private ReadResult TakeResult()
    {
        bool canceled = _cancelNext;
        _cancelNext = false;
        return new ReadResult(_chain.Sequence, canceled, _finished);
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        bool ended = false;
        lock (_lock)
        {
            if (_completed) return;
            long start = _chain.Start, end = _chain.End;
            long taken = BlockSegment.Offset(consumed, start), seen = BlockSegment.Offset(examined, taken);
            if (taken < start || taken > end || seen < taken || seen > end)
                throw new InvalidOperationException("The position is outside the buffer the last read returned.");
            _examined = seen;
            _chain.TakeTo(taken);
            if (_paused && _chain.Length < ResumeBelow)
            {
                _paused = false;
                ended = Receive(); // the socket kept what we did not take; its edge is long gone
            }
        }
        if (ended) _peerGone();
    }

    public override void CancelPendingRead()
    {
        ReadResult result;
        lock (_lock)
        {
            _cancelNext = true;
            if (!_waiting || _error is not null) return;
            _waiting = false;
            result = TakeResult();
        }
        Wake(result, null, inline: false);
    }

    /// <summary>The connection ended from our side (abort, or the send side finished): reads fail with <paramref name="reason"/>.</summary>
    public void Fail(Exception reason)
    {
        Exception error;
        lock (_lock)
        {
            error = _error ??= reason;
            if (!_waiting) return;
            _waiting = false;
        }
        Wake(default, error, inline: false);
    }

    private void CancelWait(CancellationToken token)
    {
        lock (_lock)
        {
            if (!_waiting || _waitToken != token) return; // a callback of an earlier wait, woken by someone else
            _waiting = false;
        }
        Wake(default, new OperationCanceledException(token), inline: false);
    }

    /// <summary>
    /// Completes the pending read with <paramref name="result"/>, or <paramref name="error"/> (taken under the lock that ended the
    /// wait): inline when the loop thread wakes it (Kestrel parses there), else from the thread pool, never on a caller that may be
    /// inside Kestrel's own lock.
    /// </summary>
    private void Wake(in ReadResult result, Exception? error, bool inline)
    {
        _cancellation.Unregister();
        _core.RunContinuationsAsynchronously = !(inline && _inlineIo);
        if (error is null) _core.SetResult(result);
        else _core.SetException(error);
    }

    public override void Complete(Exception? exception = null)
    {
        lock (_lock)
        {
            _completed = true;
            _chain.Clear();
        }
    }

    ReadResult IValueTaskSource<ReadResult>.GetResult(short token) => _core.GetResult(token);
    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _core.GetStatus(token);
    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
