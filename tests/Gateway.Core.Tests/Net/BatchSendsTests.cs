using System.Buffers;
using System.Net.Sockets;
using Gateway.Net;

namespace Gateway.Core.Tests.Net;

/// <summary>Sends a loop's thread queues go out once the loop has handled its batch of events, failures included.</summary>
public sealed class BatchSendsTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);
    private static readonly EventLoop Loop = new(8); // the test's own, apart from the process's

    private readonly Socket _peer;
    private readonly LoopSocket _socket;

    public BatchSendsTests()
    {
        (var ours, _peer) = LoopbackPair.Open();
        _peer.ReceiveTimeout = (int)Patience.TotalMilliseconds;
        _socket = new LoopSocket(ours);
        _socket.Register(Loop);
    }

    public void Dispose()
    {
        _socket.Close();
        _peer.Dispose();
    }

    private static byte[] Rent(ReadOnlySpan<byte> bytes)
    {
        var rented = ArrayPool<byte>.Shared.Rent(bytes.Length);
        bytes.CopyTo(rented);
        return rented;
    }

    [Fact]
    public async Task A_send_queued_on_a_loop_goes_out_once_the_batch_is_handled()
    {
        Assert.False(BatchSends.TryQueue(_socket, new byte[1], 1)); // off the loops: the caller sends itself

        int seenDuringBatch = -1;
        bool queued = await LoopThread.RunAsync(Loop, () =>
        {
            bool ok = BatchSends.TryQueue(_socket, Rent("hello"u8), 5);
            Thread.Sleep(50); // a send made at once would be in the peer's buffer by now
            seenDuringBatch = _peer.Available;
            return Task.FromResult(ok);
        });

        Assert.True(queued);
        Assert.Equal(0, seenDuringBatch);
        var received = new byte[16];
        int n = _peer.Receive(received);
        Assert.Equal("hello"u8.ToArray(), received[..n]);
    }

    [Fact]
    public async Task A_full_queue_goes_out_mid_batch()
    {
        int seenDuringBatch = -1;
        await LoopThread.RunAsync(Loop, () =>
        {
            for (int i = 0; i <= BatchSends.MaxQueued; i++) BatchSends.TryQueue(_socket, Rent([(byte)i]), 1);
            Thread.Sleep(50);
            seenDuringBatch = _peer.Available;
            return Task.FromResult(0);
        });

        Assert.Equal(BatchSends.MaxQueued, seenDuringBatch); // the first MaxQueued went when one more came; the last with the batch
        var received = new byte[BatchSends.MaxQueued + 1];
        int total = 0;
        while (total < received.Length) total += _peer.Receive(received, total, received.Length - total, SocketFlags.None);
        Assert.Equal(Enumerable.Range(0, BatchSends.MaxQueued + 1).Select(i => (byte)i), received); // in order
    }

    [Fact]
    public async Task A_queued_send_that_fails_shuts_the_socket_down_so_the_waiting_read_finds_the_end()
    {
        _socket.Socket.Shutdown(SocketShutdown.Send); // the send will fail (EPIPE); nothing else would wake the read
        var read = _socket.ReceiveAsync(new byte[16]).AsTask();
        await Task.Delay(20);
        Assert.False(read.IsCompleted);

        await LoopThread.RunAsync(Loop, () => Task.FromResult(BatchSends.TryQueue(_socket, Rent("x"u8), 1)));

        Assert.Equal(0, await read.WaitAsync(Patience));
        Assert.True(_socket.PeerClosed);
    }

    [Fact]
    public async Task A_queued_send_larger_than_the_socket_buffers_finishes_as_the_peer_reads()
    {
        var data = new byte[4 << 20];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(i * 7 + i / 4096);

        await LoopThread.RunAsync(Loop, () => Task.FromResult(BatchSends.TryQueue(_socket, Rent(data), data.Length)));

        var received = new byte[data.Length];
        int total = 0;
        while (total < received.Length)
        {
            int n = _peer.Receive(received, total, received.Length - total, SocketFlags.None);
            Assert.True(n > 0, $"the peer saw the end after {total} bytes");
            total += n;
        }
        Assert.Equal(data, received);
    }
}
