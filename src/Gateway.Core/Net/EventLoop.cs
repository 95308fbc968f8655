using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Gateway.Net;

/// <summary>
/// One epoll instance (edge-triggered) and the thread that waits on it. Whatever a readiness wait resumes (Kestrel's parser, the
/// proxy, the upstream read) runs on this thread, as in nginx's worker: no hop to the thread pool, no second thread woken (with
/// server.inline_io; wakes from a close or a cancellation go through the thread pool).
/// A socket stays in the slot table until it is closed: every owner closes its sockets (a leaked one would keep its descriptor).
/// </summary>
internal sealed unsafe class EventLoop
{
    private const int MaxEvents = 256;

    [ThreadStatic] private static EventLoop? t_current;

    private readonly int _epoll;
    private readonly Lock _lock = new();
    private LoopSocket?[] _sockets = new LoopSocket?[64];
    private int[] _free = new int[64];
    private int _freeCount, _used;
    private uint _generation;

    /// <summary>Sends this loop's thread queued while handling the current batch of events; made before the next wait.</summary>
    internal BatchSends Sends { get; } = new();

    public EventLoop(int index)
    {
        Index = index;
        _epoll = Libc.EpollCreate(Libc.EPOLL_CLOEXEC);
        if (_epoll < 0) throw new SocketException(Marshal.GetLastPInvokeError());
        // UnsafeStart: the loop must not run inside its creator's ExecutionContext: whatever AsyncLocal was set where the first
        // connection started the loops (a test's context, a request's) would be seen by every request the loop ever runs.
        new Thread(Run) { IsBackground = true, Name = $"gateway-io-{index}" }.UnsafeStart();
    }

    /// <summary>This loop's number, unique in the process (0, 1, … for the process's loops): per-loop state elsewhere is an array indexed by it.</summary>
    public int Index { get; }

    /// <summary>
    /// An exception that escaped a continuation run by a wake (async methods keep their own, so this is a bug): reported on stderr
    /// and not allowed to end the loop every connection depends on.
    /// </summary>
    public static void Report(Exception e) => Console.Error.WriteLine($"event loop: unhandled {e.GetType().Name}: {e.Message}");

    /// <summary>The loop whose thread is running the caller, if any.</summary>
    public static EventLoop? Current => t_current;

    public void Add(LoopSocket socket)
    {
        int slot;
        ulong token;
        lock (_lock)
        {
            if (_freeCount > 0) slot = _free[--_freeCount];
            else
            {
                if (_used == _sockets.Length)
                {
                    var larger = new LoopSocket?[_sockets.Length * 2];
                    Array.Copy(_sockets, larger, _used);
                    Volatile.Write(ref _sockets, larger);
                    Array.Resize(ref _free, larger.Length);
                }
                slot = _used++;
            }
            token = (uint)slot | ((ulong)++_generation << 32);
            socket.Token = token;
            Volatile.Write(ref _sockets[slot], socket);
        }
        byte* ev = stackalloc byte[16];
        *(uint*)ev = Libc.EPOLLIN | Libc.EPOLLOUT | Libc.EPOLLRDHUP | Libc.EPOLLET;
        *(ulong*)(ev + Libc.EpollDataOffset) = token;
        if (Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_ADD, socket.Fd, ev) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            Release(slot, socket);
            throw new SocketException(errno);
        }
    }

    /// <summary>Forgets the socket before its descriptor closes; an event for it already read is dropped by the token check.</summary>
    public void Remove(LoopSocket socket)
    {
        Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_DEL, socket.Fd, null); // also dropped by close(2); explicit so the slot can go now
        Release((int)(uint)socket.Token, socket);
    }

    private void Release(int slot, LoopSocket socket)
    {
        lock (_lock)
        {
            if (!ReferenceEquals(_sockets[slot], socket)) return;
            _sockets[slot] = null;
            _free[_freeCount++] = slot;
        }
    }

    private void Run()
    {
        t_current = this;
        BlockPool.AttachLoopCache();
        int size = Libc.EpollEventSize, dataOffset = Libc.EpollDataOffset;
        byte* events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * size));
        while (true)
        {
            int n = Libc.EpollWait(_epoll, events, MaxEvents, -1);
            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.EINTR) continue;
                // The epoll descriptor itself is broken: no connection can make progress, and spinning here would hide it.
                Environment.FailFast($"epoll_wait failed on {Thread.CurrentThread.Name}: errno {errno}");
            }
            for (int i = 0; i < n; i++)
            {
                byte* e = events + i * size;
                ulong token = *(ulong*)(e + dataOffset);
                var sockets = Volatile.Read(ref _sockets);
                int slot = (int)(uint)token;
                if (slot >= sockets.Length || Volatile.Read(ref sockets[slot]) is not { } socket || socket.Token != token) continue;
                socket.OnEvents(*(uint*)e);
            }
            if (Sends.Count > 0) Sends.Flush();
        }
    }
}

/// <summary>The process's event loops: started on first use, one per core unless configured (server.io_threads).</summary>
internal static class EventLoops
{
    private static EventLoop[]? s_loops;
    private static int s_count, s_next;
    private static readonly Lock s_lock = new();

    /// <summary>Sets the number of loops; only before the first one starts (gateway serve does this at start-up).</summary>
    public static void Configure(int count)
    {
        lock (s_lock)
        {
            if (s_loops is null) s_count = count;
        }
    }

    /// <summary>How many loops the process runs (starting them if need be).</summary>
    public static int Count => (s_loops ?? Start()).Length;

    /// <summary>The next loop in turn, for a new connection.</summary>
    public static EventLoop Next()
    {
        var loops = s_loops ?? Start();
        return loops.Length == 1 ? loops[0] : loops[(int)((uint)Interlocked.Increment(ref s_next) % (uint)loops.Length)];
    }

    private static EventLoop[] Start()
    {
        lock (s_lock)
        {
            if (s_loops is { } started) return started;
            int count = s_count > 0 ? s_count : Environment.ProcessorCount;
            var loops = new EventLoop[count];
            for (int i = 0; i < count; i++) loops[i] = new EventLoop(i);
            return s_loops = loops;
        }
    }
}
