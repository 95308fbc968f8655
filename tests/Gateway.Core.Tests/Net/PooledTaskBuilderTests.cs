using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using Gateway.Net;

namespace Gateway.Core.Tests.Net;

public sealed class PooledTaskBuilderTests
{
    /// <summary>A reusable awaitable the test completes by hand, on the thread it chooses; allocates nothing per wait.</summary>
    private sealed class Signal : IValueTaskSource<int>
    {
        private ManualResetValueTaskSourceCore<int> _core;

        public ValueTask<int> WaitAsync() => new(this, _core.Version);
        public void Complete(int value) => _core.SetResult(value);
        public void Fail(Exception e) => _core.SetException(e);

        public int GetResult(short token)
        {
            try { return _core.GetResult(token); }
            finally { _core.Reset(); }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);
        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }

    private static readonly AsyncLocal<string?> Flowing = new();

    [AsyncMethodBuilder(typeof(PooledTaskBuilder<>))]
    private static async ValueTask<int> AddAfterAsync(Signal signal, int add)
    {
        int value = await signal.WaitAsync();
        return value + add;
    }

    [AsyncMethodBuilder(typeof(PooledTaskBuilder))]
    private static async ValueTask ThrowAfterAsync(Signal signal)
    {
        await signal.WaitAsync();
        throw new InvalidOperationException("after the wait");
    }

    [AsyncMethodBuilder(typeof(PooledTaskBuilder<>))]
    private static async ValueTask<int> ImmediateAsync(int value, bool fail)
    {
        if (fail) throw new ArgumentException("at once");
        await Task.CompletedTask;
        return value;
    }

    [AsyncMethodBuilder(typeof(PooledTaskBuilder))]
    private static async ValueTask CancelledAtOnceAsync(CancellationToken token)
    {
        await Task.CompletedTask;
        token.ThrowIfCancellationRequested();
    }

    [AsyncMethodBuilder(typeof(PooledTaskBuilder<>))]
    private static async ValueTask<string?> SeenAfterWaitAsync(Signal signal, string? setAfter)
    {
        await signal.WaitAsync();
        string? seen = Flowing.Value;
        if (setAfter is not null) Flowing.Value = setAfter;
        return seen;
    }

    [Fact]
    public async Task A_method_that_never_waits_completes_at_once_with_its_result_or_exception()
    {
        var done = ImmediateAsync(7, fail: false);
        Assert.True(done.IsCompletedSuccessfully);
        Assert.Equal(7, await done);
        var failed = ImmediateAsync(7, fail: true);
        Assert.True(failed.IsFaulted);
        await Assert.ThrowsAsync<ArgumentException>(async () => await failed);
        // As the runtime's builders do: a cancellation is a canceled task, not a faulted one.
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var cancelled = CancelledAtOnceAsync(cts.Token);
        Assert.True(cancelled.IsCanceled);
        Assert.True(CancelledAtOnceAsync(CancellationToken.None).IsCompletedSuccessfully);
    }

    [Fact]
    public async Task A_suspended_method_resumes_with_the_result_and_reports_its_exception()
    {
        var signal = new Signal();
        var pending = AddAfterAsync(signal, 10);
        Assert.False(pending.IsCompleted);
        signal.Complete(5);
        Assert.Equal(15, await pending);

        var throwing = ThrowAfterAsync(signal);
        Assert.False(throwing.IsCompleted);
        signal.Complete(0);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await throwing);
        Assert.Equal("after the wait", e.Message);

        var cancelled = AddAfterAsync(signal, 1).AsTask();
        signal.Fail(new OperationCanceledException());
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        Assert.True(cancelled.IsCanceled);
    }

    [Fact]
    public void Sixteen_calls_waiting_at_once_reuse_their_boxes_instead_of_allocating()
    {
        // The runtime's PoolingAsyncValueTaskMethodBuilder keeps one box per thread (and one per core): with 16 calls waiting at
        // once, most of them allocate a new box every round. Here they come back from the thread's stack.
        var signals = Enumerable.Range(0, 16).Select(_ => new Signal()).ToArray();
        var pending = new ValueTask<int>[signals.Length];
        int wrong = 0;
        void Round()
        {
            for (int i = 0; i < signals.Length; i++) pending[i] = AddAfterAsync(signals[i], i);
            for (int i = 0; i < signals.Length; i++) signals[i].Complete(1);
            for (int i = 0; i < signals.Length; i++)
                if (!pending[i].IsCompletedSuccessfully || pending[i].Result != 1 + i) wrong++; // no Assert here: it allocates
        }
        // On a thread of its own: xunit's synchronization context would post the continuations instead of running them inline.
        long perCall = -1;
        var thread = new Thread(() =>
        {
            Round(); // fills the stack
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int round = 0; round < 100; round++) Round();
            perCall = (GC.GetAllocatedBytesForCurrentThread() - before) / (100 * signals.Length);
        });
        thread.Start();
        thread.Join();
        Assert.Equal(0, wrong);
        Assert.True(perCall is >= 0 and < 8, $"{perCall} bytes allocated per call");
    }

    [Fact]
    public async Task The_callers_context_flows_in_and_what_the_method_sets_after_resuming_stays_in_it()
    {
        var signal = new Signal();
        Flowing.Value = "caller";
        var pending = SeenAfterWaitAsync(signal, setAfter: "inside");
        Flowing.Value = null;

        // Resumed on a thread with another value: the method still sees its caller's, and that thread keeps its own.
        string? resumerSaw = null;
        var resumer = new Thread(() =>
        {
            Flowing.Value = "resumer";
            signal.Complete(0);
            resumerSaw = Flowing.Value;
        });
        resumer.Start();
        resumer.Join();
        Assert.Equal("caller", await pending);
        Assert.Equal("resumer", resumerSaw);

        // Resumed on a thread whose context is the one the method captured (none): run directly, and what it set is undone.
        string? plainSaw = "unset";
        var pending2 = default(ValueTask<string?>);
        var plain = new Thread(() =>
        {
            pending2 = SeenAfterWaitAsync(signal, setAfter: "inside");
            signal.Complete(0);
            plainSaw = Flowing.Value;
        });
        plain.UnsafeStart(); // no context flows to it
        plain.Join();
        Assert.Null(await pending2);
        Assert.Null(plainSaw);
    }
}
