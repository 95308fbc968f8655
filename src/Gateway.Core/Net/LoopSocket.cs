using System.Buffers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace Gateway.Net;

/// <summary>
/// A non-blocking TCP socket driven by an <see cref="EventLoop"/>: reads and writes are plain syscalls made by the caller, and a
/// wait for readiness completes on the loop thread when epoll reports an edge. Unlike .NET's socket engine it tracks whether the
/// socket can have data (an edge since the last short read), so a read that would only return EAGAIN is not attempted: a request
/// costs one recv per arrival, as in nginx, instead of a speculative recv before every wait.
/// One reader and one writer at a time; <see cref="Close"/> may come from any thread and wakes both.
/// </summary>
internal sealed class LoopSocket
{
    private readonly int _fd;
    private readonly Waiter _reader = new(), _writer = new();
    private EventLoop? _loop;
    private int _closed;
    private Hot _hot;

    /// <summary>
    /// What the loop writes on every edge and syscall, alone on its cache lines. Client connections are accepted on one thread and
    /// handed to the loops in turn, so one connection's objects lie next to another loop's in memory, and a counter sharing a line
    /// with them could go back and forth between the cores. (SafeHandle's count, which every syscall took and gave back, cost
    /// 1.6–3.1 % of a proxied request's user time in profiles of the same code: where it landed mattered.)
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 152)]
    private struct Hot
    {
        // Bumped by the loop on every edge; the reader (writer) records the count it saw before a read (write) that drained the
        // socket (filled it). The socket may have data exactly when the two differ.
        [FieldOffset(64)] public int ReadEdges;
        [FieldOffset(68)] public int ReadSeen;
        [FieldOffset(72)] public int WriteEdges;
        [FieldOffset(76)] public int WriteSeen;
        // Syscalls in flight (low bits) and the close: see Lease.
        [FieldOffset(80)] public int Gate;
        [FieldOffset(84)] public bool LastReadFilled;
    }

    // Set once epoll reported the peer's FIN, a reset or an error: from then on a read never waits. A short read cannot tell that
    // the end is queued behind the bytes it returned, and no further edge would come for it (nginx's pending_eof).
    private volatile bool _readEnded;

    public LoopSocket(Socket socket)
    {
        Socket = socket;
        socket.Blocking = false;
        _fd = (int)socket.SafeHandle.DangerousGetHandle();
    }

    /// <summary>The .NET socket that owns the descriptor (options, endpoints, poll); never used for async I/O.</summary>
    public Socket Socket { get; }

    public int Fd => _fd;

    /// <summary>The loop's key for this socket (slot and generation), checked on every event so a stale one is ignored.</summary>
    internal ulong Token { get; set; }

    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>The loop that watches this socket (null before <see cref="Register"/>): its thread runs what the socket's waits resume.</summary>
    public EventLoop? Loop => _loop;

    /// <summary>Watched by <paramref name="loop"/> from now on. Register after connect(2) returned: an unconnected socket polls as hung up.</summary>
    public void Register(EventLoop loop)
    {
        _loop = loop;
        loop.Add(this);
    }

    /// <summary>An owner that takes bytes as each read edge comes (on the loop thread) instead of waiting for readiness.</summary>
    internal interface IReadReady
    {
        void OnReadReady();
    }

    /// <summary>Gets every read edge instead of a read wait; set before <see cref="Register"/>.</summary>
    public IReadReady? ReadReady { get; set; }

    /// <summary>Called on the loop thread with the epoll event mask. Counts first, then wakes: a wake runs its continuation inline.</summary>
    internal void OnEvents(uint events)
    {
        bool read = (events & (Libc.EPOLLIN | Libc.EPOLLRDHUP | Libc.EPOLLHUP | Libc.EPOLLERR)) != 0;
        bool write = (events & (Libc.EPOLLOUT | Libc.EPOLLHUP | Libc.EPOLLERR)) != 0;
        if ((events & (Libc.EPOLLRDHUP | Libc.EPOLLHUP | Libc.EPOLLERR)) != 0) _readEnded = true;
        if (read) Interlocked.Increment(ref _hot.ReadEdges);
        if (write) Interlocked.Increment(ref _hot.WriteEdges);
        if (read)
        {
            try
            {
                if (ReadReady is { } owner) owner.OnReadReady();
                else _reader.WakeIfArmed();
            }
            catch (Exception e) { EventLoop.Report(e); }
        }
        if (write)
        {
            try { _writer.WakeIfArmed(); }
            catch (Exception e) { EventLoop.Report(e); }
        }
    }

    /// <summary>The loop saw the peer's FIN, a reset or an error (no syscall: what epoll already reported).</summary>
    public bool PeerClosed => _readEnded;

    /// <summary>Whether a read may find data (or the end): false only after a read drained the socket and no edge came since.</summary>
    public bool MayRead => Volatile.Read(ref _hot.ReadEdges) != _hot.ReadSeen || _readEnded || IsClosed;

    /// <summary>
    /// The last read filled its buffer, so more is likely queued. When a wait completes at once without this, the edge it saw may
    /// be stale: one read took the bytes of two edges, and the second was counted after it (callers that must not take a buffer
    /// for nothing check with <see cref="Peek"/> or read into the stack first).
    /// </summary>
    public bool LastReadFilled => _hot.LastReadFilled;

    /// <summary>Completes when the socket may be read (at once when it may already), the socket is closed, or the token fires.</summary>
    public ValueTask WaitReadableAsync(CancellationToken cancellationToken = default) =>
        _readEnded ? default : Wait(_reader, ref _hot.ReadEdges, ref _hot.ReadSeen, cancellationToken);

    /// <summary>Completes when the socket may take more bytes, the socket is closed, or the token fires.</summary>
    public ValueTask WaitWritableAsync(CancellationToken cancellationToken = default) =>
        Wait(_writer, ref _hot.WriteEdges, ref _hot.WriteSeen, cancellationToken);

    private ValueTask Wait(Waiter waiter, ref int edges, ref int seen, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref edges) != seen || IsClosed) return default;
        var pending = waiter.Arm();
        // The loop bumps the count, then disarms; we arm, then re-read the count. With both fenced, one of us sees the other.
        if ((Volatile.Read(ref edges) != seen || IsClosed) && waiter.Disarm()) return default;
        return cancellationToken.CanBeCanceled ? WaitCancellableAsync(pending, waiter, cancellationToken) : pending;
    }

    [AsyncMethodBuilder(typeof(PooledTaskBuilder))]
    private static async ValueTask WaitCancellableAsync(ValueTask pending, Waiter waiter, CancellationToken cancellationToken)
    {
        using (cancellationToken.UnsafeRegister(static (state, token) => ((Waiter)state!).Cancel(token), waiter))
            await pending.ConfigureAwait(false);
    }

    /// <summary>
    /// One recv(2) now: the bytes read, 0 at the end of the stream, or -1 when nothing is there yet. Throws
    /// <see cref="SocketException"/> for a failed connection and <see cref="ObjectDisposedException"/> once closed.
    /// </summary>
    public int TryReceive(Span<byte> buffer)
    {
        int edges = Volatile.Read(ref _hot.ReadEdges);
        nint n;
        using (new Lease(this)) n = Libc.Recv(_fd, buffer);
        if (n < 0)
        {
            if (n != -Libc.EAGAIN) throw Error((int)-n);
            _hot.ReadSeen = edges;
            _hot.LastReadFilled = false;
            return -1;
        }
        // A TCP read returns less than asked when nothing more was queued (or at an urgent mark, which HTTP peers do not send): no
        // need to ask again before the next edge. The end of the stream stays readable.
        _hot.LastReadFilled = n == buffer.Length;
        if (n > 0 && !_hot.LastReadFilled) _hot.ReadSeen = edges;
        return (int)n;
    }

    /// <summary>
    /// Whether bytes (or the end, or an error) are really there, without taking them: one recv(MSG_PEEK). False marks the socket
    /// drained, so the next wait waits for a new edge.
    /// </summary>
    public bool Peek()
    {
        int edges = Volatile.Read(ref _hot.ReadEdges);
        Span<byte> one = stackalloc byte[1];
        nint n;
        try
        {
            using (new Lease(this)) n = Libc.Recv(_fd, one, Libc.MSG_PEEK);
        }
        catch (ObjectDisposedException) { return true; } // closed: the read that follows reports it
        if (n != -Libc.EAGAIN) return true;
        _hot.ReadSeen = edges;
        return false;
    }

    /// <summary>Reads at least one byte (or 0 at the end; a buffer must not be empty), waiting for an edge when the socket is known to be drained.</summary>
    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (MayRead)
        {
            int n = TryReceive(buffer.Span);
            if (n >= 0) return new ValueTask<int>(n);
        }
        return ReceiveSlowAsync(buffer, cancellationToken);
    }

    [AsyncMethodBuilder(typeof(PooledTaskBuilder<>))]
    private async ValueTask<int> ReceiveSlowAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            await WaitReadableAsync(cancellationToken).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            int n = TryReceive(buffer.Span);
            if (n >= 0) return n;
        }
    }

    /// <summary>One send(2) now: the bytes the kernel took, or -1 when its buffer is full.</summary>
    public int TrySend(ReadOnlySpan<byte> data)
    {
        int edges = Volatile.Read(ref _hot.WriteEdges);
        nint n;
        using (new Lease(this)) n = Libc.Send(_fd, data);
        if (n < 0)
        {
            if (n != -Libc.EAGAIN) throw Error((int)-n);
            _hot.WriteSeen = edges;
            return -1;
        }
        return (int)n;
    }

    /// <summary>Sends all of <paramref name="data"/>, waiting for room only when the kernel's buffer is full.</summary>
    public ValueTask SendAsync(ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            int n = TrySend(data.Span);
            if (n < 0) return SendSlowAsync(data);
            data = data[n..];
        }
        return default;
    }

    [AsyncMethodBuilder(typeof(PooledTaskBuilder))]
    private async ValueTask SendSlowAsync(ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            await WaitWritableAsync().ConfigureAwait(false);
            int n = TrySend(data.Span);
            if (n > 0) data = data[n..];
        }
    }

    /// <summary>
    /// Sends a pipe's buffers, several per sendmsg(2). When the peer takes nothing for <paramref name="stallLimit"/> (its receive
    /// window stays full: a client that stopped reading), fails with <see cref="SocketError.TimedOut"/>, as nginx's send_timeout does.
    /// </summary>
    public ValueTask SendAsync(in ReadOnlySequence<byte> data, TimeSpan stallLimit)
    {
        var rest = data;
        while (!rest.IsEmpty)
        {
            long n = data.IsSingleSegment ? TrySend(rest.FirstSpan) : TrySendVector(rest);
            if (n < 0) return SendSlowAsync(rest, stallLimit);
            rest = rest.Slice(n);
        }
        return default;
    }

    [AsyncMethodBuilder(typeof(PooledTaskBuilder))]
    private async ValueTask SendSlowAsync(ReadOnlySequence<byte> rest, TimeSpan stallLimit)
    {
        // Only a send that found the kernel's buffer full gets here, so the timer costs nothing on the way of a reading client.
        using var stalled = new CancellationTokenSource(stallLimit);
        while (!rest.IsEmpty)
        {
            try { await WaitWritableAsync(stalled.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) when (stalled.IsCancellationRequested) { throw new SocketException((int)SocketError.TimedOut); }
            long n = rest.IsSingleSegment ? TrySend(rest.FirstSpan) : TrySendVector(rest);
            if (n > 0)
            {
                rest = rest.Slice(n);
                stalled.CancelAfter(stallLimit); // progress: the limit is on each wait, not on the whole response
            }
        }
    }

    private const int MaxVectors = 16;

    [SkipLocalsInit] // the vectors and pins are written before they are read
    private unsafe long TrySendVector(in ReadOnlySequence<byte> data)
    {
        var vectors = stackalloc Libc.IoVec[MaxVectors];
        Unsafe.SkipInit(out PinSet pins);
        int count = 0;
        try
        {
            foreach (var segment in data)
            {
                if (segment.IsEmpty) continue;
                if (count == MaxVectors) break;
                var handle = segment.Pin();
                pins[count] = handle;
                vectors[count].Base = (byte*)handle.Pointer;
                vectors[count].Length = (nuint)segment.Length;
                count++;
            }
            int edges = Volatile.Read(ref _hot.WriteEdges);
            nint n;
            using (new Lease(this)) n = Libc.SendVector(_fd, vectors, count);
            if (n < 0)
            {
                if (n != -Libc.EAGAIN) throw Error((int)-n);
                _hot.WriteSeen = edges;
                return -1;
            }
            return n;
        }
        finally
        {
            for (int i = 0; i < count; i++) pins[i].Dispose();
        }
    }

    [InlineArray(MaxVectors)]
    private struct PinSet
    {
        private MemoryHandle _element;
    }

    /// <summary>Starts a connect(2); true when it completed at once, false while the handshake runs (wait for writable).</summary>
    public bool StartConnect(ReadOnlySpan<byte> socketAddress)
    {
        int r;
        using (new Lease(this)) r = Libc.Connect(_fd, socketAddress);
        if (r == 0) return true;
        if (r == -Libc.EINPROGRESS) return false;
        throw Error(-r);
    }

    /// <summary>
    /// Sends FIN and stops reading (shutdown(2) both ways): a waiting read wakes and finds the end, a send fails. The descriptor
    /// stays open until <see cref="Close"/>, which the owner calls once no read or write of its own can be running, so the close is
    /// always graceful (Socket.Dispose with a syscall in flight on another thread would reset the connection instead).
    /// </summary>
    public void Shutdown()
    {
        try
        {
            using (new Lease(this)) Libc.Shutdown(_fd, Libc.SHUT_RDWR);
        }
        catch (ObjectDisposedException) { } // closed already: nothing to shut down
        _readEnded = true;
        _reader.WakeLater();
        _writer.WakeLater();
    }

    /// <summary>
    /// Stops watching and closes the descriptor (once a syscall in flight on another thread returns); wakes any waiter. From any
    /// thread: the upstream client closes a socket this way to cancel an exchange, where an abortive close is what it wants.
    /// </summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        _loop?.Remove(this);
        if ((Interlocked.Or(ref _hot.Gate, Closing) & InFlight) == 0) DisposeOnce(); // else the last syscall's lease does
        _reader.WakeLater();
        _writer.WakeLater();
    }

    private static SocketException Error(int errno) => new((int)(errno switch
    {
        104 => SocketError.ConnectionReset,
        32 => SocketError.Shutdown,
        107 => SocketError.NotConnected,
        111 => SocketError.ConnectionRefused,
        110 => SocketError.TimedOut,
        113 => SocketError.HostUnreachable,
        101 => SocketError.NetworkUnreachable,
        103 => SocketError.ConnectionAborted,
        9 => SocketError.OperationAborted,
        _ => SocketError.SocketError,
    }));

    private const int Closing = 1 << 30, Disposed = 1 << 29, InFlight = Disposed - 1;

    /// <summary>Closes the descriptor once: after <see cref="Close"/>, when no syscall holds a lease.</summary>
    private void DisposeOnce()
    {
        if ((Interlocked.Or(ref _hot.Gate, Disposed) & Disposed) == 0) Socket.Dispose();
    }

    /// <summary>
    /// Holds the descriptor open for one syscall: a close on another thread leaves the descriptor to the last lease, so its number
    /// cannot be reused by a new socket while we use it. Throws <see cref="ObjectDisposedException"/> once closed. (SafeHandle's
    /// own count does the same, on a line of an object the socket's owner does not control.)
    /// </summary>
    private readonly ref struct Lease
    {
        private readonly LoopSocket _socket;

        public Lease(LoopSocket socket)
        {
            if ((Interlocked.Increment(ref socket._hot.Gate) & Closing) != 0)
            {
                Leave(socket);
                throw new ObjectDisposedException(nameof(LoopSocket));
            }
            _socket = socket;
        }

        public void Dispose() => Leave(_socket);

        private static void Leave(LoopSocket socket)
        {
            if (Interlocked.Decrement(ref socket._hot.Gate) == Closing) socket.DisposeOnce(); // the last one out after a close
        }
    }

    /// <summary>One pending wait: completed inline on the thread that wakes it (the loop), as inline socket completions are.</summary>
    private sealed class Waiter : IValueTaskSource
    {
        private ManualResetValueTaskSourceCore<bool> _core;
        private int _armed;

        public ValueTask Arm()
        {
            _core.Reset();
            Interlocked.Exchange(ref _armed, 1);
            return new ValueTask(this, _core.Version);
        }

        /// <summary>Takes the wait back; false when a wake-up got it first (and completes it).</summary>
        public bool Disarm() => Interlocked.Exchange(ref _armed, 0) == 1;

        public void WakeIfArmed()
        {
            if (Volatile.Read(ref _armed) == 1 && Interlocked.Exchange(ref _armed, 0) == 1) _core.SetResult(true);
        }

        /// <summary>
        /// For a wake from outside the loop (close, shutdown): the continuation goes to the thread pool, never runs on the caller's
        /// thread, which may be Kestrel's inside its own lock, a timer's, or a canceller's.
        /// </summary>
        public void WakeLater()
        {
            if (Interlocked.Exchange(ref _armed, 0) == 1)
                ThreadPool.UnsafeQueueUserWorkItem(static w => w._core.SetResult(true), this, preferLocal: false);
        }

        public void Cancel(CancellationToken token)
        {
            if (Interlocked.Exchange(ref _armed, 0) == 1)
                ThreadPool.UnsafeQueueUserWorkItem(static s => s.Waiter._core.SetException(new OperationCanceledException(s.Token)),
                    (Waiter: this, Token: token), preferLocal: false);
        }

        public void GetResult(short token) => _core.GetResult(token);
        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);
        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
