namespace Gateway.Observability;

public sealed partial class GatewayMetrics
{
    /// <summary>Step 11: every metric of one finished request. No label lookups, no allocation (see MetricsRecordingBenchmarks).</summary>
    public void Record(RequestRecord r, long end)
    {
        if (!Enabled) return;
        var m = r.Model is { } model ? For(model) : NoModel;
        m.Requests(r.Status, r.Streaming).Inc();
        (r.Streaming ? m.DurationStream : m.DurationNonStream).Observe(RequestRecord.Seconds(end - r.Start));
        r.OverheadRoute?.Observe(RequestRecord.Seconds(r.Overhead(end)));

        if (r.HasUsage)
        {
            m.PromptTokens.Inc(r.PromptTokens);
            m.CompletionTokens.Inc(r.CompletionTokens);
            m.PromptTokensPerRequest.Observe(r.PromptTokens);
            m.CompletionTokensPerRequest.Observe(r.CompletionTokens);
        }

        if (r.FirstContent == 0) return;
        m.TimeToFirstToken.Observe(RequestRecord.Seconds(r.FirstContent - r.Start));
        long generating = r.LastContent - r.FirstContent;
        if (r.ContentChunks < 2) return;
        // ITL: the mean gap of this stream, one observation per stream (per-gap observations would cost a histogram update per token).
        // Chunks are stamped per upstream read, so a stream that arrived in one read has an ITL of 0 and no tokens-per-second.
        m.InterTokenLatency.Observe(RequestRecord.Seconds(generating) / (r.ContentChunks - 1));
        if (r.CompletionTokens > 0 && generating > 0)
        {
            double tps = r.CompletionTokens / RequestRecord.Seconds(generating);
            m.CompletionTokensPerSecond.Observe(tps);
            m.TpsByPromptBucket[PromptBuckets.Index(r.PromptTokens)].Observe(tps);
        }
    }
}
