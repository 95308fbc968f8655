namespace Gateway.Routing;

/// <summary>
/// nginx's smooth weighted round robin: each pick adds every weight to its backend's current value, takes the largest, and
/// subtracts the total from it. 5:1 gives a a a b a a…, not a a a a a b. State is carried over snapshot swaps by backend URL.
/// The default policy (<c>lb = "wrr"</c>).
/// </summary>
public sealed class SmoothWeightedRoundRobin : ILoadBalancer
{
    private readonly Backend[] _backends;
    private readonly long[] _current;
    private readonly Lock _lock = new();

    public SmoothWeightedRoundRobin(Backend[] backends, SmoothWeightedRoundRobin? previous = null)
    {
        _backends = backends;
        _current = new long[backends.Length];
        if (previous is null) return;
        lock (previous._lock)
            for (int i = 0; i < backends.Length; i++)
                for (int j = 0; j < previous._backends.Length; j++)
                    if (string.Equals(previous._backends[j].Url, backends[i].Url, StringComparison.OrdinalIgnoreCase))
                        _current[i] = previous._current[j];
    }

    /// <summary>Picks among available (active, healthy) backends other than <paramref name="exclude"/>; null when there is none.</summary>
    public Backend? Pick(Backend? exclude = null)
    {
        lock (_lock)
        {
            long total = 0;
            int best = -1;
            for (int i = 0; i < _backends.Length; i++)
            {
                var b = _backends[i];
                if (!b.IsAvailable || ReferenceEquals(b, exclude)) continue;
                _current[i] += b.Weight;
                total += b.Weight;
                if (best < 0 || _current[i] > _current[best]) best = i;
            }
            if (best < 0) return null;
            _current[best] -= total;
            return _backends[best];
        }
    }
}
