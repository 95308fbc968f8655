using System.Net;
using System.Net.Sockets;
using Gateway.Net;
using Gateway.Proxy.Upstream;

namespace Gateway.Core.Tests.Proxy.Upstream;

/// <summary>
/// Idle upstream connections are kept per event loop: a request on a loop thread reuses only that loop's connections (so the answer
/// resumes on the thread holding the client), and a request off the loops takes any.
/// </summary>
public sealed class Http1PoolLoopTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);

    // Two loops of the test's own, apart from the process's: their indexes are the pool's stack numbers.
    private static readonly EventLoop LoopA = new(6), LoopB = new(7);

    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly Http1Pool _pool;

    public Http1PoolLoopTests()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(16); // the kernel completes the pool's connects; nothing needs to accept them
        _pool = new Http1Pool("127.0.0.1", ((IPEndPoint)_listener.LocalEndPoint!).Port, new Http1ClientOptions());
    }

    public void Dispose()
    {
        _pool.Dispose();
        _listener.Dispose();
    }

    [Fact]
    public async Task A_request_on_a_loop_reuses_only_that_loops_connections()
    {
        var connection = await OnLoopAsync(LoopA, () => _pool.ConnectAsync(CancellationToken.None).AsTask());
        Assert.Equal(LoopA.Index, connection.LoopIndex); // opened on the loop that asked
        _pool.Return(connection);

        Assert.Null(await OnLoopAsync(LoopB, () => Task.FromResult(_pool.TryRentIdle()))); // another loop's: not taken
        Assert.Equal(1, _pool.IdleCount);
        Assert.Same(connection, await OnLoopAsync(LoopA, () => Task.FromResult(_pool.TryRentIdle())));
        Assert.Equal(0, _pool.IdleCount);
    }

    [Fact]
    public async Task A_request_off_the_loops_takes_any_loops_connection()
    {
        var onA = await OnLoopAsync(LoopA, () => _pool.ConnectAsync(CancellationToken.None).AsTask());
        var onB = await OnLoopAsync(LoopB, () => _pool.ConnectAsync(CancellationToken.None).AsTask());
        _pool.Return(onA);
        _pool.Return(onB);
        Assert.Equal(2, _pool.IdleCount);

        var first = Assert.IsType<Http1Connection>(await OffLoopsAsync(_pool.TryRentIdle));
        var second = Assert.IsType<Http1Connection>(await OffLoopsAsync(_pool.TryRentIdle));
        Assert.Equal(new[] { onA, onB }.ToHashSet(), new[] { first, second }.ToHashSet());
        Assert.Null(await OffLoopsAsync(_pool.TryRentIdle));
        first.Discard();
        second.Discard();
    }

    [Fact]
    public async Task Dispose_closes_the_idle_connections_of_every_loop()
    {
        var onA = await OnLoopAsync(LoopA, () => _pool.ConnectAsync(CancellationToken.None).AsTask());
        var onB = await OnLoopAsync(LoopB, () => _pool.ConnectAsync(CancellationToken.None).AsTask());
        _pool.Return(onA);
        _pool.Return(onB);
        _pool.Dispose();
        Assert.True(onA.IsClosed);
        Assert.True(onB.IsClosed);
        Assert.Equal(0, _pool.IdleCount);
    }

    /// <summary>
    /// Runs <paramref name="action"/> on <paramref name="loop"/>'s thread: the continuation of a read wait that the loop completes
    /// (an edge runs its waiter inline), as a request's code does.
    /// </summary>
    private async Task<T> OnLoopAsync<T>(EventLoop loop, Func<Task<T>> action)
    {
        var (ours, peer) = SocketPair();
        var socket = new LoopSocket(ours);
        try
        {
            socket.Register(loop);
            var wait = socket.WaitReadableAsync();
            Assert.False(wait.IsCompleted); // else the continuation would run here, not on the loop
            var run = RunAfterAsync(wait, loop, action); // awaits first, so the wake finds the continuation
            peer.Send([1]);
            return await run.WaitAsync(Patience);
        }
        finally
        {
            socket.Close();
            peer.Dispose();
        }
    }

    /// <summary>
    /// Runs <paramref name="action"/> on a thread-pool thread: after an await that a loop completed, the test itself may go on on
    /// that loop's thread.
    /// </summary>
    private static Task<T> OffLoopsAsync<T>(Func<T> action) => Task.Run(() =>
    {
        Assert.Null(EventLoop.Current);
        return action();
    });

    private static async Task<T> RunAfterAsync<T>(ValueTask wait, EventLoop loop, Func<Task<T>> action)
    {
        await wait.ConfigureAwait(false);
        Assert.Same(loop, EventLoop.Current);
        return await action().ConfigureAwait(false);
    }

    private static (Socket Ours, Socket Peer) SocketPair()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var ours = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        ours.Connect(listener.LocalEndPoint!);
        return (ours, listener.Accept());
    }
}
