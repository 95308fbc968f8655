using System.Collections.Concurrent;

namespace Gateway.Auth;

/// <summary>
/// When a key was last used, as this process saw it. The request path only stores a timestamp here (<see cref="Touch"/>); the
/// control plane's <c>KeyUsageWriter</c> persists the ones that moved. A stored key has one, from <see cref="KeyUsageRegistry"/>,
/// shared by every snapshot that holds the key, so a snapshot swap never loses a use.
/// </summary>
public sealed class KeyUsage(Guid keyId)
{
    // A hot key's cache line is written at most once a millisecond, whatever the request rate or core count.
    private const long ResolutionTicks = TimeSpan.TicksPerMillisecond;

    private long _lastUsedTicks;

    /// <summary>The key's store id; <see cref="Guid.Empty"/> for a key stored nowhere (a host without a store), never persisted.</summary>
    public Guid KeyId { get; } = keyId;

    /// <summary>UTC ticks of the last use; 0 = not used since this process started.</summary>
    public long LastUsedTicks => Volatile.Read(ref _lastUsedTicks);

    /// <summary>The last value the writer persisted; touched only by the writer, under its lock.</summary>
    internal long FlushedTicks;

    /// <summary>Step 3: the key authenticated at <paramref name="now"/>. No lock, no allocation, never moves backwards.</summary>
    public void Touch(DateTimeOffset now)
    {
        long ticks = now.UtcTicks;
        long seen = Volatile.Read(ref _lastUsedTicks);
        // A lost race may have stored an older time (a request that read the clock earlier): try again against what won.
        while (ticks - seen >= ResolutionTicks)
        {
            long won = Interlocked.CompareExchange(ref _lastUsedTicks, ticks, seen);
            if (won == seen) return;
            seen = won;
        }
    }
}

/// <summary>The <see cref="KeyUsage"/> of every stored key this process has loaded, by key id; outlives snapshots.</summary>
public sealed class KeyUsageRegistry
{
    private readonly ConcurrentDictionary<Guid, KeyUsage> _byId = new();

    /// <summary>The key's slot, created the first time a snapshot holds the key.</summary>
    public KeyUsage For(Guid keyId) => _byId.GetOrAdd(keyId, static id => new KeyUsage(id));

    /// <summary>Every slot (lock-free enumeration; slots added meanwhile may or may not be seen).</summary>
    public IEnumerable<KeyUsage> All
    {
        get
        {
            foreach (var pair in _byId) yield return pair.Value;
        }
    }
}
