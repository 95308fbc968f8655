using Gateway.Auth;
using Gateway.Observability;
using Gateway.Storage;

namespace Gateway.Control;

/// <summary>
/// Persists when keys were last used (<c>api_keys.last_used_at</c>, shown by the admin API) off the request path: every
/// <c>interval</c>, and once more at shutdown, the keys whose <see cref="KeyUsage"/> moved since the last successful write go to
/// the store in one batch. A failed write leaves them pending, so the next round retries them; one warning per failed round.
/// </summary>
public sealed class KeyUsageWriter : IAsyncDisposable
{
    /// <summary>Keys per statement: bounds one statement's size however many keys there are.</summary>
    internal const int BatchSize = 5000;

    /// <summary>How long the write at shutdown may take before it gives up (with an error line naming what is lost).</summary>
    private static readonly TimeSpan FinalFlushTimeout = TimeSpan.FromSeconds(5);

    private readonly IStore _store;
    private readonly KeyUsageRegistry _usage;
    private readonly GatewayLog _log;
    private readonly TimeSpan _interval;
    private readonly SemaphoreSlim _flushing = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;
    private long _written;
    private int _disposed;

    public KeyUsageWriter(IStore store, KeyUsageRegistry usage, GatewayLog log, TimeSpan interval)
    {
        _store = store;
        _usage = usage;
        _log = log;
        _interval = interval;
    }

    /// <summary>Key times written to the store so far.</summary>
    public long Written => Interlocked.Read(ref _written);

    public void Start() => _loop ??= RunAsync();

    /// <summary>
    /// Writes every key whose last use moved since its last successful write; returns how many. Throws what the store throws,
    /// leaving the unwritten keys pending for the next call.
    /// </summary>
    public async Task<int> FlushAsync(CancellationToken ct = default)
    {
        await _flushing.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var pending = new List<(KeyUsage Usage, long Ticks)>();
            foreach (var usage in _usage.All)
            {
                long ticks = usage.LastUsedTicks;
                if (ticks > usage.FlushedTicks) pending.Add((usage, ticks));
            }
            // In key order: every instance then locks the rows of its multi-row UPDATE in the same order, so two flushes that
            // overlap wait for each other instead of deadlocking (a dictionary's order differs between processes).
            pending.Sort(static (a, b) => a.Usage.KeyId.CompareTo(b.Usage.KeyId));
            for (int start = 0; start < pending.Count; start += BatchSize)
            {
                var batch = pending.GetRange(start, Math.Min(BatchSize, pending.Count - start));
                var reports = new KeyUsageReport[batch.Count];
                for (int i = 0; i < batch.Count; i++)
                    reports[i] = new KeyUsageReport(batch[i].Usage.KeyId, new DateTimeOffset(batch[i].Ticks, TimeSpan.Zero));
                await _store.RecordKeyUsageAsync(reports, ct).ConfigureAwait(false);
                // Only what was written is done; a use after the snapshot of ticks above stays pending.
                foreach (var (usage, ticks) in batch) usage.FlushedTicks = ticks;
                Interlocked.Add(ref _written, batch.Count);
            }
            return pending.Count;
        }
        finally
        {
            _flushing.Release();
        }
    }

    private async Task RunAsync()
    {
        using var timer = new PeriodicTimer(_interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                try { await FlushAsync(_stop.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested) { throw; }
                catch (Exception e)
                {
                    _log.Warn($"key last-use times not written to the store, retrying in {_interval.TotalSeconds:0}s: {Describe(e)}");
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
    }

    /// <summary>Stops the periodic writes, then writes what is still pending (bounded by <see cref="FinalFlushTimeout"/>).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null) await _loop.ConfigureAwait(false);
        using var timeout = new CancellationTokenSource(FinalFlushTimeout);
        try { await FlushAsync(timeout.Token).ConfigureAwait(false); }
        catch (Exception e)
        {
            _log.Error($"key last-use times not written at shutdown; the admin API keeps the previous values: {Describe(e)}");
        }
        _stop.Dispose();
    }

    private static string Describe(Exception e) => e switch
    {
        StoreException s => s.Message,
        OperationCanceledException => $"timed out after {FinalFlushTimeout.TotalSeconds:0}s",
        _ => e.GetType().Name,
    };
}
