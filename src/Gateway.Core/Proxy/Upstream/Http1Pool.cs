using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Gateway.Net;

namespace Gateway.Proxy.Upstream;

/// <summary>
/// The connections to one backend (host:port). Idle connections are kept per event loop, as nginx keeps them per worker: a request
/// rents from its client connection's loop (its home) and opens new connections there, so the upstream's answer resumes on the
/// thread that holds the client and the relay writes from it. (A connection watched by another loop resumes the exchange there:
/// with two loops, a shared stack cost 30.6 against 28.4 µs per static JSON request, bench/results/2026-11-26-session8.md.)
/// A request with no home (Kestrel's socket transport, or a caller off the loops) takes from any stack and opens on the next loop
/// in turn. With many loops and few requests this opens more connections
/// than one shared stack would, as nginx's workers and Envoy's threads do.
/// Each stack sits under a lock held for a push or a pop (no allocation, unlike ConcurrentStack's node per push): last in, first
/// out, so the busiest few stay warm and the surplus sinks to the bottom, where it is also the oldest, so the sweep trims from there.
/// </summary>
internal sealed class Http1Pool : IDisposable
{
    /// <summary>Idle time after which a connection is polled for a server-side close before reuse.</summary>
    private const long PollAfterIdleMs = 1000;

    private readonly Http1ClientOptions _options;
    private readonly long _idleMs;
    private readonly EndPoint _endPoint;
    private readonly Lock _growLock = new();
    private IdleStack[] _stacks = [new IdleStack()];
    private int _nextStack;
    private volatile bool _disposed;
    private long _opened;
    private long _open;
    private long _foundDead;
    private readonly Lock _resolveLock = new();
    private Task<IPAddress[]>? _addresses; // resolving, or resolved at _resolvedAt (Environment.TickCount64)
    private long _resolvedAt, _resolutions;

    public Http1Pool(string host, int port, Http1ClientOptions options)
    {
        _options = options;
        _idleMs = (long)options.IdleTimeout.TotalMilliseconds;
        if (IPAddress.TryParse(host, out var address))
        {
            _endPoint = new IPEndPoint(address, port);
        }
        else
        {
            _endPoint = new DnsEndPoint(host, port);
        }
    }

    /// <summary>Connections opened since the start (for tests and metrics).</summary>
    public long ConnectionsOpened => Interlocked.Read(ref _opened);

    /// <summary>Connections open now, idle or busy.</summary>
    public long ConnectionsOpen => Interlocked.Read(ref _open);

    /// <summary>Times the backend's name was resolved (for tests).</summary>
    internal long Resolutions => Interlocked.Read(ref _resolutions);

    /// <summary>Idle connections found closed by the server when polled before reuse (for tests).</summary>
    internal long FoundDeadBeforeUse => Interlocked.Read(ref _foundDead);

    public int IdleCount
    {
        get
        {
            int count = 0;
            foreach (var stack in Volatile.Read(ref _stacks)) count += stack.Count;
            return count;
        }
    }

    /// <summary>The idle stack of loop <paramref name="index"/>; the array grows (copied, under a lock) the first time a loop shows up.</summary>
    private IdleStack StackFor(int index)
    {
        var stacks = Volatile.Read(ref _stacks);
        if (index < stacks.Length) return stacks[index];
        lock (_growLock)
        {
            stacks = _stacks;
            if (index >= stacks.Length)
            {
                var larger = new IdleStack[index + 1];
                Array.Copy(stacks, larger, stacks.Length);
                for (int i = stacks.Length; i < larger.Length; i++) larger[i] = new IdleStack();
                Volatile.Write(ref _stacks, stacks = larger);
            }
            return stacks[index];
        }
    }

    /// <summary>
    /// The most recently used idle connection that is still usable, or null; stale ones met on the way are closed. With a
    /// <paramref name="home"/> loop only its connections qualify: opening one there beats resuming every exchange on another thread.
    /// </summary>
    public Http1Connection? TryRentIdle(EventLoop? home)
    {
        if (home is not null) return TryRentIdle(StackFor(home.Index));
        var stacks = Volatile.Read(ref _stacks);
        int first = (int)((uint)Interlocked.Increment(ref _nextStack) % (uint)stacks.Length);
        for (int i = 0; i < stacks.Length; i++)
            if (TryRentIdle(stacks[(first + i) % stacks.Length]) is { } connection) return connection;
        return null;
    }

    private Http1Connection? TryRentIdle(IdleStack stack)
    {
        long now = Environment.TickCount64;
        while (stack.TryPop() is { } connection)
        {
            long idle = now - connection.IdleSince;
            // A poll(2) per request costs about as much as the rest of the pool: only connections idle long enough for a server's
            // keep-alive close to be plausible, or that the loop saw readable while idle, are polled. A fresher one the server
            // dropped anyway (a crash, a restart) fails before any response byte, and SendAsync retries that once on a new
            // connection. A close the event loop already saw costs nothing. A readable idle connection is never reused: the bytes
            // would be taken as the next request's answer, which may be another key's (audit: a server that sent a second response
            // 50 ms after the first had it relayed to the next request for another model).
            if (idle < _idleMs && !connection.KnownDead &&
                (idle < PollAfterIdleMs && connection.QuietWhileIdle || connection.IsUsableWhenIdle())) return connection;
            if (idle < _idleMs) Interlocked.Increment(ref _foundDead);
            connection.Discard();
        }
        return null;
    }

    public void Return(Http1Connection connection)
    {
        connection.IdleSince = Environment.TickCount64;
        var stack = StackFor(connection.LoopIndex);
        if (!_disposed && stack.TryPush(connection, _options.MaxIdleConnectionsPerEndpoint))
        {
            // Raced with Dispose: its drain may have passed this stack already. (Dispose sets the flag and reads the stacks under
            // the lock that adds stacks, and each push and drain take the stack's lock, so one of the two sees the other.)
            if (_disposed) stack.Drain();
            return;
        }
        connection.Discard();
    }

    /// <summary>
    /// Opens a connection on <paramref name="home"/> (else the next loop in turn), so the exchange resumes on the thread of the
    /// client connection it serves. A name's addresses (see <see cref="ResolveAsync"/>) are tried in turn, all within the one connect
    /// timeout, as Socket.ConnectAsync does with a name (an address that drops SYNs can use all of it).
    /// </summary>
    public async ValueTask<Http1Connection> ConnectAsync(EventLoop? home, CancellationToken cancellationToken)
    {
        var loop = home ?? EventLoops.Next();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.ConnectTimeout);
        try
        {
            IPAddress[] addresses;
            int port;
            if (_endPoint is IPEndPoint ip)
            {
                addresses = [ip.Address];
                port = ip.Port;
            }
            else
            {
                var dns = (DnsEndPoint)_endPoint;
                port = dns.Port;
                var resolving = ResolveAsync(dns.Host);
                try { addresses = await resolving.WaitAsync(timeout.Token).ConfigureAwait(false); }
                catch (SocketException e)
                {
                    throw new UpstreamException(UpstreamFailure.ConnectFailed, $"Connecting to {_endPoint} failed: {e.SocketErrorCode}.", e);
                }
                if (addresses.Length == 0)
                {
                    Forget(resolving);
                    throw new UpstreamException(UpstreamFailure.ConnectFailed, $"Connecting to {_endPoint} failed: no address.");
                }
                try { return await ConnectAnyAsync(addresses, port, loop, timeout.Token).ConfigureAwait(false); }
                catch (UpstreamException)
                {
                    Forget(resolving); // none of them took it: the next connect asks the resolver again (the backend may have moved)
                    throw;
                }
            }
            return await ConnectAnyAsync(addresses, port, loop, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new UpstreamException(UpstreamFailure.ConnectTimeout, $"Connecting to {_endPoint} timed out after {_options.ConnectTimeout.TotalSeconds:0.###} s.");
        }
    }

    /// <summary>
    /// The backend's addresses: resolved once per <see cref="Http1ClientOptions.AddressLifetime"/> and shared by every connect in
    /// between, a resolution in flight included (a failed one is not kept: the next connect tries again). The resolution runs
    /// without the caller's token, since other connects wait on it; each waits only as long as its own connect timeout.
    /// </summary>
    private Task<IPAddress[]> ResolveAsync(string host)
    {
        lock (_resolveLock)
        {
            var current = _addresses;
            if (current is not null && (!current.IsCompleted ||
                (current.IsCompletedSuccessfully && Environment.TickCount64 - Volatile.Read(ref _resolvedAt) < (long)_options.AddressLifetime.TotalMilliseconds)))
                return current;
            Interlocked.Increment(ref _resolutions);
            return _addresses = ResolveOnceAsync(host);
        }
    }

    private async Task<IPAddress[]> ResolveOnceAsync(string host)
    {
        var addresses = await Dns.GetHostAddressesAsync(host).ConfigureAwait(false); // a failure faults the task, which is not reused
        Volatile.Write(ref _resolvedAt, Environment.TickCount64); // before the task completes, so no waiter sees it done and stale
        return addresses;
    }

    private void Forget(Task<IPAddress[]> resolved)
    {
        lock (_resolveLock)
            if (_addresses == resolved) _addresses = null;
    }

    private async ValueTask<Http1Connection> ConnectAnyAsync(IPAddress[] addresses, int port, EventLoop loop, CancellationToken cancellationToken)
    {
        UpstreamException? failure = null;
        foreach (var address in addresses)
        {
            try
            {
                var connection = new Http1Connection(this, await ConnectOneAsync(new IPEndPoint(address, port), loop, cancellationToken).ConfigureAwait(false));
                Interlocked.Increment(ref _opened);
                Interlocked.Increment(ref _open);
                return connection;
            }
            catch (UpstreamException e) when (e.Failure == UpstreamFailure.ConnectFailed)
            {
                failure = e; // the next address, if any
            }
        }
        throw failure!;
    }

    private async ValueTask<LoopSocket> ConnectOneAsync(IPEndPoint endPoint, EventLoop loop, CancellationToken cancellationToken)
    {
        Socket socket;
        try { socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp); }
        catch (SocketException e)
        {
            // Out of file descriptors, typically: this backend is not at fault, but the request cannot go out; a 502, not a crash.
            throw new UpstreamException(UpstreamFailure.ConnectFailed, $"No socket for {_endPoint}: {e.SocketErrorCode}.", e);
        }
        LoopSocket? io = null;
        try
        {
            io = new LoopSocket(socket);
            socket.NoDelay = true; // the request and every SSE chunk must leave now, not after Nagle's wait for an ACK
            var address = endPoint.Serialize();
            bool connected = io.StartConnect(address.Buffer.Span[..address.Size]);
            io.Register(loop);
            if (!connected)
            {
                await io.WaitWritableAsync(cancellationToken).ConfigureAwait(false);
                var error = (SocketError)(int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
                if (error != SocketError.Success) throw new SocketException((int)error);
            }
            return io;
        }
        catch (SocketException e)
        {
            Close(io, socket);
            throw new UpstreamException(UpstreamFailure.ConnectFailed, $"Connecting to {_endPoint} failed: {e.SocketErrorCode}.", e);
        }
        catch
        {
            Close(io, socket);
            throw;
        }
    }

    private static void Close(LoopSocket? io, Socket socket)
    {
        if (io is not null) io.Close();
        else socket.Dispose();
    }

    internal void OnClosed() => Interlocked.Decrement(ref _open);

    /// <summary>Closes the connections idle for longer than the idle timeout; they are all at the bottom of each stack.</summary>
    public void Sweep(long now)
    {
        foreach (var stack in Volatile.Read(ref _stacks)) stack.Sweep(now, _idleMs);
    }

    public void Dispose()
    {
        IdleStack[] stacks;
        lock (_growLock)
        {
            _disposed = true;
            stacks = _stacks;
        }
        foreach (var stack in stacks) stack.Drain();
    }

    /// <summary>One loop's idle connections: a LIFO array under a lock held only for a push, a pop or a trim.</summary>
    private sealed class IdleStack
    {
        private readonly Lock _lock = new();
        private Http1Connection[] _idle = new Http1Connection[16];
        private int _count;

        public int Count
        {
            get { lock (_lock) return _count; }
        }

        public Http1Connection? TryPop()
        {
            lock (_lock)
            {
                if (_count == 0) return null;
                var connection = _idle[--_count];
                _idle[_count] = null!;
                return connection;
            }
        }

        public bool TryPush(Http1Connection connection, int max)
        {
            lock (_lock)
            {
                if (_count >= max) return false;
                if (_count == _idle.Length) Array.Resize(ref _idle, _idle.Length * 2);
                _idle[_count++] = connection;
                return true;
            }
        }

        public void Sweep(long now, long idleMs)
        {
            Http1Connection[] expired;
            int n = 0;
            lock (_lock)
            {
                while (n < _count && now - _idle[n].IdleSince >= idleMs) n++;
                if (n == 0) return;
                expired = ArrayPool<Http1Connection>.Shared.Rent(n);
                Array.Copy(_idle, expired, n);
                Array.Copy(_idle, n, _idle, 0, _count - n);
                Array.Clear(_idle, _count - n, n);
                _count -= n;
            }
            // Closing is a syscall per socket: outside the lock, so requests renting meanwhile do not wait for it.
            for (int i = 0; i < n; i++) expired[i].Discard();
            ArrayPool<Http1Connection>.Shared.Return(expired, clearArray: true);
        }

        public void Drain()
        {
            while (TryPop() is { } connection) connection.Discard();
        }
    }
}
