using System.Text;
using Gateway.Json;
using Xunit.Abstractions;

namespace Gateway.Tests.Json;

/// <summary>
/// The cached scan must be the full scan, field for field, whatever the chunk: every test scans each chunk both ways, in stream order
/// with one cache, and compares the results (the return value too).
/// </summary>
public sealed class ChunkScanCacheTests(ITestOutputHelper output)
{
    private const string Head = "\"id\":\"chatcmpl-9f8c2b7e4d1a4c3b8e6f5a4d3c2b1a09\",\"object\":\"chat.completion.chunk\",\"created\":1732560000,\"model\":\"Qwen/Qwen2.5-7B-Instruct\"";
    private const string CompletionHead = "\"id\":\"cmpl-5e1f\",\"object\":\"text_completion\",\"created\":1732560000,\"model\":\"Qwen/Qwen2.5-7B-Instruct\"";

    private static string Usage(int completion) => $"\"usage\":{{\"prompt_tokens\":57,\"total_tokens\":{57 + completion},\"completion_tokens\":{completion}}}";

    private static string Delta(string delta, string finish = "null") =>
        $"\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]";

    /// <summary>A vLLM chat stream as the relay asks for it (include_usage + continuous_usage_stats) or without usage.</summary>
    private static string[] ChatStream(int tokens, bool usage, string head = Head)
    {
        var chunks = new List<string> { "{" + head + "," + Delta("{\"role\":\"assistant\",\"content\":\"\"}") + (usage ? "," + Usage(0) : "") + "}" };
        for (int i = 1; i <= tokens; i++)
            chunks.Add("{" + head + "," + Delta($"{{\"content\":\" word{i}\"}}") + (usage ? "," + Usage(i) : "") + "}");
        chunks.Add("{" + head + "," + Delta("{\"content\":\"\"}", "\"stop\"") + (usage ? "," + Usage(tokens) : "") + "}");
        if (usage) chunks.Add("{" + head + ",\"choices\":[]," + Usage(tokens) + "}");
        return [.. chunks];
    }

    private static string[] CompletionStream(int tokens, bool usage)
    {
        var chunks = new List<string>();
        for (int i = 1; i <= tokens; i++)
            chunks.Add("{" + CompletionHead + $",\"choices\":[{{\"index\":0,\"text\":\" t{i}\",\"logprobs\":null,\"finish_reason\":null,\"stop_reason\":null}}]" + (usage ? "," + Usage(i) : "") + "}");
        chunks.Add("{" + CompletionHead + ",\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"length\",\"stop_reason\":null}]" + (usage ? "," + Usage(tokens) : "") + "}");
        if (usage) chunks.Add("{" + CompletionHead + ",\"choices\":[]," + Usage(tokens) + "}");
        return [.. chunks];
    }

    /// <summary>Usage as the member right after the model (another server's order): the cut then starts at the model's end.</summary>
    private static string[] UsageFirstAfterModelStream(int tokens)
    {
        var chunks = new List<string>();
        for (int i = 1; i <= tokens; i++) chunks.Add("{" + Head + "," + Usage(i) + "," + Delta($"{{\"content\":\" u{i}\"}}") + "}");
        chunks.Add("{" + Head + "," + Usage(tokens) + "}");
        chunks.Add("{" + Head + "," + Usage(tokens) + ",\"choices\":[]}");
        return [.. chunks];
    }

    public static TheoryData<string, string[]> Sequences()
    {
        const string escapedHead = "\"id\":\"chatcmpl-\\u0041\\\"b\\\\\",\"object\":\"chat.completion.chunk\",\"created\":1732560000,\"model\":\"Qwen\\/Qwen2.5-\\u00e9\"";
        const string otherId = "\"id\":\"chatcmpl-other\",\"object\":\"chat.completion.chunk\",\"created\":1732560000,\"model\":\"Qwen/Qwen2.5-7B-Instruct\"";
        const string otherModel = "\"id\":\"chatcmpl-9f8c2b7e4d1a4c3b8e6f5a4d3c2b1a09\",\"object\":\"chat.completion.chunk\",\"created\":1732560000,\"model\":\"Qwen/Qwen2.5-7B\"";
        var chat = ChatStream(3, usage: true);
        return new TheoryData<string, string[]>
        {
            { "chat with usage", chat },
            { "chat without usage", ChatStream(3, usage: false) },
            { "usage right after model", UsageFirstAfterModelStream(3) },
            { "completions with usage", CompletionStream(3, usage: true) },
            { "completions without usage", CompletionStream(3, usage: false) },
            { "escaped strings", [
                .. ChatStream(2, usage: true, escapedHead),
                "{" + escapedHead + "," + Delta("{\"content\":\"\\\"quoted\\\"\\n\\u00e9\"}") + "," + Usage(3) + "}" ] },
            { "prefix differs: id, then model, then back", [
                chat[0], chat[1],
                "{" + otherId + "," + Delta("{\"content\":\" x\"}") + "," + Usage(2) + "}",
                chat[2],
                "{" + otherModel + "," + Delta("{\"content\":\" y\"}") + "," + Usage(3) + "}",
                "{" + otherModel + "," + Delta("{\"content\":\" z\"}") + "," + Usage(4) + "}",
                chat[3], chat[4] ] },
            { "chunks that are not JSON or not whole", [
                chat[0], "not json", chat[1], "", chat[2], "[1,2]", "{" + Head, "{" + Head + "}", "{" + Head + " }", "{" + Head + ",",
                "{" + Head + ",}", "{" + Head + "," + Delta("{\"content\":\" w\"}"), "{" + Head + "}}", "{" + Head + "} {}", "{" + Head[..^3],
                "{" + Head + ",\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":1", chat[3] ] },
            { "usage before model", [
                "{" + Usage(1) + "," + Head + "," + Delta("{\"content\":\" a\"}") + "}",
                "{" + Usage(1) + "," + Head + "," + Delta("{\"content\":\" b\"}") + "}",
                "{" + Usage(2) + "," + Head + "," + Delta("{\"content\":\" c\"}") + "}",
                "{" + Usage(2) + "," + Head + ",\"choices\":[]}",
                "{\"id\":\"x\"," + Usage(2) + ",\"model\":\"m\",\"choices\":[]}",
                "{\"id\":\"x\"," + Usage(2) + ",\"model\":\"m\",\"choices\":[]," + Usage(3) + "}" ] },
            { "choices before model", [
                "{" + Delta("{\"content\":\" a\"}") + "," + Head + "," + Usage(1) + "}",
                "{" + Delta("{\"content\":\" a\"}") + "," + Head + "," + Usage(2) + "}",
                "{\"choices\":[]," + Head + "," + Usage(2) + "}" ] },
            { "model first, last, repeated, not a string", [
                "{\"model\":\"m\",\"choices\":[]," + Usage(1) + "}",
                "{\"model\":\"m\",\"choices\":[]," + Usage(2) + "}",
                "{\"model\":\"m\"," + Usage(2) + ",\"model\":\"n\"}",
                "{\"model\":\"m\"," + Usage(2) + ",\"model\":\"n\"}",
                "{\"model\":\"m\"}", "{\"model\":\"m\"}",
                "{\"model\":null,\"choices\":[]}", "{\"model\":null,\"choices\":[]}",
                "{\"model\":null,\"model\":\"m\",\"choices\":[]}", "{\"model\":null,\"model\":\"m\",\"choices\":[1]}",
                "{\"id\":\"a\"," + Usage(1) + "}", "{\"id\":\"a\",\"model\":{\"x\":1}," + Usage(1) + "}" ] },
            { "whitespace around members", [
                "{ \"id\" : \"a\" ,\n \"model\" : \"m\" , \"choices\" : [ ] , " + Usage(1) + " }",
                "{ \"id\" : \"a\" ,\n \"model\" : \"m\" , \"choices\" : [ {\"text\":\"t\"} ] ,\r\n " + Usage(2) + " }",
                "{ \"id\" : \"a\" ,\n \"model\" : \"m\"" + Usage(2) + " }",
                "{ \"id\" : \"a\" ,\n \"model\" : \"m\"  ,  \"usage\":null}" ] },
        };
    }

    [Theory]
    [MemberData(nameof(Sequences))]
    public void Cached_scan_equals_the_full_scan(string name, string[] chunks)
    {
        using var cache = new ChunkScanCache();
        int hits = 0;
        foreach (var chunk in chunks)
            if (ScanBothWays(Encoding.UTF8.GetBytes(chunk), cache, name)) hits++;
        // Every sequence repeats a chunk prefix somewhere, so the cached path must have run: equal results alone could mean it never did.
        Assert.True(hits > 0, $"{name}: no chunk resumed from the cache");
    }

    [Fact]
    public void Every_chunk_after_the_first_of_a_vllm_stream_resumes()
    {
        using var cache = new ChunkScanCache();
        var chunks = ChatStream(20, usage: true);
        Assert.False(ScanBothWays(Encoding.UTF8.GetBytes(chunks[0]), cache, "first"));
        Assert.Equal(Encoding.UTF8.GetByteCount("{" + Head), cache.PrefixLength);
        foreach (var chunk in chunks[1..]) Assert.True(ScanBothWays(Encoding.UTF8.GetBytes(chunk), cache, chunk));
    }

    [Fact]
    public void Token_chunks_of_vllm_streams_match_the_shape_without_the_reader()
    {
        foreach (var stream in new[] { ChatStream(8, usage: true), ChatStream(8, usage: false), CompletionStream(8, usage: true), CompletionStream(8, usage: false) })
        {
            using var cache = new ChunkScanCache();
            ScanBothWays(Encoding.UTF8.GetBytes(stream[0]), cache, "first");
            int matched = 0;
            foreach (var chunk in stream[1..])
            {
                var bytes = Encoding.UTF8.GetBytes(chunk);
                Assert.True(ScanBothWays(bytes, cache, chunk));
                if (MatchesShape(bytes, cache)) matched++;
            }
            // Every token chunk after the first chunk, and the final usage-only chunk where there is one; the finish chunk's middle differs.
            int expected = stream[1..].Count(c => c.Contains("\"finish_reason\":null") && !c.Contains("\"role\"") || c.Contains("\"choices\":[]"));
            Assert.True(expected >= 7);
            Assert.Equal(expected, matched);
        }
    }

    /// <summary>Chunks whose bytes after the prefix are near vLLM's shape but not it: the shape declines and the reader decides.</summary>
    [Theory]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" a\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":01,\"total_tokens\":2,\"completion_tokens\":1}}")]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" a\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":1.5,\"total_tokens\":2,\"completion_tokens\":1}}")]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" a\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":1,\"total_tokens\":2e1,\"completion_tokens\":1}}")]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" a\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":-1,\"total_tokens\":2,\"completion_tokens\":1}}")]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" a\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":1234567890123456789,\"total_tokens\":2,\"completion_tokens\":1}}")]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" a\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":1,\"total_tokens\":2,\"completion_tokens\":1}} ")]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" a\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":1,\"total_tokens\":2,\"completion_tokens\":1}")]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" a\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":1,\"total_tokens\":2,\"completion_tokens\":1}}}")]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" a\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}")]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" \\x\"},\"logprobs\":null,\"finish_reason\":null}]}")]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" \\u12G4\"},\"logprobs\":null,\"finish_reason\":null}]}")]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" \u0001\"},\"logprobs\":null,\"finish_reason\":null}]}")]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" a},\"logprobs\":null,\"finish_reason\":null}]}")]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":null},\"logprobs\":null,\"finish_reason\":null}]}")]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" a\"},\"logprobs\":null,\"finish_reason\":null}] }")]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" a\"},\"logprobs\":null,\"finish_reason\":null},{\"index\":1}]}")]
    [InlineData(",\"choices\":[]}")]
    [InlineData(",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"total_tokens\":2,\"completion_tokens\":1},\"x\":1}")]
    // Counts no model server can have made (over ResponseScanner.MaxTokenCount): the reader's path leaves them out.
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":123456789012345678,\"total_tokens\":1,\"completion_tokens\":999999999999999999}}")]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" a\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":1,\"total_tokens\":2,\"completion_tokens\":1000000001}}")]
    public void Near_misses_are_left_to_the_reader(string rest) => AssertAfterPrefix(rest, shape: false);

    /// <summary>Escaped and non-ASCII tokens and zero usage are the shape too, with the full scan's findings.</summary>
    [Theory]
    [InlineData(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\\"q\\\" \\n \\u00e9 \\ud83d\\ude00 \u00e9\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":0,\"total_tokens\":0,\"completion_tokens\":0}}")]
    [InlineData(",\"choices\":[{\"index\":0,\"text\":\"}]\\\\\",\"logprobs\":null,\"finish_reason\":null,\"stop_reason\":null}]}")]
    [InlineData(",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"total_tokens\":9,\"completion_tokens\":2}}")]
    public void Unusual_but_exact_chunks_match_the_shape(string rest) => AssertAfterPrefix(rest, shape: true);

    /// <summary>
    /// The chunk "{" + Head + <paramref name="rest"/> after a stream's first chunk: it resumes from the cache, takes the shape path
    /// exactly when <paramref name="shape"/> says, and scans as the full scan does.
    /// </summary>
    private static void AssertAfterPrefix(string rest, bool shape)
    {
        using var cache = new ChunkScanCache();
        ScanBothWays(Encoding.UTF8.GetBytes(ChatStream(1, usage: true)[0]), cache, "first");
        var chunk = Encoding.UTF8.GetBytes("{" + Head + rest);
        Assert.Equal(shape, MatchesShape(chunk, cache));
        Assert.True(ScanBothWays(chunk, cache, rest)); // resumed, and equal to the full scan
    }

    /// <summary>Whether the chunk resumes from the cache and its remainder is vLLM's token-chunk shape (the relay's fast path).</summary>
    private static bool MatchesShape(byte[] chunk, ChunkScanCache cache)
    {
        var scan = new ResponseScan { ModelStart = -1, ModelEnd = -1, UsageCutStart = -1, UsageCutEnd = -1 };
        return cache.TryResume(chunk, ref scan, out _) && VllmChunkShape.TryMatch(chunk.AsSpan(cache.PrefixLength), cache.PrefixLength, ref scan);
    }

    [Fact]
    public void A_prefix_longer_than_the_limit_is_not_remembered()
    {
        using var cache = new ChunkScanCache();
        var longHead = "{\"id\":\"" + new string('x', ChunkScanCache.MaxPrefix) + "\",\"model\":\"m\",\"choices\":[]}";
        ScanBothWays(Encoding.UTF8.GetBytes(ChatStream(1, true)[0]), cache, "short");
        Assert.True(cache.PrefixLength > 0);
        Assert.False(ScanBothWays(Encoding.UTF8.GetBytes(longHead), cache, "long"));
        Assert.Equal(0, cache.PrefixLength);
        Assert.False(ScanBothWays(Encoding.UTF8.GetBytes(longHead), cache, "long again"));
    }

    [Fact]
    public void Clear_and_dispose_forget_the_prefix()
    {
        var cache = new ChunkScanCache();
        var chunk = Encoding.UTF8.GetBytes(ChatStream(1, true)[1]);
        ScanBothWays(chunk, cache, "fill");
        Assert.True(ScanBothWays(chunk, cache, "hit"));
        cache.Clear();
        Assert.False(ScanBothWays(chunk, cache, "after clear"));
        Assert.True(ScanBothWays(chunk, cache, "refilled"));
        cache.Dispose();
        Assert.Equal(0, cache.PrefixLength);
        Assert.False(ScanBothWays(chunk, cache, "after dispose")); // usable again: it rents a new buffer
        Assert.True(ScanBothWays(chunk, cache, "refilled after dispose"));
        cache.Dispose();
    }

    /// <summary>
    /// Differential: real streams whose chunks are mutated at random (bytes replaced, inserted, deleted, chunks cut short), mostly after
    /// the prefix so that the cached path reads broken or unusual remainders, sometimes inside it so that it must miss.
    /// </summary>
    [Fact]
    public void Cached_scan_equals_the_full_scan_on_mutated_streams()
    {
        var random = new Random(20261125);
        var streams = new[] { ChatStream(6, true), ChatStream(6, false), CompletionStream(6, true), CompletionStream(4, false), UsageFirstAfterModelStream(5) };
        var alphabet = "{}[]\":,\\ \n0123456789.-+eEtrufalsn\u00e9"u8.ToArray();
        int cases = 0, hits = 0, misses = 0, failedScans = 0, hitsOnFailedScans = 0, shapeMatches = 0;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        for (; cases < 4000 && DateTime.UtcNow < deadline; cases++)
        {
            var stream = streams[random.Next(streams.Length)];
            using var cache = new ChunkScanCache();
            for (int c = 0; c < stream.Length; c++)
            {
                var chunk = Encoding.UTF8.GetBytes(stream[c]);
                // The first chunk is mostly left whole, as it fills the cache; later chunks are mostly mutated.
                if (random.Next(c == 0 ? 5 : 4) != 0) chunk = Mutate(chunk, random, alphabet, Encoding.UTF8.GetByteCount("{" + Head));
                if (MatchesShape(chunk, cache)) shapeMatches++;
                bool hit = ScanBothWays(chunk, cache, $"case {cases}, chunk {c}", out bool ok);
                if (hit) hits++; else misses++;
                if (!ok) { failedScans++; if (hit) hitsOnFailedScans++; }
            }
        }
        output.WriteLine($"cases {cases}, hits {hits}, misses {misses}, failed scans {failedScans}, of them resumed {hitsOnFailedScans}, shape matches {shapeMatches}");
        Assert.True(cases >= 1000, $"only {cases} cases ran");
        // The mix must exercise both paths, the cached path on chunks the scanner rejects, and the shape path (unmutated token chunks).
        Assert.True(hits > cases && misses > cases && hitsOnFailedScans > cases / 4 && shapeMatches > cases / 2,
            $"cases {cases}, hits {hits}, misses {misses}, failed scans {failedScans}, of them resumed {hitsOnFailedScans}, shape matches {shapeMatches}");
    }

    private static byte[] Mutate(byte[] chunk, Random random, byte[] alphabet, int prefixLength)
    {
        var bytes = new List<byte>(chunk);
        int edits = 1 + random.Next(3);
        for (int e = 0; e < edits && bytes.Count > 0; e++)
        {
            // One edit in six lands anywhere (the prefix included); the rest after the prefix, where the cached path reads.
            int from = random.Next(6) == 0 ? 0 : Math.Min(prefixLength, bytes.Count - 1);
            int at = from + random.Next(bytes.Count - from);
            byte b = random.Next(8) == 0 ? (byte)random.Next(256) : alphabet[random.Next(alphabet.Length)];
            switch (random.Next(4))
            {
                case 0: bytes[at] = b; break;
                case 1: bytes.Insert(at, b); break;
                case 2: bytes.RemoveAt(at); break;
                default: bytes.RemoveRange(at, bytes.Count - at); break;
            }
        }
        return [.. bytes];
    }

    private static bool ScanBothWays(byte[] chunk, ChunkScanCache cache, string what) => ScanBothWays(chunk, cache, what, out _);

    /// <summary>Scans <paramref name="chunk"/> without and with <paramref name="cache"/>, asserts equal results, and says whether the cached scan resumed.</summary>
    private static bool ScanBothWays(byte[] chunk, ChunkScanCache cache, string what, out bool ok)
    {
        var probe = new ResponseScan();
        bool resumes = cache.TryResume(chunk, ref probe, out _);
        ok = ResponseScanner.TryScan(chunk, out var expected);
        bool cachedOk = ResponseScanner.TryScan(chunk, cache, out var actual);
        if (ok != cachedOk || !Same(expected, actual))
            Assert.Fail($"{what} (resumed: {resumes}): {Encoding.UTF8.GetString(chunk)}\n full: {ok} {Show(expected)}\n cached: {cachedOk} {Show(actual)}");
        return resumes;
    }

    private static bool Same(ResponseScan a, ResponseScan b) =>
        a.ModelStart == b.ModelStart && a.ModelEnd == b.ModelEnd && a.UsageCutStart == b.UsageCutStart && a.UsageCutEnd == b.UsageCutEnd
        && a.HasUsage == b.HasUsage && a.PromptTokens == b.PromptTokens && a.CompletionTokens == b.CompletionTokens
        && a.ChoicesEmpty == b.ChoicesEmpty && a.HasContent == b.HasContent;

    private static string Show(ResponseScan s) =>
        $"model [{s.ModelStart},{s.ModelEnd}) usage cut [{s.UsageCutStart},{s.UsageCutEnd}) usage {s.HasUsage} {s.PromptTokens}/{s.CompletionTokens} "
        + $"choices empty {s.ChoicesEmpty} content {s.HasContent}";
}
