namespace Gateway.Routing;

/// <summary>
/// Requests in flight to one backend URL, whichever model they are for (a vLLM serving LoRA adapters is one GPU). Counted on the
/// request path for every policy, so switching a model to p2c starts from true counts; kept beside the snapshot so a swap keeps them.
/// </summary>
public sealed class BackendLoad
{
    private int _outstanding;

    public int Outstanding => Volatile.Read(ref _outstanding);

    public void Begin() => Interlocked.Increment(ref _outstanding);
    public void End() => Interlocked.Decrement(ref _outstanding);
}
