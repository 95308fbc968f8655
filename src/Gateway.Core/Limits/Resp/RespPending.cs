using System.Collections.Concurrent;
using System.Threading.Tasks.Sources;

namespace Gateway.Limits.Resp;

/// <summary>
/// The reply one command waits for: awaited by the issuer, completed by the connection's reader (inline, on the event loop) or by
/// the timeout sweep, whichever comes first. Pooled: it has two owners, the issuer (until it read the result) and the connection's
/// queue (until the reply came or the connection failed), and goes back to the pool when both let go.
/// </summary>
internal sealed class RespPending : IValueTaskSource<RespReply>
{
    private static readonly ConcurrentQueue<RespPending> s_pool = new();
    private const int MaxPooled = 4096;

    private ManualResetValueTaskSourceCore<RespReply> _core; // continuations run where it completes: the loop thread
    private int _owners, _completed;

    /// <summary>When it was issued (Stopwatch ticks), for the timeout sweep.</summary>
    public long IssuedAt { get; private set; }

    /// <summary>Whether the timeout sweep may fail it (a check); otherwise it waits for its reply or the connection's end.</summary>
    public bool Timed { get; private set; }

    public static RespPending Rent(long now, bool timed)
    {
        if (!s_pool.TryDequeue(out var p)) p = new RespPending();
        p.IssuedAt = now;
        p.Timed = timed;
        p._completed = 0;
        p._owners = 2;
        return p;
    }

    public ValueTask<RespReply> Task => new(this, _core.Version);

    public bool IsCompleted => Volatile.Read(ref _completed) != 0;

    /// <summary>Hands the reply to the issuer, once: the later of a reply and a timeout is dropped.</summary>
    public bool TryComplete(in RespReply reply)
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0) return false;
        _core.SetResult(reply);
        return true;
    }

    /// <summary>A third owner for a while (the sweep), taken while the queue still owns it.</summary>
    public void AddOwner() => Interlocked.Increment(ref _owners);

    /// <summary>One owner is done with it.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _owners) != 0) return;
        _core.Reset();
        if (s_pool.Count < MaxPooled) s_pool.Enqueue(this);
    }

    public RespReply GetResult(short token)
    {
        var reply = _core.GetResult(token);
        Release();
        return reply;
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
