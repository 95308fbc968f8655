using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Gateway.Proxy;
using Gateway.Proxy.Upstream;
using Gateway.Simulation;

namespace Gateway.Benchmarks;

/// <summary>
/// One upstream exchange, as the gateway's forward step does it, through (a) HttpMessageInvoker over SocketsHttpHandler configured
/// by <see cref="UpstreamClient"/> and (b) <see cref="Http1Client"/>: a non-stream JSON request read into a buffer, and a 23-event SSE
/// stream read to its end through a zero-byte-read PipeReader (as the relay reads it), or the client's own BodyReader. Against the vLLM simulator (Kestrel, in this
/// process: its time and allocations are in every row) and against <see cref="StaticUpstream"/> (canned bytes, near-zero cost and
/// zero allocations: the rows are the client). Compare rows within a category.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class UpstreamClientBenchmarks
{
    private VllmSimulator? _simulator;
    private StaticUpstream? _static;
    private UpstreamCalls _calls = null!;
    private readonly CancellationTokenSource _cts = new(); // cancellable, as the gateway's per-request token is

    [Params("simulator", "static")]
    public string Upstream { get; set; } = "static";

    [GlobalSetup]
    public async Task Setup()
    {
        string baseUrl;
        if (Upstream == "simulator")
        {
            _simulator = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Tokens = 20 });
            baseUrl = _simulator.BaseUrl;
        }
        else
        {
            _static = new StaticUpstream();
            baseUrl = _static.BaseUrl;
        }
        _calls = new UpstreamCalls(baseUrl);
        // Both paths must work and read the same bytes before anything is timed.
        if (await JsonSocketsHttpHandler() != await JsonHttp1()) throw new InvalidOperationException("the two clients read different JSON lengths");
        long a = await SseSocketsHttpHandler(), b = await SseHttp1(), c = await SseHttp1Reader();
        if (a != b || a != c) throw new InvalidOperationException($"the clients read different SSE lengths: {a}, {b}, {c}");
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        _calls.Dispose();
        _static?.Dispose();
        if (_simulator is not null) await _simulator.DisposeAsync();
    }

    [Benchmark(Baseline = true), BenchmarkCategory("json")]
    public Task<long> JsonSocketsHttpHandler() => _calls.JsonSocketsAsync(_cts.Token);

    [Benchmark, BenchmarkCategory("json")]
    public Task<long> JsonHttp1() => _calls.JsonHttp1Async(_cts.Token);

    [Benchmark(Baseline = true), BenchmarkCategory("sse")]
    public Task<long> SseSocketsHttpHandler() => _calls.SseSocketsAsync(_cts.Token);

    [Benchmark, BenchmarkCategory("sse")]
    public Task<long> SseHttp1() => _calls.SseHttp1Async(_cts.Token);

    /// <summary>The same through the client's own PipeReader (no StreamPipeReader layer).</summary>
    [Benchmark, BenchmarkCategory("sse")]
    public Task<long> SseHttp1Reader() => _calls.SseHttp1ReaderAsync(_cts.Token);
}
