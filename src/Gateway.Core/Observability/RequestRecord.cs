using System.Diagnostics;
using Gateway.Routing;
using Prometheus;

namespace Gateway.Observability;

/// <summary>
/// What step 11 of the request path accounts for: filled in as the request goes, read once at the end by the metrics and the
/// log. Pooled with the rest of the request's working set, so it costs no allocation.
/// </summary>
public sealed class RequestRecord
{
    /// <summary><see cref="Stopwatch"/> timestamp of the request's start.</summary>
    public long Start;
    /// <summary>Ticks spent waiting for the upstream: to its response headers, plus reading a non-stream body.</summary>
    public long UpstreamTicks;
    /// <summary>The gateway's own time when it is known before the end (streams: up to the first byte); -1 = total − upstream.</summary>
    public long OverheadTicks = -1;
    public ModelEntry? Model;
    public Backend? Backend;
    public bool Streaming;
    public int Status;
    public string? RequestId;
    public string? Method;
    public string? Path;
    public string? KeyPrefix;
    /// <summary>How a stream that had its 200 ended (the error event's cause when not completed).</summary>
    public Gateway.Streaming.RelayOutcome StreamOutcome;
    public Histogram.Child? OverheadRoute;
    public bool HasUsage;
    public long PromptTokens;
    public long CompletionTokens;
    /// <summary>Streams: timestamps of the first and last chunk with content, and how many there were.</summary>
    public long FirstContent;
    public long LastContent;
    public int ContentChunks;

    public void Reset(long start)
    {
        Start = start;
        UpstreamTicks = 0;
        OverheadTicks = -1;
        Model = null;
        Backend = null;
        Streaming = false;
        Status = 0;
        RequestId = Method = Path = KeyPrefix = null;
        StreamOutcome = Gateway.Streaming.RelayOutcome.Completed;
        OverheadRoute = null;
        HasUsage = false;
        PromptTokens = CompletionTokens = FirstContent = LastContent = 0;
        ContentChunks = 0;
    }

    public long Overhead(long end) => OverheadTicks >= 0 ? OverheadTicks : Math.Max(0, end - Start - UpstreamTicks);

    public static double Seconds(long ticks) => ticks / (double)Stopwatch.Frequency;
    public static double Milliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}
