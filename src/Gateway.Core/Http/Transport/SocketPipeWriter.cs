using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Gateway.Net;

namespace Gateway.Http.Transport;

/// <summary>
/// Kestrel's output, sent straight to a <see cref="LoopSocket"/>: Kestrel writes into this writer's blocks and its flush is the
/// send(2) (sendmsg for several blocks), made on the flushing thread. No pipe and no send loop of our own. A flush waits only when
/// the kernel's buffer is full, and then at most write_timeout for the client to take a byte. Kestrel calls it through its
/// ConcurrentPipeWriter, which holds back writes while a flush is pending, so one flush runs at a time.
/// </summary>
internal sealed class SocketPipeWriter : PipeWriter
{
    private readonly LoopSocket _socket;
    private readonly bool _inlineIo;
    private readonly TimeSpan _writeTimeout;
    private readonly Action<Exception?> _done;
    private readonly BlockChain _chain = new();
    private readonly Lock _lock = new(); // between Complete and a flush that finishes on the loop thread
    private TaskCompletionSource? _sending; // while a flush waits for the kernel
    private volatile bool _failed, _cancelNext;
    private bool _completed;
    private int _doneCalled;

    /// <param name="done">
    /// Called once when nothing more will be sent: with the error a send failed with, or null once Kestrel completed the writer and
    /// all was sent (the connection then sends its FIN).
    /// </param>
    public SocketPipeWriter(LoopSocket socket, bool inlineIo, TimeSpan writeTimeout, Action<Exception?> done)
    {
        _socket = socket;
        _inlineIo = inlineIo;
        _writeTimeout = writeTimeout;
        _done = done;
    }

    /// <summary>Completes when no flush is waiting for the kernel (a close must not cut a response short).</summary>
    public Task Drained => _sending?.Task ?? Task.CompletedTask;

    public override Memory<byte> GetMemory(int sizeHint = 0) => Tail(sizeHint).FreeMemory;

    public override Span<byte> GetSpan(int sizeHint = 0) => Tail(sizeHint).FreeSpan;

    private BlockSegment Tail(int sizeHint)
    {
        if (_completed) throw new InvalidOperationException("Writing is not allowed after the writer was completed.");
        if (_chain.TailWithRoom(sizeHint) is { } tail) return tail;
        var segment = _chain.Rent(sizeHint);
        _chain.Add(segment);
        return segment;
    }

    public override void Advance(int bytes)
    {
        if (bytes == 0) return;
        if (_chain.TailWithRoom(bytes) is not { } tail) throw new ArgumentOutOfRangeException(nameof(bytes), "More bytes than the memory given.");
        tail.End += bytes;
    }

    public override bool CanGetUnflushedBytes => true;
    public override long UnflushedBytes => _chain.Length;

    /// <summary>
    /// Sends what was written. The token does not cut a waiting send short (the bytes are half in the kernel by then): an abort
    /// does, and write_timeout bounds the wait.
    /// </summary>
    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        if (_failed)
        {
            _chain.Clear(); // the client is gone or aborted: what Kestrel writes now has nowhere to go
            return new ValueTask<FlushResult>(new FlushResult(isCanceled: false, isCompleted: true));
        }
        if (_sending is not null) throw new InvalidOperationException("A flush is already pending."); // ConcurrentPipeWriter waits for it
        if (_chain.IsEmpty) return TakeCancel();
        long end = _chain.End;
        ValueTask sending;
        try { sending = _socket.SendAsync(_chain.Sequence, _writeTimeout); }
        catch (Exception e) { return new ValueTask<FlushResult>(Failed(e)); }
        if (!sending.IsCompletedSuccessfully) return FlushSlowAsync(sending, end);
        sending.GetAwaiter().GetResult();
        _chain.TakeTo(end);
        return TakeCancel();
    }

    /// <summary>As a pipe: a cancelled flush still commits (here: sends) its bytes; only its result says cancelled.</summary>
    private ValueTask<FlushResult> TakeCancel()
    {
        if (!_cancelNext) return default;
        _cancelNext = false;
        return new ValueTask<FlushResult>(new FlushResult(isCanceled: true, isCompleted: false));
    }

    [AsyncMethodBuilder(typeof(PooledTaskBuilder<>))]
    private async ValueTask<FlushResult> FlushSlowAsync(ValueTask sending, long end)
    {
        var sent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock) _sending = sent;
        FlushResult result;
        bool finish;
        try
        {
            await sending.ConfigureAwait(false);
            _chain.TakeTo(end);
            bool canceled = _cancelNext;
            _cancelNext = false;
            result = new FlushResult(canceled, isCompleted: _failed);
        }
        catch (Exception e)
        {
            result = Failed(e);
        }
        finally
        {
            lock (_lock)
            {
                _sending = null;
                finish = _completed; // Kestrel completed the writer while this flush waited
            }
        }
        if (finish) Finish();
        sent.TrySetResult(); // after Finish: a close that waits for Drained comes after the FIN
        if (!_inlineIo) await Task.Yield(); // the loop thread woke the send: Kestrel's code goes back to the pool
        return result;
    }

    private FlushResult Failed(Exception e)
    {
        _failed = true;
        _chain.Clear();
        Done(LoopConnection.ConnectionError(e));
        return new FlushResult(isCanceled: false, isCompleted: true);
    }

    /// <summary>The connection was aborted: nothing more is sent, and flushes report the end.</summary>
    public void Abort() => _failed = true;

    public override void CancelPendingFlush() => _cancelNext = true;

    public override void Complete(Exception? exception = null)
    {
        lock (_lock)
        {
            if (_completed) return;
            _completed = true;
            if (_sending is not null) return; // the waiting flush calls Finish when it is done
        }
        Finish();
    }

    /// <summary>After the last flush: bytes written but never flushed still go (as a pipe's completion commits them), then the FIN.</summary>
    private void Finish()
    {
        if (!_failed && !_chain.IsEmpty)
        {
            var flushing = FlushAsync();
            if (!flushing.IsCompleted)
            {
                _ = flushing.AsTask(); // FlushSlowAsync calls Finish again when it is done, which then finds nothing to send
                return;
            }
            flushing.GetAwaiter().GetResult();
        }
        _chain.Clear();
        Done(null);
    }

    private void Done(Exception? error)
    {
        if (Interlocked.Exchange(ref _doneCalled, 1) == 0) _done(error);
    }
}
