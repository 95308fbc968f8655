using System.Diagnostics;
using Gateway.Json;
using Gateway.Limits;

namespace Gateway.Streaming;

/// <summary>Per-stream state of the SSE relay: what the client asked for, what was counted, and a scratch buffer for split events.</summary>
public sealed class StreamState : IDisposable
{
    private PooledBuffer? _scratch;

    private readonly IRateLimiter? _limiter;
    private readonly RateRequest _rate;
    private long _charged;

    public StreamState(byte[] aliasJson, bool clientIncludeUsage, bool clientContinuousUsage, IRateLimiter? limiter = null, RateRequest rate = default)
    {
        _limiter = limiter;
        _rate = rate;
        AliasJson = aliasJson;
        ClientIncludeUsage = clientIncludeUsage;
        // vLLM sends per-chunk usage only when both are set, so that is what the client may see.
        ClientContinuousUsage = clientIncludeUsage && clientContinuousUsage;
    }

    public byte[] AliasJson { get; }
    public bool ClientIncludeUsage { get; }
    public bool ClientContinuousUsage { get; }

    public long PromptTokens { get; internal set; }
    public long CompletionTokens { get; internal set; }
    public int Events { get; internal set; }
    public bool SawDone { get; internal set; }
    /// <summary><see cref="Stopwatch"/> timestamps of the first and the latest chunk that carried content (0 = none yet).</summary>
    public long FirstContentTimestamp { get; internal set; }
    public long LastContentTimestamp { get; internal set; }
    public int ContentChunks { get; internal set; }

    /// <summary>Clears the counters so one state can relay another stream (benchmarks reuse it).</summary>
    internal void ResetCounters()
    {
        PromptTokens = CompletionTokens = FirstContentTimestamp = LastContentTimestamp = _charged = 0;
        Events = ContentChunks = 0;
        SawDone = false;
        ScanCache.Clear();
    }

    internal PooledBuffer Scratch => _scratch ??= new PooledBuffer(8192);

    /// <summary>The chunk prefix vLLM repeats in every chunk (id … model), so the scanner reads it once per stream.</summary>
    internal ChunkScanCache ScanCache { get; } = new();

    /// <summary>Takes a chunk's cumulative usage; what was not charged yet is charged by <see cref="ChargePending"/>.</summary>
    internal void OnUsage(long promptTokens, long completionTokens)
    {
        PromptTokens = promptTokens;
        CompletionTokens = Math.Max(CompletionTokens, completionTokens);
    }

    /// <summary>Charges the rate limiter with the tokens counted since the last charge (the relay calls it after every read).</summary>
    internal void ChargePending()
    {
        if (_limiter is null) return;
        long delta = PromptTokens + CompletionTokens - _charged;
        if (delta <= 0) return;
        _charged += delta;
        _limiter.ChargeTokens(_rate, delta);
    }

    /// <summary>Tokens charged to the rate limiter so far.</summary>
    public long ChargedTokens => _charged;

    /// <param name="now">The <see cref="Stopwatch"/> timestamp of the read that carried the chunk.</param>
    internal void OnContent(long now)
    {
        if (FirstContentTimestamp == 0) FirstContentTimestamp = now;
        LastContentTimestamp = now;
        ContentChunks++;
    }

    public void Dispose()
    {
        _scratch?.Dispose();
        ScanCache.Dispose();
    }
}

public enum RelayOutcome : byte
{
    /// <summary>The upstream sent <c>[DONE]</c> and the client got everything.</summary>
    Completed,
    /// <summary>The upstream closed the stream without <c>[DONE]</c>; the client got an error event.</summary>
    UpstreamEndedEarly,
    /// <summary>Reading the upstream failed; the client got an error event.</summary>
    UpstreamFailed,
    /// <summary>The client went away; the upstream request must be cancelled.</summary>
    ClientGone,
    /// <summary>The upstream sent nothing within the first-byte or idle timeout; the client got an error event.</summary>
    UpstreamTimedOut,
    /// <summary>The gateway's drain time ran out; the client got an error event.</summary>
    ShuttingDown,
}
