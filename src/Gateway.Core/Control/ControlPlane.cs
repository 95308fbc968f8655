using Gateway.Auth;
using Gateway.Config;
using Gateway.Observability;
using Gateway.Routing;
using Gateway.Storage;
using StackExchange.Redis;

namespace Gateway.Control;

/// <summary>
/// Owns the state behind the data plane: seeds the store from gateway.toml, builds snapshots from it and swaps them in, and keeps
/// instances that share a PostgreSQL in step: an admin write reloads here and publishes an invalidation on Redis; every other instance
/// reloads on the message and, to heal missed messages (Redis down, a partition), every <c>registry.cache_refresh_interval</c>.
/// A failed reload keeps the current snapshot: the data plane serves on while PostgreSQL is away.
/// </summary>
public sealed class ControlPlane : IAsyncDisposable
{
    public const string InvalidationChannel = "gateway:registry:invalidate";

    private readonly SnapshotHolder _snapshots;
    private readonly GatewayOptions _options;
    private readonly BackendHealthRegistry _health;
    private readonly Action<Snapshot> _prepare;
    private readonly GatewayLog _log;
    private readonly IConnectionMultiplexer? _redis;
    private readonly SemaphoreSlim _reloadLock = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    // Reloads are coalesced: a caller is served by any reload that started after it asked.
    private long _requested;
    private long _completed;
    private Task? _refreshLoop;
    private volatile bool _subscribed;
    private long _reloads;

    /// <param name="redis">Pub/sub for invalidations; null when Redis is not configured.</param>
    /// <param name="prepare">
    /// Runs on each new snapshot before it is swapped in, as on the host's first one: metric children and upstream routes resolved.
    /// </param>
    public ControlPlane(IStore store, SnapshotHolder snapshots, GatewayOptions options, BackendHealthRegistry health, Action<Snapshot> prepare,
        GatewayLog log, IConnectionMultiplexer? redis)
    {
        Store = store;
        _snapshots = snapshots;
        _options = options;
        _health = health;
        _prepare = prepare;
        _log = log;
        _redis = store.IsShared ? redis : null; // an embedded store is this instance's alone: nobody else to tell
        // Only a shared store can hold keys this snapshot has not seen yet.
        KeyResolver = store.IsShared
            ? new UnknownKeyResolver(store, ReloadAsync, hash => _snapshots.Current?.FindKey(hash), new UnknownKeyResolver.Settings())
            : null;
    }

    public IStore Store { get; }
    /// <summary>Every stored key's last-use slot; snapshots built here hand them to their keys (see <see cref="KeyUsageWriter"/>).</summary>
    public KeyUsageRegistry KeyUsage { get; } = new();
    /// <summary>The scaled-out lookup for keys missing from the snapshot; null in embedded mode, where the snapshot is complete.</summary>
    public UnknownKeyResolver? KeyResolver { get; }
    /// <summary>This instance's id in invalidation messages (its own are ignored).</summary>
    public string InstanceId { get; } = Guid.NewGuid().ToString("N");
    /// <summary>Snapshots built from the store so far.</summary>
    public long Reloads => Interlocked.Read(ref _reloads);

    /// <summary>Seeds the config entries, loads the first snapshot (the server starts only after it), then listens for changes.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        await StoreSeeder.SeedAsync(Store, _options, ct).ConfigureAwait(false);
        await ReloadAsync(ct).ConfigureAwait(false);
        if (_redis is not null) await TrySubscribeAsync().ConfigureAwait(false);
        if (Store.IsShared && _options.CacheRefreshInterval > TimeSpan.Zero) _refreshLoop = RefreshLoopAsync();
    }

    /// <summary>Rebuilds the snapshot from the store and swaps it in. Throws what the store throws; the old snapshot stays.</summary>
    public async Task ReloadAsync(CancellationToken ct)
    {
        long ticket = Interlocked.Increment(ref _requested);
        await _reloadLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _completed) >= ticket) return;
            long covers = Volatile.Read(ref _requested);
            var snapshot = await SnapshotBuilder.BuildAsync(Store, _snapshots.Current, _health, _options.DefaultRpm, _options.DefaultTpm,
                KeyUsage, ct).ConfigureAwait(false);
            _prepare(snapshot);
            _snapshots.Swap(snapshot);
            Interlocked.Increment(ref _reloads);
            Volatile.Write(ref _completed, covers);
        }
        finally
        {
            _reloadLock.Release();
        }
    }

    /// <summary>After an admin write: this instance sees it before the response goes out; the others hear of it through Redis.</summary>
    public async Task AfterWriteAsync(CancellationToken ct)
    {
        await ReloadAsync(ct).ConfigureAwait(false);
        if (_redis is null) return;
        try
        {
            await _redis.GetSubscriber().PublishAsync(RedisChannel.Literal(InvalidationChannel), InstanceId).WaitAsync(PublishWait).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // The write is done and durable; the others pick it up on their next periodic refresh.
            _log.Warn($"registry invalidation not published ({(e is TimeoutException ? $"no answer from Redis within {PublishWait.TotalSeconds:0}s" : e.GetType().Name)}); " +
                $"other instances refresh within {_options.CacheRefreshInterval.TotalSeconds:0}s");
        }
    }

    /// <summary>
    /// How long an admin write waits for Redis to take its invalidation. A hung Redis held every admin write for StackExchange.Redis's
    /// own timeout (5 s); the write is durable already, so its answer should not wait on a notification.
    /// </summary>
    public static readonly TimeSpan PublishWait = TimeSpan.FromSeconds(1);

    private async Task TrySubscribeAsync()
    {
        try
        {
            await _redis!.GetSubscriber().SubscribeAsync(RedisChannel.Literal(InvalidationChannel), (channel, message) =>
            {
                if (message != InstanceId) _ = ReloadQuietlyAsync("invalidation");
            }).ConfigureAwait(false);
            _subscribed = true;
        }
        catch (Exception e)
        {
            _log.Warn($"registry invalidations not subscribed ({e.GetType().Name}); retrying every refresh interval");
        }
    }

    private async Task RefreshLoopAsync()
    {
        using var timer = new PeriodicTimer(_options.CacheRefreshInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                if (_redis is not null && !_subscribed) await TrySubscribeAsync().ConfigureAwait(false);
                await ReloadQuietlyAsync("refresh").ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>Waits before each retry of a failed reload: under a second in all.</summary>
    private static readonly TimeSpan[] ReloadRetryDelays =
        [TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(400)];

    /// <summary>
    /// A reload that fails is tried again a few times within a second. The store already retries a read that met a connection
    /// dead in its pool (PostgresStore.Retrying); this covers a server that is still restarting (refused, 57P03) when the
    /// invalidation arrives. Without it, that invalidation was lost, and a revoked key kept working here until the next refresh.
    /// </summary>
    private async Task ReloadQuietlyAsync(string why)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                await ReloadAsync(_stop.Token).ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested) { return; }
            catch (Exception e)
            {
                if (attempt < ReloadRetryDelays.Length)
                {
                    try { await Task.Delay(ReloadRetryDelays[attempt], _stop.Token).ConfigureAwait(false); }
                    catch (OperationCanceledException) { return; }
                    continue;
                }
                _log.Warn($"registry {why} failed, serving the previous snapshot: {(e is StoreException s ? s.Message : e.GetType().Name)}");
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_refreshLoop is not null) await _refreshLoop.ConfigureAwait(false);
        if (_redis is not null && _subscribed)
        {
            try { await _redis.GetSubscriber().UnsubscribeAsync(RedisChannel.Literal(InvalidationChannel)).ConfigureAwait(false); }
            catch (Exception) { /* shutting down anyway */ }
        }
        await Store.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
