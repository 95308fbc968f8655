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
/// One accepted connection as Kestrel sees it: its input is a <see cref="SocketPipeReader"/> and its output a
/// <see cref="SocketPipeWriter"/>, both straight on a <see cref="LoopSocket"/> (no pipes, no receive or send loop between Kestrel
/// and the socket). The same contract as Kestrel's socket transport: abort = FIN both ways and stop sending; the ConnectionClosed
/// token fires when the peer is gone; reads are made only when epoll reported data.
/// </summary>
internal sealed class LoopConnection : ConnectionContext, IConnectionIdFeature, IConnectionTransportFeature, IConnectionItemsFeature,
    IMemoryPoolFeature, IConnectionLifetimeFeature, IConnectionEndPointFeature, IEventLoopFeature
{
    private static long s_lastId;

    private readonly LoopSocket _socket;
    private readonly SocketPipeReader _input;
    private readonly SocketPipeWriter _output;
    private readonly CancellationTokenSource _closed = new();
    private IDictionary<object, object?>? _items;
    private int _shutdown, _closedFired;

    /// <param name="writeTimeout">The longest one send may wait for the client to take bytes; past it the connection is shut down.</param>
    public LoopConnection(Socket socket, EventLoop loop, bool inlineIo, TimeSpan writeTimeout)
    {
        socket.NoDelay = true;
        LocalEndPoint = socket.LocalEndPoint;
        RemoteEndPoint = socket.RemoteEndPoint;
        ConnectionClosed = _closed.Token;
        ConnectionId = "L" + Interlocked.Increment(ref s_lastId).ToString("X", System.Globalization.CultureInfo.InvariantCulture);

        // Inline: Kestrel parses on the loop thread as the bytes arrive, and its flushes send from the thread that writes.
        _socket = new LoopSocket(socket);
        _input = new SocketPipeReader(_socket, inlineIo, FireConnectionClosed);
        _output = new SocketPipeWriter(_socket, inlineIo, writeTimeout, Shutdown);
        Transport = new Duplex(_input, _output);
        _socket.ReadReady = _input;
        _socket.Register(loop); // from here the loop reads into _input

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

    /// <summary>
    /// Once: FIN both ways and reads fail with the first reason (the send side's error, an abort, or, once Kestrel completed its
    /// output and all was sent, a graceful end), and ConnectionClosed fires.
    /// </summary>
    private void Shutdown(Exception? reason)
    {
        if (Interlocked.Exchange(ref _shutdown, 1) != 0) return;
        _input.Fail(reason ?? new ConnectionAbortedException("The connection's output completed gracefully.")); // before the loop can read our own FIN
        _socket.Shutdown();
        FireConnectionClosed();
    }

    /// <summary>What Kestrel expects from a transport for a failed socket call: a reset or shutdown peer as a reset, our own close as an abort.</summary>
    internal static Exception ConnectionError(Exception e) => e switch
    {
        SocketException { SocketErrorCode: SocketError.ConnectionReset or SocketError.Shutdown } reset => new ConnectionResetException(reset.Message, reset),
        ObjectDisposedException => new ConnectionAbortedException("The connection was closed.", e),
        _ => e,
    };

    private void FireConnectionClosed()
    {
        if (Interlocked.Exchange(ref _closedFired, 1) != 0) return;
        // Off the loop thread: the token's callbacks are Kestrel's and the application's, and may take their time.
        ThreadPool.UnsafeQueueUserWorkItem(static c => c._closed.Cancel(), this, preferLocal: false);
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        _output.Abort();
        Shutdown(abortReason);
    }

    public override async ValueTask DisposeAsync()
    {
        await _input.CompleteAsync().ConfigureAwait(false);
        await _output.CompleteAsync().ConfigureAwait(false); // sends what is left, then the FIN
        await _output.Drained.ConfigureAwait(false);
        _socket.Close(); // nothing of ours can be in a syscall on it now, so the close stays graceful
        // _closed is not disposed: its Cancel may still be queued, and a source without a timer holds nothing to release.
    }

    private sealed class Duplex(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }
}
