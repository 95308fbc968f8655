using System.Net;
using System.Net.Sockets;
using System.Text;
using Gateway.Core.Tests.Net;
using Gateway.Net;
using Gateway.Proxy.Upstream;

namespace Gateway.Core.Tests.Proxy.Upstream;

/// <summary>
/// Idle upstream connections are kept per event loop: a request rents from its client connection's loop (its home) and opens new
/// connections there, so the answer resumes on the thread holding the client; a request with no home takes any loop's.
/// </summary>
public sealed class Http1PoolLoopTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);

    // Two loops of the test's own, apart from the process's: their numbers are the pool's stack numbers.
    private static readonly EventLoop LoopA = new(6), LoopB = new(7);

    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly Http1Pool _pool;

    public Http1PoolLoopTests()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(16); // the kernel completes the pool's connects; nothing needs to accept them
        // An idle limit no stall of a loaded machine reaches: a connection past it would be closed instead of rented.
        _pool = new Http1Pool("127.0.0.1", ((IPEndPoint)_listener.LocalEndPoint!).Port, new Http1ClientOptions { IdleTimeout = TimeSpan.FromMinutes(5) });
    }

    public void Dispose()
    {
        _pool.Dispose();
        _listener.Dispose();
    }

    [Fact]
    public async Task A_request_reuses_only_its_home_loops_connections()
    {
        var connection = await _pool.ConnectAsync(LoopA, CancellationToken.None);
        Assert.Equal(LoopA.Index, connection.LoopIndex); // opened on the home loop
        _pool.Return(connection);

        Assert.Null(_pool.TryRentIdle(LoopB)); // another loop's: not taken
        Assert.Equal(1, _pool.IdleCount);
        Assert.Same(connection, _pool.TryRentIdle(LoopA));
        Assert.Equal(0, _pool.IdleCount);
        connection.Discard();
    }

    [Fact]
    public async Task A_connection_goes_back_to_the_loop_that_watches_it_whichever_thread_returns_it()
    {
        var onA = await _pool.ConnectAsync(LoopA, CancellationToken.None);
        await LoopThread.RunAsync(LoopB, () => { _pool.Return(onA); return Task.FromResult(0); }); // returned by loop B's thread
        Assert.Null(_pool.TryRentIdle(LoopB));
        Assert.Same(onA, _pool.TryRentIdle(LoopA));
        onA.Discard();
    }

    [Fact]
    public async Task A_request_sent_from_a_loop_thread_has_that_loop_as_its_home()
    {
        using var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        server.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        server.Listen(4);
        var answering = Task.Run(() => AnswerOneRequest(server));
        using var client = new Http1Client(new Http1ClientOptions { IdleTimeout = TimeSpan.FromMinutes(5) });
        var route = client.CreateRoute(new Uri($"http://127.0.0.1:{((IPEndPoint)server.LocalEndPoint!).Port}/v1/chat/completions"));

        // Http1Client's public SendAsync, called on loop B's thread, opens its connection there.
        await LoopThread.RunAsync(LoopB, async () =>
        {
            using var response = await client.SendAsync(route, "{}"u8.ToArray()).ConfigureAwait(false);
            Assert.Equal(200, response.StatusCode);
            Assert.True(response.TryTakeBufferedBody(out var body) && body.SequenceEqual("{}"u8));
            return 0;
        }); // the response is disposed with its body read: the connection went back to the pool
        await answering.WaitAsync(Patience);

        Assert.Null(route.Pool.TryRentIdle(LoopA));
        var connection = Assert.IsType<Http1Connection>(route.Pool.TryRentIdle(LoopB));
        connection.Discard();
    }

    [Fact]
    public async Task A_request_with_no_home_takes_any_loops_connection()
    {
        var (onA, onB) = await IdleOnBothLoopsAsync();
        Assert.Equal(2, _pool.IdleCount);

        var first = Assert.IsType<Http1Connection>(_pool.TryRentIdle(home: null));
        var second = Assert.IsType<Http1Connection>(_pool.TryRentIdle(home: null));
        Assert.Equal(new[] { onA, onB }.ToHashSet(), new[] { first, second }.ToHashSet());
        Assert.Null(_pool.TryRentIdle(home: null));
        first.Discard();
        second.Discard();
    }

    [Fact]
    public async Task Dispose_closes_the_idle_connections_of_every_loop()
    {
        var (onA, onB) = await IdleOnBothLoopsAsync();
        _pool.Dispose();
        Assert.True(onA.IsClosed);
        Assert.True(onB.IsClosed);
        Assert.Equal(0, _pool.IdleCount);
    }

    /// <summary>A connection opened on each of the two loops, both back in the pool.</summary>
    private async Task<(Http1Connection OnA, Http1Connection OnB)> IdleOnBothLoopsAsync()
    {
        var onA = await _pool.ConnectAsync(LoopA, CancellationToken.None);
        var onB = await _pool.ConnectAsync(LoopB, CancellationToken.None);
        _pool.Return(onA);
        _pool.Return(onB);
        return (onA, onB);
    }

    /// <summary>A server for one request: reads its head and 2-byte body, answers <c>{}</c>, and keeps the connection open.</summary>
    private static Socket AnswerOneRequest(Socket server)
    {
        var socket = server.Accept();
        var received = new List<byte>();
        var buffer = new byte[4096];
        while (true)
        {
            int end = received.Count < 4 ? -1 : Encoding.ASCII.GetString(received.ToArray()).IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0 && received.Count >= end + 4 + 2) break;
            int n = socket.Receive(buffer);
            if (n == 0) throw new InvalidOperationException("the client closed before its request was complete");
            received.AddRange(buffer.AsSpan(0, n));
        }
        socket.Send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"u8);
        return socket;
    }
}
