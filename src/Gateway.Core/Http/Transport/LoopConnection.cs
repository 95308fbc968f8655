using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Gateway.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Gateway.Http.Transport;

/// <summary>
/// One accepted connection as Kestrel sees it: two pipes, filled and drained by a receive loop and a send loop over a
/// <see cref="LoopSocket"/>. The same contract as Kestrel's socket transport (abort = FIN both ways and stop sending; the
/// ConnectionClosed token fires when the peer is gone), with reads made only when epoll reported data.
/// </summary>
internal sealed class LoopConnection : ConnectionContext, IConnectionIdFeature, IConnectionTransportFeature, IConnectionItemsFeature,
    IMemoryPoolFeature, IConnectionLifetimeFeature, IConnectionEndPointFeature
{
    /// <summary>Kestrel's socket transport defaults: 1 MB of unread request bytes, 64 KB of unsent response bytes.</summary>
    private const long MaxReadBuffer = 1024 * 1024, MaxWriteBuffer = 64 * 1024;
    private const int MinReadBuffer = BlockPool.BlockSize / 2;

    private static long s_lastId;

    private readonly LoopSocket _socket;
    private readonly IDuplexPipe _application;
    private readonly CancellationTokenSource _closed = new();
    private IDictionary<object, object?>? _items;
    private Task _processing = Task.CompletedTask;
    private int _shutdown, _closedFired;
    private volatile Exception? _shutdownReason;

    public LoopConnection(Socket socket, EventLoop loop, bool inlineIo)
    {
        socket.NoDelay = true;
        LocalEndPoint = socket.LocalEndPoint;
        RemoteEndPoint = socket.RemoteEndPoint;
        _socket = new LoopSocket(socket);
        _socket.Register(loop);
        ConnectionClosed = _closed.Token;
        ConnectionId = "L" + Interlocked.Increment(ref s_lastId).ToString("X", System.Globalization.CultureInfo.InvariantCulture);

        // Inline: Kestrel parses on the loop thread as the bytes arrive, and its flushes send from the thread that writes.
        var app = inlineIo ? PipeScheduler.Inline : PipeScheduler.ThreadPool;
        var input = new Pipe(new PipeOptions(BlockPool.Shared, app, PipeScheduler.Inline, MaxReadBuffer, MaxReadBuffer / 2, useSynchronizationContext: false));
        var output = new Pipe(new PipeOptions(BlockPool.Shared, PipeScheduler.Inline, app, MaxWriteBuffer, MaxWriteBuffer / 2, useSynchronizationContext: false));
        Transport = new Duplex(input.Reader, output.Writer);
        _application = new Duplex(output.Reader, input.Writer);

        Features = new FeatureCollection();
        Features.Set<IConnectionIdFeature>(this);
        Features.Set<IConnectionTransportFeature>(this);
        Features.Set<IConnectionItemsFeature>(this);
        Features.Set<IMemoryPoolFeature>(this);
        Features.Set<IConnectionLifetimeFeature>(this);
        Features.Set<IConnectionEndPointFeature>(this);
    }

    public override string ConnectionId { get; set; }
    public override IFeatureCollection Features { get; }
    public override IDictionary<object, object?> Items
    {
        get => _items ??= new ConnectionItems();
        set => _items = value;
    }
    public override IDuplexPipe Transport { get; set; }
    public MemoryPool<byte> MemoryPool => BlockPool.Shared;
    public override CancellationToken ConnectionClosed { get; set; }
    public override EndPoint? LocalEndPoint { get; set; }
    public override EndPoint? RemoteEndPoint { get; set; }

    public void Start() => _processing = RunAsync();

    private async Task RunAsync()
    {
        var receiving = ReceiveAsync();
        var sending = SendAsync();
        await receiving.ConfigureAwait(false);
        await sending.ConfigureAwait(false);
        _socket.Close();
    }

    private async Task ReceiveAsync()
    {
        var input = _application.Output;
        Exception? error = null;
        try
        {
            while (true)
            {
                // An idle connection holds no buffer: the block is taken only once epoll says bytes are there.
                await _socket.WaitReadableAsync().ConfigureAwait(false);
                var memory = input.GetMemory(MinReadBuffer);
                int n = _socket.TryReceive(memory.Span);
                if (n < 0) continue; // the edge was for bytes an earlier read already took
                if (n == 0) break; // FIN
                input.Advance(n);
                var result = await input.FlushAsync().ConfigureAwait(false);
                if (result.IsCompleted || result.IsCanceled) break;
            }
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown)
        {
            error = new ConnectionResetException(e.Message, e);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            error = e; // closed by Abort or the send loop: the shutdown reason below says why
        }
        finally
        {
            await input.CompleteAsync(_shutdownReason ?? error).ConfigureAwait(false);
            FireConnectionClosed();
        }
    }

    private async Task SendAsync()
    {
        var output = _application.Input;
        Exception? error = null;
        try
        {
            while (true)
            {
                var result = await output.ReadAsync().ConfigureAwait(false);
                if (result.IsCanceled) break;
                var buffer = result.Buffer;
                if (!buffer.IsEmpty) await _socket.SendAsync(buffer).ConfigureAwait(false);
                output.AdvanceTo(buffer.End);
                if (result.IsCompleted) break;
            }
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown)
        {
            error = new ConnectionResetException(e.Message, e);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            error = e;
        }
        finally
        {
            Shutdown(error);
            await output.CompleteAsync().ConfigureAwait(false);
            _application.Output.CancelPendingFlush(); // a receive loop paused on a full pipe must see the end too
        }
    }

    /// <summary>Once: FIN both ways and close, so the receive loop ends; the first reason is what Kestrel's reads report.</summary>
    private void Shutdown(Exception? reason)
    {
        if (Interlocked.Exchange(ref _shutdown, 1) != 0) return;
        _shutdownReason = reason ?? new ConnectionAbortedException("The connection's send loop completed gracefully.");
        _socket.Shutdown();
        _socket.Close();
    }

    private void FireConnectionClosed()
    {
        if (Interlocked.Exchange(ref _closedFired, 1) != 0) return;
        // Off the loop thread: the token's callbacks are Kestrel's and the application's, and may take their time.
        ThreadPool.UnsafeQueueUserWorkItem(static c => c._closed.Cancel(), this, preferLocal: false);
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        Shutdown(abortReason);
        _application.Input.CancelPendingRead();
    }

    public override async ValueTask DisposeAsync()
    {
        await Transport.Input.CompleteAsync().ConfigureAwait(false);
        await Transport.Output.CompleteAsync().ConfigureAwait(false);
        await _processing.ConfigureAwait(false);
        // _closed is not disposed: its Cancel may still be queued, and a source without a timer holds nothing to release.
    }

    private sealed class Duplex(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }

    private sealed class ConnectionItems : Dictionary<object, object?>;
}
