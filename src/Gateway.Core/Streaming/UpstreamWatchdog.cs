namespace Gateway.Streaming;

/// <summary>
/// Ends a stream whose upstream went quiet, and every open stream when the gateway's drain time runs out, by cancelling the upstream
/// read so the relay can still tell the client why. Before the first byte a stream may wait until the first-byte deadline (vLLM
/// queues and prefills before its first chunk); after it, at most the idle timeout per read.
/// The relay only marks when a read starts and ends (a counter and a flag: no clock, lock, timer change or allocation per event);
/// a timer, started once per stream, ticks a few times per limit, notices a read that is still the same one, and times it from
/// then on. One per pooled request, reused across streams.
/// </summary>
public sealed class UpstreamWatchdog : IDisposable
{
    private readonly Lock _lock = new(); // Start, Stop and the timer's checks only, never a read
    private readonly Timer _timer;
    private CancellationTokenSource? _reads;
    private CancellationTokenRegistration _drain;
    private long _firstByteDeadline, _idleMs; // Environment.TickCount64 milliseconds
    private int _readSeq; // bumped by the relay as each read starts
    private volatile bool _waiting; // a read is pending
    private bool _sawData;
    private int _seenSeq; // the pending read the timer has been watching (timer only, under the lock)
    private long _seenAt; // when the timer first saw it; 0 = none
    private volatile RelayOutcome _fired; // Completed = has not fired

    public UpstreamWatchdog()
    {
        using (ExecutionContext.SuppressFlow()) // the timer must not keep the first request's context alive
            _timer = new Timer(static s => ((UpstreamWatchdog)s!).Tick(), this, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>The token for upstream reads: the source passed to <see cref="Start"/>, which also fires when the client leaves.</summary>
    public CancellationToken Token { get; private set; }

    /// <summary>Why the watchdog cancelled the reads (<see cref="RelayOutcome.UpstreamTimedOut"/> or <see cref="RelayOutcome.ShuttingDown"/>), or null.</summary>
    public RelayOutcome? Fired => _fired == RelayOutcome.Completed ? null : _fired;

    /// <param name="reads">Cancelled when the watchdog fires; the caller's, and already linked to the client's abort.</param>
    /// <param name="firstByteLeft">What is left of the first-byte timeout: the longest wait for the upstream's first byte.</param>
    /// <param name="idle">The longest wait for one read once data has flowed.</param>
    /// <param name="drainExpired">Fires when the gateway stops waiting for open streams to finish.</param>
    public void Start(CancellationTokenSource reads, TimeSpan firstByteLeft, TimeSpan idle, CancellationToken drainExpired)
    {
        lock (_lock)
        {
            _reads = reads;
            Token = reads.Token;
            _firstByteDeadline = Environment.TickCount64 + (long)firstByteLeft.TotalMilliseconds;
            _idleMs = (long)idle.TotalMilliseconds;
            _waiting = false;
            _sawData = false;
            _seenAt = 0;
            _fired = RelayOutcome.Completed;
        }
        // Registered outside the lock: an already expired drain runs the callback here, and it takes the lock.
        _drain = drainExpired.UnsafeRegister(static s => ((UpstreamWatchdog)s!).Fire(RelayOutcome.ShuttingDown), this);
        var period = TickPeriod(firstByteLeft < idle ? firstByteLeft : idle);
        _timer.Change(period, period);
    }

    public void Stop()
    {
        _timer.Change(Timeout.Infinite, Timeout.Infinite);
        _drain.Dispose(); // waits for a drain callback running on another thread
        _drain = default;
        lock (_lock) _reads = null; // a tick already queued finds nothing to cancel, not the next stream's reads
    }

    /// <summary>Called by the relay before it waits on the upstream.</summary>
    internal void ReadStarting()
    {
        _readSeq++; // one relay per watchdog at a time; the volatile write below publishes it to the timer
        _waiting = true;
    }

    /// <summary>Called by the relay when a read returned.</summary>
    internal void ReadDone()
    {
        _waiting = false;
        if (!_sawData) Volatile.Write(ref _sawData, true);
    }

    /// <summary>
    /// An eighth of the limit, between 10 ms and 1 s (10k streams tick at most 10k times a second). The timer starts timing a read
    /// at the first tick that sees it, so an idle timeout fires between one and one and a quarter limits after the read began, never early.
    /// </summary>
    internal static TimeSpan TickPeriod(TimeSpan limit)
    {
        var period = limit / 8;
        return period < TimeSpan.FromMilliseconds(10) ? TimeSpan.FromMilliseconds(10) : period > TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : period;
    }

    private void Tick()
    {
        lock (_lock)
        {
            if (_reads is null) return;
            if (!_waiting)
            {
                _seenAt = 0; // relaying, not waiting on the upstream
                return;
            }
            int seq = Volatile.Read(ref _readSeq);
            long now = Environment.TickCount64;
            if (!Volatile.Read(ref _sawData))
            {
                if (now >= _firstByteDeadline) FireLocked(RelayOutcome.UpstreamTimedOut);
                return;
            }
            if (_seenAt == 0 || seq != _seenSeq)
            {
                (_seenSeq, _seenAt) = (seq, now); // a read this tick has not seen before: it began at most now
                return;
            }
            if (now - _seenAt >= _idleMs) FireLocked(RelayOutcome.UpstreamTimedOut);
        }
    }

    private void Fire(RelayOutcome reason)
    {
        lock (_lock) FireLocked(reason);
    }

    private void FireLocked(RelayOutcome reason)
    {
        if (_reads is null || _fired != RelayOutcome.Completed) return;
        _fired = reason;
        _reads.Cancel(); // cancels the pending upstream read (and, through the handler, the upstream request)
    }

    public void Dispose() => _timer.Dispose();
}
