namespace Gateway.Routing;

/// <summary>
/// Weighted least-outstanding by power of two choices (<c>lb = "p2c"</c>): two random available backends, the one with fewer
/// requests in flight per unit of weight wins. A slow backend keeps its requests longer, so it gets fewer new ones. Lock-free: the
/// counters are the backends' <see cref="BackendLoad"/>, which outlive snapshots, so this policy itself holds no state.
/// </summary>
public sealed class LeastOutstanding(Backend[] backends) : ILoadBalancer
{
    private const int StackLimit = 64;

    public Backend? Pick(Backend? exclude = null)
    {
        int n = backends.Length;
        Span<int> outstanding = n <= StackLimit ? stackalloc int[n] : new int[n];
        Span<int> weights = n <= StackLimit ? stackalloc int[n] : new int[n];
        Span<bool> eligible = n <= StackLimit ? stackalloc bool[n] : new bool[n];
        for (int i = 0; i < n; i++)
        {
            var b = backends[i];
            eligible[i] = b.IsAvailable && !ReferenceEquals(b, exclude);
            outstanding[i] = b.Load.Outstanding;
            weights[i] = b.Weight;
        }
        int pick = PowerOfTwoChoices.Pick(outstanding, weights, eligible);
        return pick < 0 ? null : backends[pick];
    }
}
