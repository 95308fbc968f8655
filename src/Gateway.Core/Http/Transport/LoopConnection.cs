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
    IMemoryPoolFeature, IConnectionLifetimeFeature, IConnectionEndPointFeature, IEventLoopFeature
{
    /// <summary>Kestrel's socket transport defaults: 1 MB of unread request bytes, 64 KB of unsent response bytes.</summary>
    private const long MaxReadBuffer = 1024 * 1024, MaxWriteBuffer = 64 * 1024;
    private const int MinReadBuffer = BlockPool.BlockSize / 2;

    private static long s_lastId;

    private readonly LoopSocket _socket;
    private readonly TimeSpan _writeTimeout;
    private readonly IDuplexPipe _transport, _application; // Transport is settable (middleware may wrap it); these stay ours
    private readonly CancellationTokenSource _closed = new();
    private IDictionary<object, object?>? _items;
    private Task _processing = Task.CompletedTask;
    private int _shutdown, _closedFired;
    private volatile Exception? _shutdownReason;

    /// <param name="writeTimeout">The longest one send may wait for the client to take bytes; past it the connection is shut down.</param>
    public LoopConnection(Socket socket, EventLoop loop, bool inlineIo, TimeSpan writeTimeout)
    {
        _writeTimeout = writeTimeout;
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
        Transport = _transport = new Duplex(input.Reader, output.Writer);
        _application = new Duplex(output.Reader, input.Writer);

        Features = new FeatureCollection();
        Features.Set<IConnectionIdFeature>(this);
        Features.Set<IConnectionTransportFeature>(this);
        Features.Set<IConnectionItemsFeature>(this);
        Features.Set<IMemoryPoolFeature>(this);
        Features.Set<IConnectionLifetimeFeature>(this);
        Features.Set<IConnectionEndPointFeature>(this);
        Features.Set<IEventLoopFeature>(this);
    }

    public EventLoop Loop => _socket.Loop!; // registered in the constructor

    public override string ConnectionId { get; set; }
    public override IFeatureCollection Features { get; }
    public override IDictionary<object, object?> Items
    {
        get => _items ??= new Dictionary<object, object?>();
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
        try
        {
            var receiving = ReceiveAsync();
            var sending = SendAsync();
            await receiving.ConfigureAwait(false);
            await sending.ConfigureAwait(false);
        }
        finally
        {
            _socket.Close(); // both loops are done: no read or write of ours can be in flight, so the close stays graceful
        }
    }

    private async Task ReceiveAsync()
    {
        var input = _application.Output;
        Exception? error = null;
        try
        {
            while (true)
            {
                var wait = _socket.WaitReadableAsync();
                bool fresh = !wait.IsCompleted || _socket.LastReadFilled;
                await wait.ConfigureAwait(false);
                int n;
                if (fresh)
                {
                    // An edge that came while we waited: bytes are there, so take a pipe block and read into it.
                    var memory = input.GetMemory(MinReadBuffer);
                    n = _socket.TryReceive(memory.Span);
                    if (n > 0) input.Advance(n);
                }
                else n = ReceiveIntoStack(input); // maybe a stale edge: an idle connection must not end up holding a block
                if (n < 0) continue; // nothing there after all
                if (n == 0) break; // FIN
                var result = await input.FlushAsync().ConfigureAwait(false);
                if (result.IsCompleted || result.IsCanceled) break;
            }
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown)
        {
            error = new ConnectionResetException(e.Message, e);
        }
        catch (Exception e)
        {
            error = e; // closed or shut down by Abort or the send loop (the shutdown reason below says why), or unexpected
        }
        finally
        {
            await input.CompleteAsync(_shutdownReason ?? error).ConfigureAwait(false);
            FireConnectionClosed();
        }
    }

    /// <summary>One read into the stack, copied into the pipe only when bytes came: -1 (nothing) leaves no block taken.</summary>
    [System.Runtime.CompilerServices.SkipLocalsInit]
    private int ReceiveIntoStack(PipeWriter input)
    {
        Span<byte> scratch = stackalloc byte[BlockPool.BlockSize];
        int n = _socket.TryReceive(scratch);
        if (n > 0) input.Write(scratch[..n]);
        return n;
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
                if (!buffer.IsEmpty) await _socket.SendAsync(buffer, _writeTimeout).ConfigureAwait(false);
                output.AdvanceTo(buffer.End);
                if (result.IsCompleted) break;
            }
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown)
        {
            error = new ConnectionResetException(e.Message, e);
        }
        catch (Exception e)
        {
            error = e; // a failed send, or the output completed with an error by Kestrel
        }
        finally
        {
            Shutdown(error);
            await output.CompleteAsync().ConfigureAwait(false);
            _application.Output.CancelPendingFlush(); // a receive loop paused on a full pipe must see the end too
        }
    }

    /// <summary>Once: FIN both ways, so the receive loop ends (the close follows both loops); the first reason is what Kestrel's reads report.</summary>
    private void Shutdown(Exception? reason)
    {
        if (Interlocked.Exchange(ref _shutdown, 1) != 0) return;
        _shutdownReason = reason ?? new ConnectionAbortedException("The connection's send loop completed gracefully.");
        _socket.Shutdown();
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
        await _transport.Input.CompleteAsync().ConfigureAwait(false);
        await _transport.Output.CompleteAsync().ConfigureAwait(false);
        try { await _processing.ConfigureAwait(false); }
        catch (Exception) { } // the loops catch their own; Kestrel must still get to remove the connection
        // _closed is not disposed: its Cancel may still be queued, and a source without a timer holds nothing to release.
    }

    private sealed class Duplex(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }
}
