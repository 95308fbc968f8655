using System.Net;
using System.Net.Sockets;
using Gateway.Net;

namespace Gateway.Limits.Resp;

/// <summary>
/// One TCP connection to Redis on an <see cref="EventLoop"/>. Commands are written in the order they are issued (under one lock)
/// and sent at once from the issuing thread; Redis answers in that order, so each reply belongs to the oldest command still
/// waiting (a FIFO). Replies are parsed on the loop thread, which completes each command's wait inline: a check costs one send
/// and one recv, with no hop between threads. Any failure closes the connection and fails every command on it; the owner
/// (<see cref="RespClient"/>) opens a new one.
/// </summary>
internal sealed class RespConnection
{
    private readonly LoopSocket _socket;
    private readonly Lock _sync = new();
    private readonly Queue<RespPending> _fifo = new();
    private readonly TaskCompletionSource<string> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private byte[] _out = new byte[4096];
    private int _outStart, _outEnd;
    private bool _flushing, _broken, _closing;
    // Whether the owner's timeout sweep runs for this connection: it stops while no command waits (no timer wake-ups for an idle
    // gateway) and the next command starts it again (_onBusy).
    private bool _swept = true;
    private readonly Action _onBusy;
    // The reader's own (loop thread only): bytes received and not yet parsed are _in[_inStart.._inEnd].
    private byte[] _in = new byte[4096];
    private int _inStart, _inEnd;

    private RespConnection(LoopSocket socket, Action onBusy)
    {
        _socket = socket;
        _onBusy = onBusy;
    }

    /// <summary>Completes with the reason once the connection failed or was closed.</summary>
    public Task<string> Closed => _closed.Task;

    /// <summary>Connects to one of <paramref name="addresses"/> in turn, all within the token's time, and starts reading.</summary>
    public static async Task<RespConnection> ConnectAsync(IPAddress[] addresses, int port, EventLoop loop, Action onBusy, CancellationToken cancellationToken)
    {
        Exception? failure = null;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            LoopSocket? io = null;
            try
            {
                io = new LoopSocket(socket);
                socket.NoDelay = true; // a check is one small write that must leave now
                var endPoint = new IPEndPoint(address, port).Serialize();
                bool connected = io.StartConnect(endPoint.Buffer.Span[..endPoint.Size]);
                io.Register(loop);
                if (!connected)
                {
                    await io.WaitWritableAsync(cancellationToken).ConfigureAwait(false);
                    var error = (SocketError)(int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
                    if (error != SocketError.Success) throw new SocketException((int)error);
                }
                var connection = new RespConnection(io, onBusy);
                _ = connection.ReadAsync();
                return connection;
            }
            catch (SocketException e)
            {
                failure = e;
                if (io is not null) io.Close(); else socket.Dispose();
            }
            catch
            {
                if (io is not null) io.Close(); else socket.Dispose();
                throw;
            }
        }
        throw failure ?? new SocketException((int)SocketError.HostNotFound);
    }

    /// <summary>
    /// Writes the command and sends it now if the socket takes it (else the flusher sends it when it can). The reply, or a
    /// failure: not connected, or <paramref name="maxInFlight"/> commands already waiting. <paramref name="timed"/>: the timeout
    /// sweep may fail it open (<see cref="Sweep"/>).
    /// </summary>
    public ValueTask<RespReply> Issue(ReadOnlySpan<byte> command, long now, bool timed, int maxInFlight)
    {
        RespPending pending;
        bool wake = false;
        lock (_sync)
        {
            if (_broken) return new(RespReply.Failure("the Redis connection is closed"));
            if (_fifo.Count >= maxInFlight) return new(RespReply.Failure($"{_fifo.Count} Redis commands in flight"));
            Append(command);
            pending = RespPending.Rent(now, timed);
            _fifo.Enqueue(pending);
            if (!_swept) _swept = wake = true;
            if (!_flushing)
            {
                try
                {
                    if (!TrySendLocked())
                    {
                        _flushing = true;
                        _ = FlushAsync();
                    }
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    // Not here: failing the commands runs their waiters, which must not run under the issuer's locks.
                    _broken = true;
                    ThreadPool.UnsafeQueueUserWorkItem(static s => s.Connection.Close(s.Why), (Connection: this, Why: e.Message), preferLocal: false);
                }
            }
        }
        if (wake) _onBusy();
        return pending.Task;
    }

    private void Append(ReadOnlySpan<byte> command)
    {
        if (_outEnd + command.Length > _out.Length)
        {
            int length = _outEnd - _outStart;
            if (length + command.Length > _out.Length) Array.Resize(ref _out, Math.Max(_out.Length * 2, length + command.Length));
            Buffer.BlockCopy(_out, _outStart, _out, 0, length);
            _outStart = 0;
            _outEnd = length;
        }
        command.CopyTo(_out.AsSpan(_outEnd));
        _outEnd += command.Length;
    }

    /// <summary>Sends what is buffered; false when the kernel's buffer filled first.</summary>
    private bool TrySendLocked()
    {
        while (_outStart < _outEnd)
        {
            int n = _socket.TrySend(_out.AsSpan(_outStart, _outEnd - _outStart));
            if (n < 0) return false;
            _outStart += n;
        }
        _outStart = _outEnd = 0;
        return true;
    }

    private async Task FlushAsync()
    {
        try
        {
            while (true)
            {
                await _socket.WaitWritableAsync().ConfigureAwait(false);
                lock (_sync)
                {
                    if (_broken) return;
                    if (TrySendLocked())
                    {
                        _flushing = false;
                        return;
                    }
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            Close(e.Message);
        }
    }

    /// <summary>The read loop: resumed on the loop thread by each edge, it parses every whole reply and hands it to its command.</summary>
    private async Task ReadAsync()
    {
        try
        {
            while (true)
            {
                await _socket.WaitReadableAsync().ConfigureAwait(false);
                if (Volatile.Read(ref _broken)) return;
                if (_inEnd == _in.Length)
                {
                    if (_inStart == 0) Array.Resize(ref _in, _in.Length * 2); // one reply larger than the buffer
                    else
                    {
                        Buffer.BlockCopy(_in, _inStart, _in, 0, _inEnd - _inStart);
                        _inEnd -= _inStart;
                        _inStart = 0;
                    }
                }
                int n = _socket.TryReceive(_in.AsSpan(_inEnd));
                if (n < 0) continue;
                if (n == 0)
                {
                    Close("Redis closed the connection");
                    return;
                }
                _inEnd += n;
                Deliver();
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidDataException)
        {
            Close(e is InvalidDataException ? $"unreadable reply from Redis: {e.Message}" : e.Message);
        }
    }

    private void Deliver()
    {
        while (_inStart < _inEnd)
        {
            int used = RespParser.TryParse(_in.AsSpan(_inStart, _inEnd - _inStart), out var reply);
            if (used == 0) break;
            _inStart += used;
            RespPending? pending;
            lock (_sync) _fifo.TryDequeue(out pending);
            if (pending is null) throw new InvalidDataException("a reply to no command");
            pending.TryComplete(reply); // runs the waiter here, on the loop thread; dropped if it timed out already
            pending.Release();
        }
        if (_inStart == _inEnd) _inStart = _inEnd = 0;
    }

    /// <summary>
    /// Fails open the timed commands issued before <paramref name="expiredBefore"/> (their replies, when they come, are matched and
    /// dropped). <see cref="SweepResult.Stalled"/> when the oldest command has waited since before <paramref name="stalledBefore"/>:
    /// Redis stopped answering. <see cref="SweepResult.Idle"/>: nothing waits, and the sweep stops until the next command.
    /// Sweeps may overlap (a command restarts the timer while one runs): each collects under the lock, and a command failed twice
    /// is completed once.
    /// </summary>
    public SweepResult Sweep(long expiredBefore, long stalledBefore)
    {
        bool stalled;
        List<RespPending>? expired = null;
        lock (_sync)
        {
            if (_fifo.Count == 0)
            {
                _swept = false;
                return SweepResult.Idle;
            }
            foreach (var p in _fifo)
            {
                if (p.IssuedAt >= expiredBefore) break; // issued in order: the rest are younger
                if (p.Timed && !p.IsCompleted)
                {
                    p.AddOwner(); // kept from the pool until completed below, even if its reply comes first
                    (expired ??= []).Add(p);
                }
            }
            stalled = _fifo.TryPeek(out var oldest) && oldest.IssuedAt < stalledBefore;
        }
        if (expired is not null)
            foreach (var p in expired)
            {
                p.TryComplete(RespReply.Failure("Redis did not answer in time"));
                p.Release();
            }
        return stalled ? SweepResult.Stalled : SweepResult.Busy;
    }

    /// <summary>Closes the socket and fails every command waiting on it; from any thread, holding no lock of the issuers.</summary>
    public void Close(string why)
    {
        RespPending[] failed;
        lock (_sync)
        {
            if (_closing) return;
            _closing = _broken = true;
            failed = _fifo.ToArray();
            _fifo.Clear();
        }
        _socket.Close();
        _closed.TrySetResult(why);
        var reply = RespReply.Failure(why);
        foreach (var p in failed)
        {
            p.TryComplete(reply);
            p.Release();
        }
    }
}

internal enum SweepResult : byte { Busy, Idle, Stalled }
