namespace Gateway.Proxy;

/// <summary>
/// A request's first-byte timeout (proxy.first_byte_timeout: the wait for the upstream's response head) without a timer change
/// per request. CancellationTokenSource.CancelAfter arms and disarms a timer under the timer queue's lock, and TryReset changes it
/// once more: three locked timer changes per request (perf: ~1.5% of a JSON request's user time). Here arming is a write and
/// disarming one interlocked exchange; one process-wide sweep every 100 ms cancels what is overdue, so a timeout fires up to
/// 100 ms late and never early. One per pooled request, in the sweep from its first arm until the request leaves the pool.
/// </summary>
internal sealed class FirstByteDeadline
{
    private const int SweepMs = 100;
    private const int DeadlineBits = 42; // Environment.TickCount64 milliseconds: ~139 years
    private const long DeadlineMask = (1L << DeadlineBits) - 1;
    private const long SequenceMask = (1L << (63 - DeadlineBits)) - 1;

    private static readonly Lock s_lock = new();
    private static readonly List<FirstByteDeadline> s_all = [];
    private static Timer? s_sweep;

    // 0, or this arm's sequence number << DeadlineBits | its deadline: the sequence tells two arms with the same deadline apart, so
    // the sweep never takes an arm that was disarmed and re-armed while it looked.
    private long _armed;
    private long _sequence;
    private bool _pending; // armed and not yet disarmed, as the request's own flow sees it
    private CancellationTokenSource? _cts;
    private int _index = -1; // in s_all; -1 while not registered

    /// <summary><paramref name="cts"/> is cancelled once <paramref name="timeout"/> has passed, unless <see cref="Disarm"/> comes first.</summary>
    public void Arm(CancellationTokenSource cts, TimeSpan timeout)
    {
        if (_index < 0) Register();
        _cts = cts;
        _pending = true;
        // +1: TickCount64 moves in coarse steps, and a deadline must not come early.
        long deadline = Math.Min(Environment.TickCount64 + (long)Math.Ceiling(timeout.TotalMilliseconds) + 1, DeadlineMask);
        _sequence = (_sequence + 1) & SequenceMask;
        if (_sequence == 0) _sequence = 1;
        Volatile.Write(ref _armed, (_sequence << DeadlineBits) | deadline);
    }

    /// <summary>
    /// Ends the wait. False when the sweep took it first: the source is cancelled, or is about to be, so it must not be reset and
    /// reused (and not disposed: the sweep may still cancel it).
    /// </summary>
    public bool Disarm()
    {
        if (!_pending) return true;
        _pending = false;
        return Interlocked.Exchange(ref _armed, 0) != 0;
    }

    /// <summary>Leaves the sweep (the request is dropped from the pool).</summary>
    public void Unregister()
    {
        lock (s_lock)
        {
            if (_index < 0) return;
            var last = s_all[^1];
            s_all[_index] = last;
            last._index = _index;
            s_all.RemoveAt(s_all.Count - 1);
            _index = -1;
        }
    }

    private void Register()
    {
        lock (s_lock)
        {
            _index = s_all.Count;
            s_all.Add(this);
            if (s_sweep is not null) return;
            bool suppress = !ExecutionContext.IsFlowSuppressed(); // the timer must not keep the first request's context alive
            var flow = suppress ? ExecutionContext.SuppressFlow() : default;
            try { s_sweep = new Timer(static _ => Sweep(), null, SweepMs, SweepMs); }
            finally { if (suppress) flow.Undo(); }
        }
    }

    private static void Sweep()
    {
        long now = Environment.TickCount64;
        List<CancellationTokenSource>? due = null;
        lock (s_lock)
        {
            foreach (var d in s_all)
            {
                long armed = Volatile.Read(ref d._armed);
                if (armed == 0 || (armed & DeadlineMask) > now) continue;
                // Read before taking the arm: a source set after it belongs to a later arm, which the exchange below would not match.
                var cts = Volatile.Read(ref d._cts);
                if (cts is not null && Interlocked.CompareExchange(ref d._armed, 0, armed) == armed) (due ??= []).Add(cts);
            }
        }
        if (due is null) return;
        // Outside the lock: cancelling runs the waits' callbacks, which may run request code.
        foreach (var cts in due)
        {
            try { cts.Cancel(); }
            catch (Exception e) { Console.Error.WriteLine($"first-byte timeout: a cancellation callback threw {e.GetType().Name}: {e.Message}"); }
        }
    }
}
