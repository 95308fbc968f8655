using Gateway.Net;

namespace Gateway.Core.Tests.Net;

internal static class LoopThread
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Runs <paramref name="action"/> on <paramref name="loop"/>'s thread: the continuation of a read wait that the loop completes
    /// (an edge runs its waiter inline), as a request's code does. Its synchronous part runs inside the loop's handling of a batch.
    /// </summary>
    public static async Task<T> RunAsync<T>(EventLoop loop, Func<Task<T>> action)
    {
        var (ours, peer) = LoopbackPair.Open();
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

    private static async Task<T> RunAfterAsync<T>(ValueTask wait, EventLoop loop, Func<Task<T>> action)
    {
        await wait.ConfigureAwait(false);
        Assert.Same(loop, EventLoop.Current);
        return await action().ConfigureAwait(false);
    }
}
