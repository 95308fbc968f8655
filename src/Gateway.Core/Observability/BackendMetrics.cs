using Prometheus;

namespace Gateway.Observability;

/// <summary>
/// The label children of one backend of one model, for as long as that (alias, URL) pair is in the registry: one instance is shared
/// by every snapshot that has the pair and is retired when a snapshot without it is attached (see GatewayMetrics.Series.cs).
/// </summary>
public sealed class BackendMetrics
{
    internal BackendMetrics(GatewayMetrics owner, string alias, string url)
    {
        Owner = owner;
        Duration = owner.BackendRequestDuration.WithLabels(alias, url);
        Health = owner.BackendHealth.WithLabels(alias, url);
        Connect = owner.UpstreamErrors.WithLabels(alias, url, "connect");
        Timeout = owner.UpstreamErrors.WithLabels(alias, url, "timeout");
        Status5xx = owner.UpstreamErrors.WithLabels(alias, url, "status_5xx");
        BrokenStream = owner.UpstreamErrors.WithLabels(alias, url, "broken_stream");
    }

    internal GatewayMetrics Owner { get; }
    public Histogram.Child Duration { get; }
    public Gauge.Child Health { get; }
    public Counter.Child Connect { get; }
    public Counter.Child Timeout { get; }
    public Counter.Child Status5xx { get; }
    public Counter.Child BrokenStream { get; }

    /// <summary>
    /// The backend left the registry: every series goes from the scrape. A request still in flight on it keeps these children and
    /// writes into them; prometheus-net no longer lists a removed child, so nothing comes back, and a re-added backend gets new ones.
    /// </summary>
    internal void Retire()
    {
        Duration.Remove();
        Health.Remove();
        Connect.Remove();
        Timeout.Remove();
        Status5xx.Remove();
        BrokenStream.Remove();
    }
}
