using Prometheus;

namespace Gateway.Observability;

/// <summary>
/// The label children of one model alias, resolved once. Status codes are few but open-ended, so their request counters are
/// filled in lazily in a fixed array (index by status and streaming) rather than looked up by label values on every request.
/// One instance per alias for as long as the alias is in the registry (shared by every snapshot that has it), retired when a
/// snapshot without it is attached (see GatewayMetrics.Series.cs).
/// </summary>
public sealed class ModelMetrics
{
    private readonly GatewayMetrics _owner;
    private readonly string _alias;
    private readonly Counter.Child?[] _requests = new Counter.Child?[2 * 600];
    // Guarded by _requests: set once the alias left the registry, after which no child is created for it.
    private bool _retired;

    internal ModelMetrics(GatewayMetrics owner, string alias)
    {
        _owner = owner;
        _alias = alias;
        DurationStream = owner.RequestDuration.WithLabels(alias, "true");
        DurationNonStream = owner.RequestDuration.WithLabels(alias, "false");
        TimeToFirstToken = owner.TimeToFirstToken.WithLabels(alias);
        InterTokenLatency = owner.InterTokenLatency.WithLabels(alias);
        CompletionTokensPerSecond = owner.TokensPerSecond.WithLabels(alias, "completion");
        PromptTokensPerRequest = owner.TokensPerRequest.WithLabels(alias, "prompt");
        CompletionTokensPerRequest = owner.TokensPerRequest.WithLabels(alias, "completion");
        PromptTokens = owner.PromptTokens.WithLabels(alias);
        CompletionTokens = owner.CompletionTokens.WithLabels(alias);
        ActiveStreams = owner.ActiveStreams.WithLabels(alias);
        Failovers = owner.Failovers.WithLabels(alias);
        TpsByPromptBucket = new Histogram.Child[PromptBuckets.Labels.Length];
        for (int i = 0; i < TpsByPromptBucket.Length; i++)
            TpsByPromptBucket[i] = owner.CompletionTpsByPromptBucket.WithLabels(alias, PromptBuckets.Labels[i]);
        if (alias.Length == 0) HideUntilUsed();
    }

    /// <summary>
    /// Requests without a model never stream tokens; their zero-valued token and stream series would only clutter a scrape.
    /// prometheus-net republishes a child as soon as its value changes.
    /// </summary>
    private void HideUntilUsed()
    {
        DurationStream.Unpublish();
        TimeToFirstToken.Unpublish();
        InterTokenLatency.Unpublish();
        CompletionTokensPerSecond.Unpublish();
        PromptTokensPerRequest.Unpublish();
        CompletionTokensPerRequest.Unpublish();
        PromptTokens.Unpublish();
        CompletionTokens.Unpublish();
        ActiveStreams.Unpublish();
        Failovers.Unpublish();
        foreach (var child in TpsByPromptBucket) child.Unpublish();
    }

    internal GatewayMetrics Owner => _owner;

    public Histogram.Child DurationStream { get; }
    public Histogram.Child DurationNonStream { get; }
    public Histogram.Child TimeToFirstToken { get; }
    public Histogram.Child InterTokenLatency { get; }
    public Histogram.Child CompletionTokensPerSecond { get; }
    public Histogram.Child PromptTokensPerRequest { get; }
    public Histogram.Child CompletionTokensPerRequest { get; }
    public Counter.Child PromptTokens { get; }
    public Counter.Child CompletionTokens { get; }
    public Gauge.Child ActiveStreams { get; }
    public Counter.Child Failovers { get; }
    internal Histogram.Child[] TpsByPromptBucket { get; }

    public Counter.Child Requests(int status, bool streaming)
    {
        if ((uint)status >= 600) status = 599; // not a real status; keeps the index in range
        int index = status * 2 + (streaming ? 1 : 0);
        return _requests[index] ?? Create(index, status, streaming);
    }

    private Counter.Child Create(int index, int status, bool streaming)
    {
        // Once per status and alias, so a lock is cheap here; it orders creation against Retire. A request that started before its
        // model was deleted and ends with a new status must not bring the alias's series back (prometheus-net would create it).
        lock (_requests)
        {
            if (_retired) return _owner.Discarded;
            return _requests[index] ??= _owner.Requests.WithLabels(
                _alias, status.ToString(System.Globalization.CultureInfo.InvariantCulture), streaming ? "true" : "false");
        }
    }

    /// <summary>
    /// The alias left the registry: every series of it goes from the scrape, counters and histograms included. Requests still in
    /// flight keep these children and write into them unseen (a stream that ends decrements its own removed gauge, never the
    /// re-added model's new one); a re-added alias gets a new instance with new children.
    /// </summary>
    internal void Retire()
    {
        lock (_requests)
        {
            _retired = true;
            foreach (var child in _requests) child?.Remove();
        }
        DurationStream.Remove();
        DurationNonStream.Remove();
        TimeToFirstToken.Remove();
        InterTokenLatency.Remove();
        CompletionTokensPerSecond.Remove();
        PromptTokensPerRequest.Remove();
        CompletionTokensPerRequest.Remove();
        PromptTokens.Remove();
        CompletionTokens.Remove();
        ActiveStreams.Remove();
        Failovers.Remove();
        foreach (var child in TpsByPromptBucket) child.Remove();
    }
}

/// <summary>The prompt-size buckets of <c>gateway_completion_tokens_per_second_by_prompt_bucket</c>; upper edges are inclusive (1024 → le_1k).</summary>
public static class PromptBuckets
{
    public static readonly string[] Labels = ["le_1k", "1k_2k", "2k_4k", "4k_8k", "8k_16k", "16k_32k", "32k_64k", "gt_64k"];

    public static int Index(long promptTokens)
    {
        if (promptTokens <= 1024) return 0;
        // ceil(log2(tokens / 1024)): 1025..2048 → 1, 2049..4096 → 2, …; beyond 64k → the last bucket.
        int index = 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(promptTokens - 1) >> 10);
        return Math.Min(index, Labels.Length - 1);
    }

    public static string Label(long promptTokens) => Labels[Index(promptTokens)];
}
