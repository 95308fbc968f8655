using System.Net;
using System.Net.Sockets;
using System.Text;
using Gateway.Net;

namespace Gateway.Core.Tests.Net;

/// <summary>The event loop's readiness bookkeeping on real loopback sockets: when a read waits, and what ends a wait.</summary>
public sealed class LoopSocketTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);
    private readonly Socket _peer;
    private readonly LoopSocket _socket;

    public LoopSocketTests()
    {
        (var client, _peer) = LoopbackPair.Open();
        _socket = new LoopSocket(client);
        _socket.Register(EventLoops.Next());
    }

    public void Dispose()
    {
        _socket.Close();
        _peer.Dispose();
    }

    private async Task<string> ReadAsync(int size = 64)
    {
        var buffer = new byte[size];
        int n = await _socket.ReceiveAsync(buffer).AsTask().WaitAsync(Patience);
        return Encoding.ASCII.GetString(buffer, 0, n);
    }

    [Fact]
    public async Task After_a_short_read_a_read_waits_for_the_next_bytes()
    {
        _peer.Send("abc"u8);
        Assert.Equal("abc", await ReadAsync());
        Assert.False(_socket.MayRead); // drained: the next read waits for an edge instead of asking the kernel

        var next = _socket.ReceiveAsync(new byte[64]).AsTask();
        await Task.Delay(50);
        Assert.False(next.IsCompleted);
        _peer.Send("de"u8);
        Assert.Equal(2, await next.WaitAsync(Patience));
    }

    [Fact]
    public async Task A_read_that_fills_its_buffer_leaves_the_socket_readable()
    {
        _peer.Send("abcdef"u8);
        await _socket.WaitReadableAsync().AsTask().WaitAsync(Patience);
        await Task.Delay(20); // both bytes and edge are in
        Assert.Equal("abc", await ReadAsync(3));
        Assert.True(_socket.LastReadFilled);
        Assert.True(_socket.MayRead);
        Assert.Equal("def", await ReadAsync(3)); // no wait: the rest was queued
    }

    [Fact]
    public async Task The_end_queued_behind_the_last_bytes_is_read_without_waiting()
    {
        _peer.Send("bye"u8);
        _peer.Shutdown(SocketShutdown.Send); // FIN right behind the bytes: one edge may carry both
        await Task.Delay(50);
        Assert.Equal("bye", await ReadAsync());
        Assert.True(_socket.PeerClosed);
        Assert.Equal("", await ReadAsync()); // 0 = the end, at once: no edge would come for it
    }

    [Fact]
    public async Task Peek_finds_bytes_without_taking_them_and_marks_a_drained_socket()
    {
        _peer.Send("x"u8);
        Assert.Equal("x", await ReadAsync());
        Assert.False(_socket.Peek()); // nothing there: the socket counts as drained
        Assert.False(_socket.MayRead);
        _peer.Send("yz"u8);
        await _socket.WaitReadableAsync().AsTask().WaitAsync(Patience);
        Assert.True(_socket.Peek());
        Assert.Equal("yz", await ReadAsync()); // still there
    }

    [Fact]
    public async Task Close_from_another_thread_ends_a_waiting_read()
    {
        var read = _socket.ReceiveAsync(new byte[64]).AsTask();
        await Task.Delay(50);
        Assert.False(read.IsCompleted);
        await Task.Run(_socket.Close);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => read.WaitAsync(Patience));
    }

    [Fact]
    public async Task Close_while_sends_run_on_other_threads_closes_the_descriptor_once_after_the_last_of_them()
    {
        // Senders keep leasing the descriptor while another thread closes it: every send either goes out or finds the socket
        // closed (ObjectDisposedException), and the descriptor is closed (the Socket disposed) once no send holds it.
        var data = new byte[16];
        using var drain = new CancellationTokenSource();
        var reader = Task.Run(async () =>
        {
            var sink = new byte[64 * 1024];
            try { while (await _peer.ReceiveAsync(sink, drain.Token) > 0) { } } catch (Exception) { }
        });
        int sent = 0, refused = 0;
        var senders = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
        {
            while (true)
            {
                try
                {
                    if (_socket.TrySend(data) > 0) Interlocked.Increment(ref sent);
                }
                catch (ObjectDisposedException) { Interlocked.Increment(ref refused); return; }
                catch (SocketException) { } // a send racing the close may see the descriptor shut
            }
        })).ToArray();
        foreach (var sender in senders) sender.Start();
        var deadline = DateTime.UtcNow + Patience;
        while (Volatile.Read(ref sent) < 200 && DateTime.UtcNow < deadline) Thread.Sleep(1);
        _socket.Close();
        foreach (var sender in senders) Assert.True(sender.Join(Patience));
        drain.Cancel();
        await reader;
        Assert.Equal(2, refused);
        Assert.True(_socket.IsClosed);
        Assert.Throws<ObjectDisposedException>(() => _socket.Socket.Available); // disposed: the descriptor is gone
        Assert.Throws<ObjectDisposedException>(() => _socket.TrySend(data));
    }

    [Fact]
    public async Task Shutdown_ends_a_waiting_read_with_the_end_of_the_stream()
    {
        var read = _socket.ReceiveAsync(new byte[64]).AsTask();
        await Task.Delay(50);
        await Task.Run(_socket.Shutdown);
        Assert.Equal(0, await read.WaitAsync(Patience));
    }

    [Fact]
    public async Task A_cancelled_wait_throws_and_the_next_wait_still_works()
    {
        using var cts = new CancellationTokenSource();
        var wait = _socket.WaitReadableAsync(cts.Token).AsTask();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.WaitAsync(Patience));
        _peer.Send("ok"u8);
        Assert.Equal("ok", await ReadAsync());
    }

    [Fact]
    public async Task A_send_bigger_than_the_socket_buffers_waits_for_room_and_arrives_whole()
    {
        var data = new byte[16 * 1024 * 1024];
        Random.Shared.NextBytes(data);
        var send = _socket.SendAsync(data).AsTask(); // far beyond the kernel's buffers while the peer is not reading
        await Task.Delay(100);
        Assert.False(send.IsCompleted);
        var received = new MemoryStream();
        var buffer = new byte[1 << 16];
        while (received.Length < data.Length)
        {
            int n = await _peer.ReceiveAsync(buffer).WaitAsync(Patience);
            Assert.True(n > 0);
            received.Write(buffer, 0, n);
        }
        await send.WaitAsync(Patience);
        Assert.Equal(data, received.ToArray());
    }
}
