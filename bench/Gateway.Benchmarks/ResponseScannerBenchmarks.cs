using System.Text;
using BenchmarkDotNet.Attributes;
using Gateway.Json;

namespace Gateway.Benchmarks;

/// <summary>
/// The per-chunk scan of the SSE relay (and of a JSON response): one <c>Utf8JsonReader</c> pass. A hand-written byte-level scanner
/// was tried against it (2026-11-25) and was no faster (263 vs 258 ns per token chunk), so the reader stays. Stepping over a whole
/// answer's <c>choices</c> by brackets and quotes (then resuming the reader from a saved state) was tried too (2026-11-26) and was
/// slower: 646 vs 530 ns for the chat response (the reader's own string search is vectorized; a second reader costs its set-up).
/// <see cref="ScanCached"/> is the relay's scan: the chunk starts with the prefix the stream's <see cref="ChunkScanCache"/> remembers
/// (as every vLLM chunk after a stream's first does), so the reader starts after the model value, or, for a token chunk in vLLM's
/// exact shape, is not needed at all (<see cref="VllmChunkShape"/>).
/// </summary>
[MemoryDiagnoser]
public class ResponseScannerBenchmarks
{
    private byte[] _json = [];
    private readonly ChunkScanCache _cache = new();

    [Params("token chunk", "token chunk + usage", "final usage chunk", "chat response")]
    public string Shape { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        const string head = "\"id\":\"chatcmpl-9f8c2b7e4d1a4c3b8e6f5a4d3c2b1a09\",\"object\":\"chat.completion.chunk\",\"created\":1732540000,\"model\":\"Qwen/Qwen2.5-7B-Instruct\"";
        _json = Encoding.UTF8.GetBytes(Shape switch
        {
            "token chunk" => "{" + head + ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" word\"},\"logprobs\":null,\"finish_reason\":null}]}",
            // What the relay gets: it asks vLLM for continuous_usage_stats, so every chunk carries the running usage.
            "token chunk + usage" => "{" + head + ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" word\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":57,\"total_tokens\":77,\"completion_tokens\":20}}",
            "final usage chunk" => "{" + head + ",\"choices\":[],\"usage\":{\"prompt_tokens\":57,\"total_tokens\":77,\"completion_tokens\":20}}",
            _ => "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1732540000,\"model\":\"Qwen/Qwen2.5-7B-Instruct\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"reasoning_content\":null,\"content\":\"" +
                 string.Join(' ', Enumerable.Repeat("word", 200)) + "\",\"tool_calls\":[]},\"logprobs\":null,\"finish_reason\":\"stop\",\"stop_reason\":null}],\"usage\":{\"prompt_tokens\":57,\"total_tokens\":257,\"completion_tokens\":200,\"prompt_tokens_details\":null},\"prompt_logprobs\":null}",
        });
        _cache.Clear();
        ResponseScanner.TryScan(_json, _cache, out _); // the stream's first chunk: a full scan that fills the cache
        if (_cache.PrefixLength == 0) throw new InvalidOperationException("the cache holds no prefix: ScanCached would be a full scan");
    }

    [GlobalCleanup]
    public void Cleanup() => _cache.Dispose();

    [Benchmark(Baseline = true)]
    public int Scan() => ResponseScanner.TryScan(_json, out var scan) ? scan.ModelEnd : -1;

    [Benchmark]
    public int ScanCached() => ResponseScanner.TryScan(_json, _cache, out var scan) ? scan.ModelEnd : -1;
}
