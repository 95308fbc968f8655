using System.Collections.Concurrent;

namespace Gateway.Routing;

/// <summary>
/// Health of one backend serving one model, kept beside the snapshot (keyed by model id + URL) so it survives snapshot swaps.
/// Written by the health checker and by passive failure marks; read lock-free by the request path.
/// </summary>
public sealed class BackendHealth
{
    private volatile bool _healthy = true; // optimistic at start: the first active check corrects it within one interval
    private int _successes, _failures;

    public bool Healthy => _healthy;
    public DateTimeOffset? LastCheck { get; private set; }

    /// <summary>Records one check or request outcome; returns true when the healthy state flipped.</summary>
    public bool Record(bool success, int healthyThreshold, int unhealthyThreshold, bool isActiveCheck)
    {
        lock (this)
        {
            if (isActiveCheck) LastCheck = DateTimeOffset.UtcNow;
            if (success)
            {
                _failures = 0;
                // Passive successes do not heal: an ejected backend returns only through active checks.
                if (!isActiveCheck) return false;
                if (_healthy || ++_successes < healthyThreshold) return false;
                _successes = 0;
                _healthy = true;
                return true;
            }
            _successes = 0;
            if (!_healthy || ++_failures < unhealthyThreshold) return false;
            _failures = 0;
            _healthy = false;
            return true;
        }
    }
}

/// <summary>All backend health, by (model id, backend URL), and all backend load, by URL.</summary>
public sealed class BackendHealthRegistry
{
    private readonly ConcurrentDictionary<(string ModelId, string Url), BackendHealth> _states = new();
    private readonly ConcurrentDictionary<string, BackendLoad> _loads = new(StringComparer.OrdinalIgnoreCase);

    public BackendHealth For(string modelId, string url) => _states.GetOrAdd((modelId, url.TrimEnd('/')), static _ => new BackendHealth());

    public BackendLoad LoadFor(string url) => _loads.GetOrAdd(url.TrimEnd('/'), static _ => new BackendLoad());

    public IEnumerable<KeyValuePair<(string ModelId, string Url), BackendHealth>> All => _states;
}
