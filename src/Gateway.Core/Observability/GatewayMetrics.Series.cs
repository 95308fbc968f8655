using Gateway.Routing;
using Prometheus;

namespace Gateway.Observability;

/// <summary>
/// The lifetime of label children: a model's and a backend's series exist while the registry has them. Each snapshot is attached
/// before it is swapped in; what the previous one had and this one lacks is retired, i.e. removed from the scrape.
/// Gauges must go: a health 0 or an active-streams value of a backend or model that no longer exists is a false statement (and
/// fires alerts on <c>gateway_backend_health == 0</c>). Counters and histograms go too: kept, every deleted or renamed model and
/// every replaced backend URL would leave its series in every scrape until restart; Prometheus reads a series that disappears and
/// later restarts from 0 as a counter reset, so rate() and increase() stay right, and what is lost is at most the increments since
/// the last scrape. Deactivating a model or backend keeps its series (it is still in the registry; its health reads 0).
/// </summary>
public sealed partial class GatewayMetrics
{
    // Control plane only: Attach and the rare slot miss in For. The request path reads the slots on the entries, never these.
    private readonly Lock _seriesLock = new();
    private Dictionary<string, ModelMetrics> _models = new(StringComparer.Ordinal);
    private Dictionary<(string Alias, string Url), BackendMetrics> _backends = [];

    /// <summary>Where a retired model's late first-of-its-status request is counted: a counter in a registry nobody scrapes.</summary>
    internal Counter.Child Discarded { get; } =
        Metrics.WithCustomRegistry(Metrics.NewCustomRegistry()).CreateCounter("gateway_discarded", "Not exported.", "x").WithLabels("");

    /// <summary>The children of <paramref name="model"/>, cached on the entry (set by <see cref="Attach"/>).</summary>
    public ModelMetrics For(ModelEntry model)
    {
        // The slot is typed object so Routing does not depend on Observability; the owner check keeps two gateways in one process apart.
        if (model.MetricsSlot is ModelMetrics m && ReferenceEquals(m.Owner, this)) return m;
        lock (_seriesLock) // an entry never attached (tests, tools): share the alias's live instance rather than make a second
        {
            if (!_models.TryGetValue(model.Alias, out var live)) _models[model.Alias] = live = new ModelMetrics(this, model.Alias);
            model.MetricsSlot = live;
            return live;
        }
    }

    public BackendMetrics For(ModelEntry model, Backend backend)
    {
        if (backend.MetricsSlot is BackendMetrics b && ReferenceEquals(b.Owner, this)) return b;
        lock (_seriesLock)
        {
            if (!_backends.TryGetValue((model.Alias, backend.Url), out var live))
                _backends[(model.Alias, backend.Url)] = live = new BackendMetrics(this, model.Alias, backend.Url);
            backend.MetricsSlot = live;
            return live;
        }
    }

    /// <summary>
    /// Readies <paramref name="snapshot"/> before it serves a request: every model's and backend's children resolved onto its
    /// entries, backend health published (a scrape shows it at once), and the series of models and backends it no longer has
    /// retired. Requests on the previous snapshot keep their (now retired) children; what they record is not exported.
    /// </summary>
    public void Attach(Snapshot snapshot)
    {
        lock (_seriesLock)
        {
            var models = new Dictionary<string, ModelMetrics>(StringComparer.Ordinal);
            var backends = new Dictionary<(string Alias, string Url), BackendMetrics>();
            foreach (var model in snapshot.Models)
            {
                if (!_models.TryGetValue(model.Alias, out var m)) m = new ModelMetrics(this, model.Alias);
                models[model.Alias] = m;
                model.MetricsSlot = m;
                foreach (var backend in model.Backends)
                {
                    var key = (model.Alias, backend.Url);
                    if (!_backends.TryGetValue(key, out var b)) b = new BackendMetrics(this, model.Alias, backend.Url);
                    backends[key] = b;
                    backend.MetricsSlot = b;
                    b.Health.Set(backend.IsAvailable && model.Active ? 1 : 0);
                }
            }
            foreach (var (alias, m) in _models)
                if (!models.ContainsKey(alias)) m.Retire();
            foreach (var (key, b) in _backends)
                if (!backends.ContainsKey(key)) b.Retire();
            _models = models;
            _backends = backends;
        }
    }
}
