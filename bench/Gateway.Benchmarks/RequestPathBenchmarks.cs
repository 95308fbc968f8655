using System.Text;
using BenchmarkDotNet.Attributes;
using Gateway.Config;
using Gateway.Json;
using Gateway.Routing;

namespace Gateway.Benchmarks;

/// <summary>Steps 4 and 7 of the request path: one scan of the client body and the splice into the upstream body.</summary>
[MemoryDiagnoser]
public class RequestPathBenchmarks
{
    private byte[] _body = [];
    private readonly RequestScan _scan = new();
    private readonly PooledBuffer _output = new(256 * 1024);
    private ModelEntry _model = null!;

    [Params(1024, 100 * 1024)]
    public int BodyBytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _model = ModelEntry.Create(new ModelConfig
        {
            Name = "qwen", ModelId = "Qwen/Qwen2.5-7B-Instruct", EnableThinking = false, SystemPromptPrefix = "You are terse.",
            DefaultParams = [new("temperature", "0.7"), new("max_tokens", "512")],
            Backends = [new BackendConfig { Url = "http://127.0.0.1:8000" }],
        }, 0, null);
        _body = ChatBody(BodyBytes);
    }

    /// <summary>A realistic chat body: a system message, alternating turns, stream on, padded to the target size.</summary>
    internal static byte[] ChatBody(int size)
    {
        var sb = new StringBuilder("{\"model\":\"qwen\",\"stream\":true,\"top_p\":0.9,\"messages\":[{\"role\":\"system\",\"content\":\"You answer questions about the weather.\"}");
        int turn = 0;
        while (sb.Length < size - 200)
        {
            var role = turn++ % 2 == 0 ? "user" : "assistant";
            sb.Append(",{\"role\":\"").Append(role).Append("\",\"content\":\"")
              .Append("What is the forecast for tomorrow in Lisbon, and should I bring an umbrella? \\\"quoted\\\" text.")
              .Append("\"}");
        }
        sb.Append("],\"max_completion_tokens\":256}");
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    [Benchmark]
    public int ScanAndSplice()
    {
        if (RequestScanner.Scan(_body, _scan) is not null) throw new InvalidOperationException("scan failed");
        BodySplicer.Splice(_body, _scan, _model, Gateway.Proxy.ProxyEndpoint.ChatCompletions, _output);
        return _output.Length;
    }

    [Benchmark]
    public int ScanOnly() => RequestScanner.Scan(_body, _scan) is null ? _scan.ObjectEnd : -1;
}
