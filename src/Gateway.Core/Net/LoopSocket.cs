using System.Buffers;
using System.Net.Sockets;
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
    private readonly SafeSocketHandle _handle;
    private readonly int _fd;
    private readonly Waiter _reader = new(), _writer = new();
    private EventLoop? _loop;
    private int _closed;

    // Bumped by the loop on every edge; the reader (writer) records the count it saw before a read (write) that drained the socket
    // (filled it). The socket may have data exactly when the two differ.
    private int _readEdges, _readSeen, _writeEdges, _writeSeen;

    // Set once epoll reported the peer's FIN, a reset or an error: from then on a read never waits. A short read cannot tell that
    // the end is queued behind the bytes it returned, and no further edge would come for it (nginx's pending_eof).
    private volatile bool _readEnded;

    public LoopSocket(Socket socket)
    {
        Socket = socket;
        socket.Blocking = false;
        _handle = socket.SafeHandle;
        _fd = (int)_handle.DangerousGetHandle();
    }

    /// <summary>The .NET socket that owns the descriptor (options, endpoints, poll); never used for async I/O.</summary>
    public Socket Socket { get; }

    public int Fd => _fd;

    /// <summary>The loop's key for this socket (slot and generation), checked on every event so a stale one is ignored.</summary>
    internal ulong Token { get; set; }

    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>Watched by <paramref name="loop"/> from now on. Register after connect(2) returned: an unconnected socket polls as hung up.</summary>
    public void Register(EventLoop loop)
    {
        _loop = loop;
        loop.Add(this);
    }

    /// <summary>Called on the loop thread with the epoll event mask.</summary>
    internal void OnEvents(uint events)
    {
        if ((events & (Libc.EPOLLIN | Libc.EPOLLRDHUP | Libc.EPOLLHUP | Libc.EPOLLERR)) != 0)
        {
            if ((events & (Libc.EPOLLRDHUP | Libc.EPOLLHUP | Libc.EPOLLERR)) != 0) _readEnded = true;
            Interlocked.Increment(ref _readEdges);
            _reader.WakeIfArmed();
        }
        if ((events & (Libc.EPOLLOUT | Libc.EPOLLHUP | Libc.EPOLLERR)) != 0)
        {
            Interlocked.Increment(ref _writeEdges);
            _writer.WakeIfArmed();
        }
    }

    /// <summary>The loop saw the peer's FIN, a reset or an error (no syscall: what epoll already reported).</summary>
    public bool PeerClosed => _readEnded;

    /// <summary>Whether a read may find data (or the end): false only after a read drained the socket and no edge came since.</summary>
    public bool MayRead => Volatile.Read(ref _readEdges) != _readSeen || _readEnded || IsClosed;

    /// <summary>Completes when the socket may be read (at once when it may already), the socket is closed, or the token fires.</summary>
    public ValueTask WaitReadableAsync(CancellationToken cancellationToken = default) =>
        _readEnded ? default : Wait(_reader, ref _readEdges, ref _readSeen, cancellationToken);

    /// <summary>Completes when the socket may take more bytes, the socket is closed, or the token fires.</summary>
    public ValueTask WaitWritableAsync(CancellationToken cancellationToken = default) =>
        Wait(_writer, ref _writeEdges, ref _writeSeen, cancellationToken);

    private ValueTask Wait(Waiter waiter, ref int edges, ref int seen, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref edges) != seen || IsClosed) return default;
        var pending = waiter.Arm();
        // The loop bumps the count, then disarms; we arm, then re-read the count. With both fenced, one of us sees the other.
        if ((Volatile.Read(ref edges) != seen || IsClosed) && waiter.Disarm()) return default;
        return cancellationToken.CanBeCanceled ? WaitCancellableAsync(pending, waiter, cancellationToken) : pending;
    }

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
        int edges = Volatile.Read(ref _readEdges);
        nint n;
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            n = Libc.Recv(_fd, buffer);
        }
        finally
        {
            if (added) _handle.DangerousRelease();
        }
        if (n < 0)
        {
            if (n != -Libc.EAGAIN) throw Error((int)-n);
            _readSeen = edges;
            return -1;
        }
        // A TCP read returns less than asked only when nothing more was queued: no need to ask again before the next edge.
        if (n > 0 && n < buffer.Length) _readSeen = edges;
        return (int)n;
    }

    /// <summary>Reads at least one byte (or 0 at the end), waiting for an edge when the socket is known to be drained.</summary>
    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (MayRead)
        {
            int n = TryReceive(buffer.Span);
            if (n >= 0) return new ValueTask<int>(n);
        }
        return ReceiveSlowAsync(buffer, cancellationToken);
    }

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
        int edges = Volatile.Read(ref _writeEdges);
        nint n;
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            n = Libc.Send(_fd, data);
        }
        finally
        {
            if (added) _handle.DangerousRelease();
        }
        if (n < 0)
        {
            if (n != -Libc.EAGAIN) throw Error((int)-n);
            _writeSeen = edges;
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

    private async ValueTask SendSlowAsync(ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            await WaitWritableAsync().ConfigureAwait(false);
            int n = TrySend(data.Span);
            if (n > 0) data = data[n..];
        }
    }

    /// <summary>Sends a pipe's buffers, several per sendmsg(2).</summary>
    public ValueTask SendAsync(in ReadOnlySequence<byte> data)
    {
        if (data.IsSingleSegment) return SendAsync(data.First);
        var rest = data;
        while (!rest.IsEmpty)
        {
            long n = TrySendVector(rest);
            if (n < 0) return SendSlowAsync(rest);
            rest = rest.Slice(n);
        }
        return default;
    }

    private async ValueTask SendSlowAsync(ReadOnlySequence<byte> rest)
    {
        while (!rest.IsEmpty)
        {
            await WaitWritableAsync().ConfigureAwait(false);
            long n = TrySendVector(rest);
            if (n > 0) rest = rest.Slice(n);
        }
    }

    private const int MaxVectors = 16;

    private unsafe long TrySendVector(in ReadOnlySequence<byte> data)
    {
        var vectors = stackalloc Libc.IoVec[MaxVectors];
        var pins = new PinSet();
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
            int edges = Volatile.Read(ref _writeEdges);
            nint n;
            bool added = false;
            try
            {
                _handle.DangerousAddRef(ref added);
                n = Libc.SendVector(_fd, vectors, count);
            }
            finally
            {
                if (added) _handle.DangerousRelease();
            }
            if (n < 0)
            {
                if (n != -Libc.EAGAIN) throw Error((int)-n);
                _writeSeen = edges;
                return -1;
            }
            return n;
        }
        finally
        {
            for (int i = 0; i < count; i++) pins[i].Dispose();
        }
    }

    [System.Runtime.CompilerServices.InlineArray(MaxVectors)]
    private struct PinSet
    {
        private MemoryHandle _element;
    }

    /// <summary>Starts a connect(2); true when it completed at once, false while the handshake runs (wait for writable).</summary>
    public bool StartConnect(ReadOnlySpan<byte> socketAddress)
    {
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            int r = Libc.Connect(_fd, socketAddress);
            if (r == 0) return true;
            if (r == -Libc.EINPROGRESS) return false;
            throw Error(-r);
        }
        finally
        {
            if (added) _handle.DangerousRelease();
        }
    }

    /// <summary>Sends FIN both ways (pending reads see the end); the descriptor stays open until <see cref="Close"/>.</summary>
    public void Shutdown()
    {
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            Libc.Shutdown(_fd, Libc.SHUT_RDWR);
        }
        catch (ObjectDisposedException) { }
        finally
        {
            if (added) _handle.DangerousRelease();
        }
    }

    /// <summary>Stops watching and closes the descriptor (once a syscall in flight on another thread returns); wakes any waiter.</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        _loop?.Remove(this);
        Socket.Dispose();
        _reader.WakeIfArmed();
        _writer.WakeIfArmed();
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

        public void Cancel(CancellationToken token)
        {
            if (Interlocked.Exchange(ref _armed, 0) == 1) _core.SetException(new OperationCanceledException(token));
        }

        public void GetResult(short token) => _core.GetResult(token);
        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);
        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
