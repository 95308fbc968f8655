using Gateway.Routing;
using Prometheus;

namespace Gateway.Observability;

/// <summary>
/// The gateway's Prometheus metrics in a private <see cref="CollectorRegistry"/> (not the static default, so several gateways can
/// run in one process, as the tests do). Families are created here once; label children are resolved once per model and backend
/// (<see cref="ModelMetrics"/>, <see cref="BackendMetrics"/>) so that recording a request costs no label lookup, and they leave the
/// scrape with their model or backend (GatewayMetrics.Series.cs).
/// Label conventions: <c>model</c> is the alias the client asked for, or "" when the request failed before a known model was
/// named (401, a body that does not parse, an unknown model — unknown names would make the label set unbounded).
/// </summary>
public sealed partial class GatewayMetrics
{
    // Seconds. LLM requests take from milliseconds (embeddings, errors) to minutes (long generations).
    private static readonly double[] DurationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
    private static readonly double[] TtftBuckets = [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30];
    private static readonly double[] ItlBuckets = [0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1];
    private static readonly double[] TokensPerSecondBuckets = [1, 5, 10, 20, 30, 50, 75, 100, 150, 200, 500, 1000, 5000];
    private static readonly double[] TokensPerRequestBuckets = [1, 10, 50, 100, 250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000];
    // The gateway's own time: microseconds to a few milliseconds.
    private static readonly double[] OverheadBuckets = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];

    public GatewayMetrics()
    {
        Registry = Metrics.NewCustomRegistry();
        var f = Metrics.WithCustomRegistry(Registry);
        // Exemplars are not exported in the text format; skip the per-observation Activity lookup.
        f.ExemplarBehavior = new ExemplarBehavior { DefaultExemplarProvider = static (_, _) => Exemplar.None };

        Requests = f.CreateCounter("gateway_requests_total", "Requests by model alias, HTTP status and streaming.", "model", "status_code", "streaming");
        RequestDuration = f.CreateHistogram("gateway_request_duration_seconds", "Time from request start to the last byte (the whole stream for streams).",
            ["model", "streaming"], new HistogramConfiguration { Buckets = DurationBuckets });
        TimeToFirstToken = f.CreateHistogram("gateway_time_to_first_token_seconds", "Streams: request start to the first chunk with content.",
            ["model"], new HistogramConfiguration { Buckets = TtftBuckets });
        InterTokenLatency = f.CreateHistogram("gateway_inter_token_latency_seconds", "Streams: mean gap between content chunks, one observation per stream.",
            ["model"], new HistogramConfiguration { Buckets = ItlBuckets });
        TokensPerSecond = f.CreateHistogram("gateway_tokens_per_second", "Streams: completion tokens per second from the first to the last content chunk.",
            ["model", "type"], new HistogramConfiguration { Buckets = TokensPerSecondBuckets });
        TokensPerRequest = f.CreateHistogram("gateway_tokens_per_request", "Tokens per request from the upstream's usage, by type (prompt, completion).",
            ["model", "type"], new HistogramConfiguration { Buckets = TokensPerRequestBuckets });
        CompletionTpsByPromptBucket = f.CreateHistogram("gateway_completion_tokens_per_second_by_prompt_bucket", "Streams: completion tokens/s by prompt size.",
            ["model", "prompt_tokens_bucket"], new HistogramConfiguration { Buckets = TokensPerSecondBuckets });
        PromptTokens = f.CreateCounter("gateway_prompt_tokens_total", "Prompt tokens from the upstream's usage.", "model");
        CompletionTokens = f.CreateCounter("gateway_completion_tokens_total", "Completion tokens from the upstream's usage.", "model");
        ActiveStreams = f.CreateGauge("gateway_active_streams", "Streams being relayed now.", "model");
        BackendHealth = f.CreateGauge("gateway_backend_health", "1 = the backend takes traffic, 0 = it does not.", "model", "backend_url");
        RateLimitHits = f.CreateCounter("gateway_rate_limit_hits_total", "Requests refused with 429, by key prefix and limit (rpm, tpm).", "key_prefix", "limit_type");
        BackendRequestDuration = f.CreateHistogram("gateway_backend_request_duration_seconds", "Time from sending upstream to the upstream's response headers.",
            ["model", "backend_url"], new HistogramConfiguration { Buckets = DurationBuckets });
        Overhead = f.CreateHistogram("gateway_overhead_seconds", "Time spent in the gateway itself, upstream waits excluded (streams: up to the first byte).",
            ["route"], new HistogramConfiguration { Buckets = OverheadBuckets });
        RateLimiterErrors = f.CreateCounter("gateway_rate_limiter_errors_total", "Rate limiter calls to Redis that failed: a check (its request was allowed without a decision: fail-open) or a token charge (lost with Redis).");
        UpstreamErrors = f.CreateCounter("gateway_upstream_errors_total", "Upstream failures by kind: connect, timeout, status_5xx, broken_stream.",
            "model", "backend_url", "kind");
        Failovers = f.CreateCounter("gateway_failovers_total", "Requests retried on another backend before any byte reached the client.", "model");
        LogLinesDropped = f.CreateCounter("gateway_log_lines_dropped_total", "Log lines dropped because the log queue was full.");

        RateLimiterErrors.Publish();
        LogLinesDropped.Publish();
        NoModel = new ModelMetrics(this, "");
        OverheadChat = Overhead.WithLabels("chat_completions");
        OverheadCompletions = Overhead.WithLabels("completions");
        OverheadEmbeddings = Overhead.WithLabels("embeddings");
    }

    public CollectorRegistry Registry { get; }

    /// <summary>False when <c>[metrics] enabled = false</c>: requests are not recorded and /metrics is not served.</summary>
    public bool Enabled { get; init; } = true;

    internal Counter Requests { get; }
    internal Histogram RequestDuration { get; }
    internal Histogram TimeToFirstToken { get; }
    internal Histogram InterTokenLatency { get; }
    internal Histogram TokensPerSecond { get; }
    internal Histogram TokensPerRequest { get; }
    internal Histogram CompletionTpsByPromptBucket { get; }
    internal Counter PromptTokens { get; }
    internal Counter CompletionTokens { get; }
    internal Gauge ActiveStreams { get; }
    internal Gauge BackendHealth { get; }
    public Counter RateLimitHits { get; }
    internal Histogram BackendRequestDuration { get; }
    internal Histogram Overhead { get; }
    public Counter RateLimiterErrors { get; }
    internal Counter UpstreamErrors { get; }
    internal Counter Failovers { get; }
    public Counter LogLinesDropped { get; }

    internal Histogram.Child OverheadChat { get; }
    internal Histogram.Child OverheadCompletions { get; }
    internal Histogram.Child OverheadEmbeddings { get; }

    /// <summary>Requests that failed before a known model was named.</summary>
    public ModelMetrics NoModel { get; }

    /// <summary>
    /// Counts a 429 for <paramref name="key"/> (for the rate limiter's step 6). The key's children are cached on the entry;
    /// <c>key_prefix</c> is the display prefix (never the key), "" when only the hash is known.
    /// </summary>
    public void RateLimitHit(KeyEntry key, RateLimitKind kind)
    {
        if (key.MetricsSlot is not KeyMetrics k || !ReferenceEquals(k.Owner, this))
        {
            k = new KeyMetrics(this, RateLimitHits.WithLabels(key.KeyPrefix, "rpm"), RateLimitHits.WithLabels(key.KeyPrefix, "tpm"));
            key.MetricsSlot = k;
        }
        (kind == RateLimitKind.Tpm ? k.Tpm : k.Rpm).Inc();
    }

    /// <summary>Writes the text exposition format (version 0.0.4).</summary>
    public Task WriteAsync(Stream output, CancellationToken cancellationToken) =>
        Registry.CollectAndExportAsTextAsync(output, ExpositionFormat.PrometheusText, cancellationToken);

    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";
}

public enum RateLimitKind : byte { Rpm, Tpm }

/// <summary>The rate-limit children of one key.</summary>
internal sealed record KeyMetrics(GatewayMetrics Owner, Counter.Child Rpm, Counter.Child Tpm);
