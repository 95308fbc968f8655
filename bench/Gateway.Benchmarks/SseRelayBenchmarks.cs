using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using BenchmarkDotNet.Attributes;
using Gateway.Streaming;

namespace Gateway.Benchmarks;

/// <summary>
/// The SSE relay over a 23-event vLLM chat stream (role chunk, 20 tokens, finish, usage) plus [DONE], without sockets: a replayed
/// upstream and a discarding client pipe. Reported per event (OperationsPerInvoke), so "Allocated" is bytes per event.
/// The relay runs as in production, with its upstream watchdog started (first-byte and idle timeouts armed).
/// </summary>
[MemoryDiagnoser]
public class SseRelayBenchmarks
{
    private const int EventsPerStream = 24;
    private ReplayPipeReader _upstream = null!;
    private readonly DiscardPipeWriter _client = new();
    private StreamState _state = null!;
    private readonly UpstreamWatchdog _watchdog = new();
    private readonly CancellationTokenSource _reads = new();

    [Params(false, true)]
    public bool ClientWantsUsage { get; set; }

    [Params(int.MaxValue, 64)]
    public int ReadSize { get; set; }

    /// <summary>
    /// True: TryRead finds nothing, so every read goes through ReadAsync as on a socket between tokens (the path where the relay
    /// arms its upstream timeouts). False: TryRead always has data, as when the upstream is far ahead of the client.
    /// </summary>
    [Params(false, true)]
    public bool ReadsWait { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _upstream = new ReplayPipeReader(Encoding.UTF8.GetBytes(VllmChatStream(20)), ReadSize) { ReadsWait = ReadsWait };
        _state = new StreamState("\"qwen\""u8.ToArray(), ClientWantsUsage, ClientWantsUsage);
        _watchdog.Start(_reads, TimeSpan.FromSeconds(300), TimeSpan.FromSeconds(120), CancellationToken.None);
    }

    [GlobalCleanup]
    public void Cleanup() => _watchdog.Stop();

    internal static string VllmChatStream(int tokens)
    {
        var sb = new StringBuilder();
        const string head = "{\"id\":\"chatcmpl-9f8c2b7e4d1a4c3b8e6f5a4d3c2b1a09\",\"object\":\"chat.completion.chunk\",\"created\":1732540000,\"model\":\"Qwen/Qwen2.5-7B-Instruct\"";
        string Usage(int c) => $",\"usage\":{{\"prompt_tokens\":57,\"total_tokens\":{57 + c},\"completion_tokens\":{c}}}";
        sb.Append("data: ").Append(head).Append(",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]").Append(Usage(0)).Append("}\n\n");
        for (int i = 1; i <= tokens; i++)
            sb.Append("data: ").Append(head).Append(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" word").Append(i).Append("\"},\"logprobs\":null,\"finish_reason\":null}]").Append(Usage(i)).Append("}\n\n");
        sb.Append("data: ").Append(head).Append(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"logprobs\":null,\"finish_reason\":\"stop\",\"stop_reason\":null}]").Append(Usage(tokens)).Append("}\n\n");
        sb.Append("data: ").Append(head).Append(",\"choices\":[]").Append(Usage(tokens)).Append("}\n\n");
        sb.Append("data: [DONE]\n\n");
        return sb.ToString();
    }

    [Benchmark(OperationsPerInvoke = EventsPerStream)]
    public async ValueTask<RelayOutcome> RelayPerEvent()
    {
        _upstream.Reset();
        _state.ResetCounters();
        var outcome = await SseRelay.RunAsync(_upstream, _client, _state, CancellationToken.None, _watchdog);
        if (outcome != RelayOutcome.Completed) throw new InvalidOperationException(outcome.ToString());
        return outcome;
    }
}

/// <summary>Replays one byte array as an upstream, <c>readSize</c> bytes at a time; reusable, so the benchmark allocates nothing.</summary>
internal sealed class ReplayPipeReader(byte[] data, int readSize) : PipeReader
{
    private int _consumed, _available;

    /// <summary>TryRead reports nothing buffered, so the caller takes the ReadAsync path (which still completes synchronously).</summary>
    public bool ReadsWait { get; init; }

    public void Reset() { _consumed = 0; _available = 0; }

    public override bool TryRead(out ReadResult result)
    {
        if (ReadsWait) { result = default; return false; }
        return Next(out result);
    }

    private bool Next(out ReadResult result)
    {
        _available = Math.Min(data.Length, Math.Max(_available, _consumed) + Math.Min(readSize, data.Length));
        var seq = new ReadOnlySequence<byte>(data, _consumed, _available - _consumed);
        result = new ReadResult(seq, isCanceled: false, isCompleted: _available == data.Length);
        return true;
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        Next(out var result);
        return new ValueTask<ReadResult>(result);
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);
    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => _consumed = consumed.GetInteger();
    public override void CancelPendingRead() { }
    public override void Complete(Exception? exception = null) { }
}

/// <summary>A client pipe that accepts and forgets everything, from one reused buffer.</summary>
internal sealed class DiscardPipeWriter : PipeWriter
{
    private readonly byte[] _buffer = new byte[64 * 1024];
    public long Written;

    public override void Advance(int bytes) => Written += bytes;
    public override Memory<byte> GetMemory(int sizeHint = 0) => _buffer;
    public override Span<byte> GetSpan(int sizeHint = 0) => _buffer;
    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => new(new FlushResult(false, false));
    public override void CancelPendingFlush() { }
    public override void Complete(Exception? exception = null) { }
}
