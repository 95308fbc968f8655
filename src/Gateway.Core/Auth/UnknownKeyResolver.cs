using System.Collections.Concurrent;
using System.Diagnostics;
using Gateway.Routing;
using Gateway.Storage;

namespace Gateway.Auth;

/// <summary>
/// The one bounded exception to "the data plane never waits on PostgreSQL": a well-formed key missing from the snapshot may have been
/// created on another instance a moment ago, before its invalidation arrived. It gets one store lookup, guarded three ways so random
/// keys cannot turn into one query each: a single flight per hash, a short negative cache per hash, and a global budget of lookups
/// per second (past it, unknown keys are refused without a query until the budget refills).
/// </summary>
public sealed class UnknownKeyResolver(IStore store, Func<CancellationToken, Task> reload, Func<KeyHash, KeyEntry?> find,
    UnknownKeyResolver.Settings settings)
{
    public sealed record Settings
    {
        /// <summary>How long a hash the store did not know stays known-unknown.</summary>
        public TimeSpan NegativeTtl { get; init; } = TimeSpan.FromSeconds(10);
        /// <summary>Store lookups allowed per second for unknown keys, over all hashes (also the burst).</summary>
        public int LookupsPerSecond { get; init; } = 5;
        /// <summary>Bound on the negative cache; past it the cache is cleared (the budget still bounds the queries).</summary>
        public int MaxNegativeEntries { get; init; } = 100_000;
        /// <summary>
        /// How long a request waits for the lookup (and the reload that follows a hit). A hung server would otherwise hold it for
        /// the driver's connect and command timeouts (~45 s measured with PostgreSQL stopped by SIGSTOP).
        /// </summary>
        public TimeSpan LookupTimeout { get; init; } = TimeSpan.FromSeconds(2);
    }

    private readonly ConcurrentDictionary<KeyHash, long> _negative = new();
    private readonly ConcurrentDictionary<KeyHash, Task<KeyEntry?>> _inFlight = new();
    private readonly Lock _budgetLock = new();
    private double _tokens = settings.LookupsPerSecond;
    private long _refilledAt = Stopwatch.GetTimestamp();
    private long _lookups;

    /// <summary>Store queries made so far (for tests and metrics).</summary>
    public long Lookups => Interlocked.Read(ref _lookups);

    /// <summary>The key's entry when the store has it (the snapshot is reloaded to include it), else null.</summary>
    public Task<KeyEntry?> ResolveAsync(KeyHash hash)
    {
        long now = Stopwatch.GetTimestamp();
        if (_negative.TryGetValue(hash, out var until) && now < until) return Task.FromResult<KeyEntry?>(null);
        if (_inFlight.TryGetValue(hash, out var pending)) return pending;
        if (!TakeBudget(now)) return Task.FromResult<KeyEntry?>(null);

        var flight = new TaskCompletionSource<KeyEntry?>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_inFlight.TryAdd(hash, flight.Task)) return _inFlight.TryGetValue(hash, out pending) ? pending : Task.FromResult<KeyEntry?>(null);
        _ = LookUpAsync(hash, flight);
        return flight.Task;
    }

    private async Task LookUpAsync(KeyHash hash, TaskCompletionSource<KeyEntry?> flight)
    {
        KeyEntry? entry = null;
        using var timeout = new CancellationTokenSource(settings.LookupTimeout);
        // The waiting requests get their answer (unknown: 401) when the time is up, even while the driver is still cancelling the
        // query on a server that does not answer (its cancel request may wait too). The flight stays registered until the lookup
        // really ends, so requests with this key meanwhile get the same answer at once, without a query.
        using var expired = timeout.Token.UnsafeRegister(static s =>
        {
            var (resolver, hash, flight) = ((UnknownKeyResolver, KeyHash, TaskCompletionSource<KeyEntry?>))s!;
            resolver.RememberUnknown(hash);
            flight.TrySetResult(null);
        }, (this, hash, flight));
        try
        {
            Interlocked.Increment(ref _lookups);
            var stored = await store.FindKeyByHashAsync(hash.ToHex(), timeout.Token).ConfigureAwait(false);
            if (stored is null) RememberUnknown(hash);
            else
            {
                // Reload so the key (and everything written with it) is in the snapshot for the next request.
                await reload(timeout.Token).ConfigureAwait(false);
                entry = find(hash);
            }
        }
        catch (Exception)
        {
            // The store is down: the key stays unknown (401) for now, like any other; the snapshot keeps serving known keys.
            RememberUnknown(hash);
        }
        finally
        {
            _inFlight.TryRemove(hash, out _);
            flight.TrySetResult(entry);
        }
    }

    private void RememberUnknown(KeyHash hash)
    {
        if (_negative.Count >= settings.MaxNegativeEntries) _negative.Clear();
        _negative[hash] = Stopwatch.GetTimestamp() + (long)(settings.NegativeTtl.TotalSeconds * Stopwatch.Frequency);
    }

    private bool TakeBudget(long now)
    {
        lock (_budgetLock)
        {
            _tokens = Math.Min(settings.LookupsPerSecond, _tokens + (now - _refilledAt) * (double)settings.LookupsPerSecond / Stopwatch.Frequency);
            _refilledAt = now;
            if (_tokens < 1) return false;
            _tokens -= 1;
            return true;
        }
    }
}
