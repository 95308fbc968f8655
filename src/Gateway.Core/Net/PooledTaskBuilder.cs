using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace Gateway.Net;

// The async method builders of the request path (methods returning ValueTask / ValueTask<T> that carry
// [AsyncMethodBuilder(typeof(PooledTaskBuilder))]). Like the runtime's PoolingAsyncValueTaskMethodBuilder, a method that
// suspends keeps its state in a reusable box instead of a new Task. The runtime's pool keeps one box per method per thread
// (and one per core): with 16 requests waiting for their upstream on one event loop, every other ForwardAsync and
// Http1Client.SendAsync got a new box, ~420 of the ~970 bytes a proxied JSON request allocated (GC allocation ticks, 257k
// requests). Here each thread keeps a stack of up to 64 boxes per method (a LoopStack, on any thread).
// A box also resumes its method without ExecutionContext.Run when the context it captured is the one the thread already has
// (always so on the event loops, which have none): the state machine runs directly and any context or synchronization
// context it changed is put back, which is what Run would have done.

/// <summary>Builder for <c>async ValueTask</c> methods whose state is boxed in per-thread pooled boxes.</summary>
public struct PooledTaskBuilder
{
    private PooledTaskBuilder<bool> _inner;

    public static PooledTaskBuilder Create() => default;

    public ValueTask Task => _inner.UntypedTask;

    public void Start<TStateMachine>(ref TStateMachine stateMachine) where TStateMachine : IAsyncStateMachine =>
        _inner.Start(ref stateMachine);

    public void SetStateMachine(IAsyncStateMachine stateMachine) { } // boxes are made by the builder, never by the runtime

    public void SetResult() => _inner.SetResult(true);

    public void SetException(Exception exception) => _inner.SetException(exception);

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion where TStateMachine : IAsyncStateMachine =>
        _inner.AwaitOnCompleted(ref awaiter, ref stateMachine);

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion where TStateMachine : IAsyncStateMachine =>
        _inner.AwaitUnsafeOnCompleted(ref awaiter, ref stateMachine);
}

/// <summary>Builder for <c>async ValueTask&lt;TResult&gt;</c> methods whose state is boxed in per-thread pooled boxes.</summary>
public struct PooledTaskBuilder<TResult>
{
    private PooledBox<TResult>? _box; // set when the method first suspends
    // A method that completes without suspending ends as the runtime's builder ends it (a faulted or, for an
    // OperationCanceledException, canceled task; a result with no allocation).
    private AsyncValueTaskMethodBuilder<TResult> _sync;

    public static PooledTaskBuilder<TResult> Create() => default;

    public ValueTask<TResult> Task => _box is { } box ? new ValueTask<TResult>(box, box.Version) : _sync.Task;

    internal ValueTask UntypedTask
    {
        get
        {
            if (_box is { } box) return new ValueTask(box, box.Version);
            var done = _sync.Task;
            return done.IsCompletedSuccessfully ? default : new ValueTask(done.AsTask());
        }
    }

    // The runtime's Start: runs the first step and puts back the thread's ExecutionContext and SynchronizationContext after it.
    public void Start<TStateMachine>(ref TStateMachine stateMachine) where TStateMachine : IAsyncStateMachine =>
        default(AsyncValueTaskMethodBuilder).Start(ref stateMachine);

    public void SetStateMachine(IAsyncStateMachine stateMachine) { }

    public void SetResult(TResult result)
    {
        if (_box is { } box) box.SetResult(result); // may run the awaiting method inline, which returns the box to its pool
        else _sync.SetResult(result);
    }

    public void SetException(Exception exception)
    {
        if (_box is { } box) box.SetException(exception);
        else _sync.SetException(exception);
    }

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion where TStateMachine : IAsyncStateMachine
    {
        var box = BoxFor(ref stateMachine);
        box.Context = null; // OnCompleted flows the context itself
        awaiter.OnCompleted(box.MoveNextAction);
    }

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion where TStateMachine : IAsyncStateMachine
    {
        var box = BoxFor(ref stateMachine);
        box.Context = ExecutionContext.Capture();
        awaiter.UnsafeOnCompleted(box.MoveNextAction);
    }

    private PooledBox<TResult, TStateMachine> BoxFor<TStateMachine>(ref TStateMachine stateMachine) where TStateMachine : IAsyncStateMachine
    {
        if (_box is PooledBox<TResult, TStateMachine> box) return box; // the state machine already lives in it
        box = PooledBox<TResult, TStateMachine>.Rent();
        _box = box; // before the copy: the copy's builder must point at its box
        box.StateMachine = stateMachine;
        return box;
    }
}

/// <summary>The result side of a pooled box: what a ValueTask of the method sees.</summary>
internal abstract class PooledBox<TResult> : IValueTaskSource<TResult>, IValueTaskSource
{
    // Continuations run inline, on the thread that completes the method, as the runtime's pooled boxes do.
    private ManualResetValueTaskSourceCore<TResult> _core;

    public short Version => _core.Version;

    public void SetResult(TResult result) => _core.SetResult(result);

    public void SetException(Exception exception) => _core.SetException(exception);

    public TResult GetResult(short token)
    {
        try { return _core.GetResult(token); }
        finally
        {
            _core.Reset();
            Return(); // the awaiter has its result: the box may carry another call from now on
        }
    }

    void IValueTaskSource.GetResult(short token) => GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    protected abstract void Return();
}

/// <summary>One suspended call of one async method: its state machine, and the context to resume it in.</summary>
internal sealed class PooledBox<TResult, TStateMachine> : PooledBox<TResult> where TStateMachine : IAsyncStateMachine
{
    public TStateMachine StateMachine = default!;
    internal ExecutionContext? Context;
    internal readonly Action MoveNextAction;

    private static readonly ContextCallback s_moveNext = static box => ((PooledBox<TResult, TStateMachine>)box!).StateMachine.MoveNext();

    private const int CachedPerThread = 64; // more than the requests one event loop usually has waiting at once
    [ThreadStatic] private static LoopStack<PooledBox<TResult, TStateMachine>>? t_cache;

    private PooledBox() => MoveNextAction = MoveNext;

    internal static PooledBox<TResult, TStateMachine> Rent() =>
        t_cache is { } cache && cache.TryPop(out var box) ? box : new PooledBox<TResult, TStateMachine>();

    protected override void Return()
    {
        StateMachine = default!; // drop what the finished call referenced
        Context = null;
        (t_cache ??= new(CachedPerThread)).TryPush(this); // full: dropped, as the runtime drops what its one slot cannot hold
    }

    private void MoveNext()
    {
        var context = Context;
        var current = ExecutionContext.Capture();
        if (context is null || ReferenceEquals(context, current))
        {
            // Already in the right context (or flow was suppressed): run, then undo any context change, as Run would.
            var sync = SynchronizationContext.Current;
            StateMachine.MoveNext();
            if (!ReferenceEquals(ExecutionContext.Capture(), current) && current is not null) ExecutionContext.Restore(current);
            if (!ReferenceEquals(SynchronizationContext.Current, sync)) SynchronizationContext.SetSynchronizationContext(sync);
        }
        else ExecutionContext.Run(context, s_moveNext, this);
    }
}
