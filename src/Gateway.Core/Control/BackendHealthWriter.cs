using System.Threading.Channels;
using Gateway.Observability;
using Gateway.Routing;
using Gateway.Storage;

namespace Gateway.Control;

/// <summary>
/// Writes this instance's view of backend health into the store (<c>model_backends.healthy</c>, <c>last_health_check</c>) so the
/// admin API shows it. Coalesced: a flip is written within a second, batched with any others; otherwise one batch per heartbeat
/// refreshes <c>last_health_check</c>. So N instances cost N small statements per heartbeat, not one per check per backend.
/// </summary>
public sealed class BackendHealthWriter : IAsyncDisposable
{
    private readonly IStore _store;
    private readonly SnapshotHolder _snapshots;
    private readonly GatewayLog _log;
    private readonly TimeSpan _heartbeat;
    private readonly TimeSpan _coalesce;
    private readonly Channel<bool> _flips = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly CancellationTokenSource _stop = new();
    private long _lastRoundTicks;
    private Task? _loop;

    public BackendHealthWriter(IStore store, SnapshotHolder snapshots, GatewayLog log, TimeSpan heartbeat, TimeSpan? coalesce = null)
    {
        _store = store;
        _snapshots = snapshots;
        _log = log;
        _heartbeat = heartbeat;
        _coalesce = coalesce ?? TimeSpan.FromSeconds(1);
    }

    private long _writes;

    /// <summary>Batches written so far.</summary>
    public long Writes => Interlocked.Read(ref _writes);

    public void Start() => _loop ??= RunAsync();

    /// <summary>A backend flipped: write soon (a full signal already pending covers this one too).</summary>
    public void OnFlip() => _flips.Writer.TryWrite(true);

    /// <summary>A round of checks finished: its time is what <c>last_health_check</c> reports.</summary>
    public void OnRound() => Interlocked.Exchange(ref _lastRoundTicks, DateTimeOffset.UtcNow.UtcTicks);

    private async Task RunAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                using (var wait = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
                {
                    wait.CancelAfter(_heartbeat);
                    try
                    {
                        await _flips.Reader.ReadAsync(wait.Token).ConfigureAwait(false);
                        await Task.Delay(_coalesce, _stop.Token).ConfigureAwait(false); // let the rest of the round's flips join
                        _flips.Reader.TryRead(out _);
                    }
                    catch (OperationCanceledException) when (!_stop.IsCancellationRequested) { } // heartbeat
                }
                await WriteAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
    }

    private async Task WriteAsync()
    {
        long ticks = Interlocked.Read(ref _lastRoundTicks);
        if (ticks == 0 || _snapshots.Current is not { } snapshot) return; // no round yet: nothing to report
        var at = new DateTimeOffset(ticks, TimeSpan.Zero);
        var reports = new List<BackendHealthReport>();
        foreach (var model in snapshot.Models)
            foreach (var backend in model.Backends)
                reports.Add(new BackendHealthReport(model.ModelId, backend.Url, backend.Health.Healthy, at));
        try
        {
            await _store.RecordBackendHealthAsync(reports, _stop.Token).ConfigureAwait(false);
            Interlocked.Increment(ref _writes);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
        catch (Exception e)
        {
            _log.Warn($"backend health not written to the store: {(e is StoreException s ? s.Message : e.GetType().Name)}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null) await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
