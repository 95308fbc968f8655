using System.Net.Http.Headers;
using System.Text;
using BenchmarkDotNet.Attributes;
using Gateway.Auth;
using Gateway.Config;
using Gateway.Http;
using Gateway.Simulation;

namespace Gateway.Benchmarks;

/// <summary>
/// One request from an HttpClient through the real gateway (Kestrel, auth, scan, splice, forward, relay) to the built-in simulator,
/// all in this process over loopback. Allocations are the whole process's: client, gateway and simulator together; compare the
/// Direct row (client → simulator) to see what the gateway adds.
/// </summary>
[MemoryDiagnoser]
public class EndToEndBenchmarks
{
    private static readonly string Key = ApiKey.Generate();
    private VllmSimulator _simulator = null!;
    private GatewayHost _gateway = null!;
    private HttpClient _client = null!;
    private Uri _gatewayChat = null!, _directChat = null!;
    private byte[] _gatewayBody = [], _directBody = [];

    /// <summary>What carries the gateway's requests to the simulator (proxy.upstream_client).</summary>
    [Params(UpstreamClientKind.Http1, UpstreamClientKind.Sockets)]
    public UpstreamClientKind Upstream { get; set; }

    /// <summary>What carries Kestrel's connections (server.transport): the gateway's own epoll loops, or Kestrel's socket transport.</summary>
    [Params(ServerTransport.Loop, ServerTransport.Sockets)]
    public ServerTransport Transport { get; set; }

    [GlobalSetup]
    public async Task Setup()
    {
        _simulator = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Tokens = 16 });
        _gateway = new GatewayHost(new GatewayOptions
        {
            Server = new ServerOptions { Host = "127.0.0.1", Port = 0, Transport = Transport },
            Proxy = new ProxyOptions { UpstreamClient = Upstream },
            Models = [new ModelConfig { Name = "qwen", ModelId = "Qwen/Qwen2.5-7B-Instruct", Backends = [new BackendConfig { Url = _simulator.BaseUrl }] }],
            // Limits checked and charged on every request, as in production, but high enough never to refuse (the default 60 RPM
            // would turn the benchmark into a 429 loop).
            Keys = [new KeyConfig { Name = "bench", KeyHashHex = ApiKey.HashHex(Key), RpmLimit = 1_000_000_000, TpmLimit = 1_000_000_000_000 }],
        }, logSink: Stream.Null); // request log lines would flood BenchmarkDotNet's output
        await _gateway.StartAsync();
        _client = new HttpClient(new SocketsHttpHandler { UseProxy = false });
        _client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        _gatewayChat = new Uri($"http://127.0.0.1:{_gateway.Port}/v1/chat/completions");
        _directChat = new Uri(_simulator.BaseUrl + "/v1/chat/completions");
        _gatewayBody = Encoding.UTF8.GetBytes("{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello! How are you today?\"}],\"max_tokens\":16}");
        _directBody = Encoding.UTF8.GetBytes("{\"model\":\"Qwen/Qwen2.5-7B-Instruct\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello! How are you today?\"}],\"max_tokens\":16}");
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        _client.Dispose();
        await _gateway.DisposeAsync();
        await _simulator.DisposeAsync();
    }

    private async Task<int> Post(Uri uri, byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await _client.PostAsync(uri, content);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException(Encoding.UTF8.GetString(bytes));
        return bytes.Length;
    }

    [Benchmark(Baseline = true)]
    public Task<int> Direct() => Post(_directChat, _directBody);

    [Benchmark]
    public Task<int> ThroughGateway() => Post(_gatewayChat, _gatewayBody);
}
