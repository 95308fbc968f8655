using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using Gateway.Config;
using Gateway.Observability;
using Gateway.Routing;

namespace Gateway.Benchmarks;

/// <summary>
/// Step 11's cost per request: every metric of one finished request (label children cached on the model, so no lookups), and
/// queueing its log line, and formatting that line (on the log thread, but the same process's CPU). Target: under 200 ns and 0 B
/// for the metrics.
/// </summary>
[MemoryDiagnoser]
public class MetricsRecordingBenchmarks
{
    private readonly GatewayMetrics _metrics = new();
    private readonly RequestRecord _json = new();
    private readonly RequestRecord _stream = new();
    private GatewayLog _log = null!;
    private readonly System.Buffers.ArrayBufferWriter<byte> _line = new(1024);
    private LogLine _logLine;

    [GlobalSetup]
    public void Setup()
    {
        var model = ModelEntry.Create(new ModelConfig
        {
            Name = "qwen", ModelId = "Qwen/Qwen2.5-7B-Instruct", Backends = [new BackendConfig { Url = "http://127.0.0.1:8000" }],
        }, 0, null);
        _metrics.Attach(new Snapshot([model], [], 1));
        _log = new GatewayLog("info", "json", Stream.Null, _metrics.LogLinesDropped);
        long f = Stopwatch.Frequency;
        foreach (var r in new[] { _json, _stream })
        {
            r.Reset(Stopwatch.GetTimestamp());
            r.Model = model;
            r.Backend = model.Backends[0];
            r.Status = 200;
            r.OverheadRoute = _metrics.OverheadChat;
            r.UpstreamTicks = f / 10;
            r.HasUsage = true;
            r.PromptTokens = 1500;
            r.CompletionTokens = 200;
            r.RequestId = "0123456789abcdef0123456789abcdef";
            r.Method = "POST";
            r.Path = "/v1/chat/completions";
            r.KeyPrefix = "ml-abcdefgh";
        }
        _logLine = new LogLine
        {
            Timestamp = DateTime.UtcNow, Level = LogLevel.Info, Msg = "request", IsRequest = true, RequestId = _json.RequestId, Method = "POST",
            Path = "/v1/chat/completions", Status = 200, DurationMs = 212.3456, OverheadMs = 0.0871, Model = "qwen",
            BackendUrl = "http://127.0.0.1:8000", KeyPrefix = "ml-abcdefgh", PromptTokens = 1500, CompletionTokens = 200,
        };
        _stream.Streaming = true;
        _stream.FirstContent = _stream.Start + f / 5;
        _stream.LastContent = _stream.FirstContent + f * 4;
        _stream.ContentChunks = 200;
    }

    [GlobalCleanup]
    public void Cleanup() => _log.DisposeAsync().AsTask().GetAwaiter().GetResult();

    [Benchmark(Baseline = true)]
    public void RecordNonStream() => _metrics.Record(_json, _json.Start + Stopwatch.Frequency / 5);

    [Benchmark]
    public void RecordStream() => _metrics.Record(_stream, _stream.LastContent + 1000);

    [Benchmark]
    public void QueueLogLine() => _log.Request(_json, _json.Start + Stopwatch.Frequency / 5);

    [Benchmark]
    public int FormatLogLine()
    {
        _line.ResetWrittenCount();
        LogFormat.WriteJson(_logLine, _line);
        return _line.WrittenCount;
    }
}
