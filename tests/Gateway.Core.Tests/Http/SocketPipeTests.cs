using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Gateway.Http.Transport;
using Gateway.Core.Tests.Net;
using Gateway.Net;
using Microsoft.AspNetCore.Connections;

namespace Gateway.Core.Tests.Http;

/// <summary>
/// Kestrel's input and output on the loop transport, on real loopback sockets: the reader the loop fills on each edge and the
/// writer whose flush is the send. What a pipe guaranteed (order, back-pressure, examined vs consumed, cancellation, the end) must
/// still hold without one.
/// </summary>
public sealed class SocketPipeTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private readonly Socket _peer;
    private readonly LoopSocket _socket;
    private readonly SocketPipeReader _reader;
    private readonly SocketPipeWriter _writer;
    private readonly TaskCompletionSource _peerGone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<Exception?> _writerDone = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public SocketPipeTests()
    {
        (var client, _peer) = LoopbackPair.Open();
        _socket = new LoopSocket(client);
        _reader = new SocketPipeReader(_socket, inlineIo: true, () => _peerGone.TrySetResult());
        _writer = new SocketPipeWriter(_socket, inlineIo: true, TimeSpan.FromSeconds(30), e => _writerDone.TrySetResult(e));
        _socket.ReadReady = _reader;
        _socket.Register(EventLoops.Next());
    }

    public void Dispose()
    {
        _socket.Close();
        _peer.Dispose();
    }

    [Fact]
    public async Task Bytes_sent_in_pieces_are_read_in_order_and_a_read_waits_only_when_all_was_examined()
    {
        _peer.Send("GET / HT"u8);
        var first = await _reader.ReadAsync().AsTask().WaitAsync(Patience);
        Assert.Equal("GET / HT", Text(first.Buffer));
        // Examined everything, consumed nothing (a parser that needs more): the next read waits for new bytes.
        _reader.AdvanceTo(first.Buffer.Start, first.Buffer.End);
        var second = _reader.ReadAsync().AsTask();
        await Task.Delay(50);
        Assert.False(second.IsCompleted);
        _peer.Send("TP/1.1\r\n"u8);
        var result = await second.WaitAsync(Patience);
        Assert.Equal("GET / HTTP/1.1\r\n", Text(result.Buffer)); // the unconsumed bytes come again, with the new ones

        // Examined less than all: the next read returns at once with the same bytes.
        _reader.AdvanceTo(result.Buffer.GetPosition(4), result.Buffer.GetPosition(6));
        Assert.True(_reader.ReadAsync().IsCompleted);
    }

    [Fact]
    public async Task A_large_body_arrives_whole_while_the_reader_holds_at_most_about_a_megabyte()
    {
        var body = new byte[5 * 1024 * 1024];
        new Random(7).NextBytes(body);
        var sending = Task.Run(() => _peer.Send(body));

        var received = new MemoryStream();
        long mostHeld = 0;
        while (received.Length < body.Length)
        {
            var read = await _reader.ReadAsync().AsTask().WaitAsync(Patience);
            mostHeld = Math.Max(mostHeld, read.Buffer.Length);
            // Take half of what is there, slowly, so the sender outruns the reader and the buffer fills. (Examining all while
            // consuming little would stall at the limit, as a pipe's paused writer does: Kestrel consumes what it parsed.)
            var take = read.Buffer.Slice(0, Math.Max(1, read.Buffer.Length / 2));
            foreach (var segment in take) received.Write(segment.Span);
            _reader.AdvanceTo(take.End);
            await Task.Delay(1);
        }
        await sending.WaitAsync(Patience);
        Assert.Equal(body, received.ToArray());
        Assert.InRange(mostHeld, 1, 1024 * 1024 + 64 * 1024); // stopped reading at 1 MB (plus the last recv's block)
    }

    [Fact]
    public async Task The_peers_FIN_is_seen_while_nobody_reads_and_the_bytes_before_it_are_kept()
    {
        _peer.Send("last words"u8);
        _peer.Shutdown(SocketShutdown.Send);
        await _peerGone.Task.WaitAsync(Patience); // no read was pending: the loop found the end itself

        var read = await _reader.ReadAsync().AsTask().WaitAsync(Patience);
        Assert.Equal("last words", Text(read.Buffer));
        Assert.True(read.IsCompleted);
    }

    [Fact]
    public async Task Cancelling_a_pending_read_wakes_it_as_cancelled_and_a_cancel_with_none_pending_cancels_the_next()
    {
        var pending = _reader.ReadAsync().AsTask();
        _reader.CancelPendingRead();
        Assert.True((await pending.WaitAsync(Patience)).IsCanceled);

        _reader.CancelPendingRead();
        var next = await _reader.ReadAsync().AsTask().WaitAsync(Patience);
        Assert.True(next.IsCanceled);

        using var cts = new CancellationTokenSource();
        var withToken = _reader.ReadAsync(cts.Token).AsTask();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => withToken.WaitAsync(Patience));

        _peer.Send("x"u8); // and the reader still works
        Assert.Equal("x", Text((await _reader.ReadAsync().AsTask().WaitAsync(Patience)).Buffer));
    }

    [Fact]
    public async Task A_failed_connection_fails_a_pending_read_with_the_reason()
    {
        var pending = _reader.ReadAsync().AsTask();
        var reason = new ConnectionAbortedException("aborted by the test");
        _reader.Fail(reason);
        Assert.Same(reason, await Assert.ThrowsAsync<ConnectionAbortedException>(() => pending.WaitAsync(Patience)));
    }

    [Fact]
    public async Task A_reset_from_the_peer_is_a_connection_reset()
    {
        var pending = _reader.ReadAsync().AsTask();
        _peer.LingerState = new LingerOption(true, 0);
        _peer.Close(); // RST
        await Assert.ThrowsAsync<ConnectionResetException>(() => pending.WaitAsync(Patience));
        await _peerGone.Task.WaitAsync(Patience);
    }

    [Fact]
    public async Task Writes_larger_than_the_kernels_buffers_arrive_whole_and_in_order_to_a_slow_reader()
    {
        var data = new byte[4 * 1024 * 1024];
        new Random(3).NextBytes(data);
        var receiving = Task.Run(async () =>
        {
            var all = new MemoryStream();
            var buffer = new byte[16384];
            while (all.Length < data.Length)
            {
                int n = await _peer.ReceiveAsync(buffer);
                if (n == 0) break;
                all.Write(buffer, 0, n);
                if (all.Length < 256 * 1024) await Task.Delay(2); // slow at first: the kernel's buffers fill and flushes wait
            }
            return all.ToArray();
        });

        // Kestrel's shapes: small writes, a write bigger than a block, and flushes in between.
        int offset = 0, step = 0;
        bool waited = false;
        while (offset < data.Length)
        {
            int size = Math.Min(data.Length - offset, (step++ % 3) switch { 0 => 100, 1 => 3000, _ => 70_000 });
            var span = _writer.GetSpan(size);
            data.AsSpan(offset, size).CopyTo(span);
            _writer.Advance(size);
            offset += size;
            var flush = _writer.FlushAsync();
            waited |= !flush.IsCompleted;
            Assert.False((await flush).IsCompleted);
        }
        Assert.True(waited, "no flush ever waited for the kernel");
        Assert.Equal(data, await receiving.WaitAsync(Patience));
    }

    [Fact]
    public async Task Completing_the_writer_sends_what_was_never_flushed_then_reports_done()
    {
        "unflushed tail"u8.CopyTo(_writer.GetSpan(64));
        _writer.Advance(14);
        _writer.Complete();
        Assert.Null(await _writerDone.Task.WaitAsync(Patience)); // done without an error: the connection sends its FIN now

        var buffer = new byte[64];
        int n = await _peer.ReceiveAsync(buffer).WaitAsync(Patience);
        Assert.Equal("unflushed tail", System.Text.Encoding.ASCII.GetString(buffer, 0, n));
    }

    [Fact]
    public async Task After_a_failed_send_flushes_report_the_end_and_the_writer_reports_the_error()
    {
        _peer.LingerState = new LingerOption(true, 0);
        _peer.Close(); // RST: a send soon fails
        FlushResult result = default;
        for (int i = 0; i < 100 && !result.IsCompleted; i++)
        {
            _writer.GetSpan(4096);
            _writer.Advance(4096);
            result = await _writer.FlushAsync().AsTask().WaitAsync(Patience);
            if (!result.IsCompleted) await Task.Delay(10);
        }
        Assert.True(result.IsCompleted);
        Assert.IsType<ConnectionResetException>(await _writerDone.Task.WaitAsync(Patience));
    }

    /// <summary>
    /// An abort while Kestrel waits for a read must fail that read with the reason: the connection fails the reader before it
    /// shuts the socket down, or the loop could read the shutdown as the client's FIN and report a clean end (Kestrel then
    /// throws "unexpected end of request content", and a client that left is answered as a bad request). 300 tries; the first
    /// build gave a clean end in about a third (found in review).
    /// </summary>
    [Fact]
    public async Task An_abort_reaches_a_waiting_read_as_the_abort_never_as_the_end_of_the_stream()
    {
        int cleanEnds = 0;
        for (int i = 0; i < 300; i++)
        {
            var (client, peer) = LoopbackPair.Open();
            using var _ = peer;
            var connection = new LoopConnection(client, EventLoops.Next(), inlineIo: true, TimeSpan.FromSeconds(30));
            var pending = connection.Transport.Input.ReadAsync().AsTask();
            var abort = Task.Run(() => connection.Abort(new ConnectionAbortedException("test abort")));
            try
            {
                if ((await pending.WaitAsync(Patience)).IsCompleted) cleanEnds++;
            }
            catch (ConnectionAbortedException) { } // the reason, as it should be
            await abort;
            await connection.DisposeAsync();
        }
        Assert.Equal(0, cleanEnds);
    }

    /// <summary>
    /// A token's callback that started while another waker (data, CancelPendingRead, a failure) completed the read must not
    /// cancel the next read, which has another token or none (a pipe checks the same). The test holds the reader's lock to pin
    /// the callback between the two reads (found in review).
    /// </summary>
    [Fact]
#pragma warning disable xUnit1031 // blocking on purpose: a Lock is held by one thread, so this test cannot await while it holds it
    public void A_late_token_callback_does_not_cancel_the_next_read()
    {
        using var cts = new CancellationTokenSource();
        var first = _reader.ReadAsync(cts.Token);
        Assert.False(first.IsCompleted);
        var gate = (Lock)typeof(SocketPipeReader).GetField("_lock", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(_reader)!;
        var cancelling = new Thread(cts.Cancel);
        ValueTask<ReadResult> second;
        gate.Enter();
        try
        {
            cancelling.Start(); // its callback waits at the reader's lock
            Assert.True(SpinWait.SpinUntil(() => cts.IsCancellationRequested, Patience));
            Thread.Sleep(100); // the flag is set before the callbacks run: let this one reach the lock
            _reader.CancelPendingRead(); // another waker comes first (Lock is reentrant: this thread holds it)
            Assert.True(first.IsCompleted);
            _reader.AdvanceTo(first.GetAwaiter().GetResult().Buffer.End);
            second = _reader.ReadAsync(); // the next read, with no token
        }
        finally { gate.Exit(); }
        Assert.True(cancelling.Join(Patience));
        Thread.Sleep(100);
        Assert.False(second.IsCompleted, "the next read was cancelled by the earlier read's token");
    }
#pragma warning restore xUnit1031

    /// <summary>As with a pipe, a flush that CancelPendingFlush cancelled still sends its bytes, and so does Complete after one (found in review).</summary>
    [Fact]
    public async Task A_cancelled_flush_still_sends_its_bytes_and_so_does_Complete_after_a_cancel()
    {
        "hello"u8.CopyTo(_writer.GetSpan(5));
        _writer.Advance(5);
        _writer.CancelPendingFlush();
        Assert.True((await _writer.FlushAsync()).IsCanceled);
        var buffer = new byte[16];
        Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(buffer, 0, await _peer.ReceiveAsync(buffer).WaitAsync(Patience)));

        "tail"u8.CopyTo(_writer.GetSpan(4));
        _writer.Advance(4);
        _writer.CancelPendingFlush();
        _writer.Complete();
        Assert.Null(await _writerDone.Task.WaitAsync(Patience));
        Assert.Equal("tail", System.Text.Encoding.ASCII.GetString(buffer, 0, await _peer.ReceiveAsync(buffer).WaitAsync(Patience)));
    }

    private static string Text(ReadOnlySequence<byte> buffer) => System.Text.Encoding.ASCII.GetString(buffer.ToArray());
}
