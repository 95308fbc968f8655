using System.Text;
using Gateway.Json;

namespace Gateway.Tests.Json;

public sealed class ResponseRewriterTests
{
    private static string Rewrite(string json, bool stripUsage, out ResponseScan scan)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        Assert.True(ResponseScanner.TryScan(bytes, out scan));
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        ResponseRewriter.Write(bytes, scan, "\"qwen\""u8, stripUsage, output);
        return Encoding.UTF8.GetString(output.WrittenSpan);
    }

    [Fact]
    public void Rewrites_the_top_level_model_and_reads_usage()
    {
        var json = "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"Qwen/Q\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"model\"}}],\"usage\":{\"prompt_tokens\":10,\"total_tokens\":30,\"completion_tokens\":20}}";
        var output = Rewrite(json, stripUsage: false, out var scan);
        Assert.Equal(json.Replace("\"Qwen/Q\"", "\"qwen\""), output);
        Assert.Equal(10, scan.PromptTokens);
        Assert.Equal(20, scan.CompletionTokens);
    }

    [Fact]
    public void A_nested_model_key_is_left_alone()
    {
        var json = "{\"data\":[{\"model\":\"inner\"}],\"model\":\"outer\"}";
        Assert.Equal("{\"data\":[{\"model\":\"inner\"}],\"model\":\"qwen\"}", Rewrite(json, false, out _));
    }

    [Theory]
    [InlineData("{\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":1}}", "{\"model\":\"qwen\",\"choices\":[]}")]
    [InlineData("{\"usage\":{\"prompt_tokens\":1},\"model\":\"m\"}", "{\"model\":\"qwen\"}")]
    [InlineData("{ \"usage\" : null , \"a\":1}", "{ \"a\":1}")]
    [InlineData("{\"usage\":{}}", "{}")]
    [InlineData("{\"a\":1,\"usage\":{},\"b\":2}", "{\"a\":1,\"b\":2}")]
    public void Cuts_usage_when_asked_and_stays_valid_json(string json, string expected)
    {
        var output = Rewrite(json, stripUsage: true, out var scan);
        Assert.Equal(expected, output);
        Assert.True(scan.UsageCutStart >= 0);
        using var doc = System.Text.Json.JsonDocument.Parse(output);
    }

    [Theory]
    [InlineData("-1000000", "-9223372036854775808")] // summed, these wrapped into ~9.2e18 charged tokens
    [InlineData("1000000001", "5")]
    [InlineData("5", "99999999999999999")]
    public void Usage_a_model_server_cannot_have_counted_is_left_out(string prompt, string completion)
    {
        var json = $"{{\"model\":\"m\",\"choices\":[],\"usage\":{{\"prompt_tokens\":{prompt},\"total_tokens\":1,\"completion_tokens\":{completion}}}}}";
        Assert.True(ResponseScanner.TryScan(Encoding.UTF8.GetBytes(json), out var scan));
        Assert.True(scan.PromptTokens is >= 0 and <= ResponseScanner.MaxTokenCount);
        Assert.True(scan.CompletionTokens is >= 0 and <= ResponseScanner.MaxTokenCount);
        Assert.Equal(prompt.StartsWith('-') || prompt.Length > 9 ? 0 : long.Parse(prompt), scan.PromptTokens);
        Assert.Equal(completion.StartsWith('-') || completion.Length > 9 ? 0 : long.Parse(completion), scan.CompletionTokens);
    }

    [Theory]
    [InlineData("[1,2]")]
    [InlineData("not json")]
    [InlineData("{\"model\":")]
    public void Non_objects_are_not_scanned(string json) =>
        Assert.False(ResponseScanner.TryScan(Encoding.UTF8.GetBytes(json), out _));

    [Theory]
    [InlineData("{\"id\":\"c\",\"model\":\"Qwen/Q\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"\\\"usage\\\":{}\",\"tool_calls\":[]},\"usage\":{\"prompt_tokens\":99}}],\"usage\":{\"prompt_tokens\":6,\"total_tokens\":22,\"completion_tokens\":16},\"prompt_logprobs\":null}")]
    [InlineData("{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4},\"choices\":[{\"text\":\"x\"},[1,{\"model\":\"no\"}]],\"model\":\"m\"}")]
    [InlineData("{\"model\":\"m\",\"choices\":{\"not\":\"an array\"},\"usage\":null}")]
    public void A_whole_answer_scan_finds_what_the_full_scan_finds_without_looking_into_choices(string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        Assert.True(ResponseScanner.TryScan(bytes, out var full));
        Assert.True(ResponseScanner.TryScanAnswer(bytes, out var answer));
        Assert.Equal((full.ModelStart, full.ModelEnd, full.UsageCutStart, full.UsageCutEnd, full.HasUsage, full.PromptTokens, full.CompletionTokens),
            (answer.ModelStart, answer.ModelEnd, answer.UsageCutStart, answer.UsageCutEnd, answer.HasUsage, answer.PromptTokens, answer.CompletionTokens));
        Assert.False(answer.HasContent);
        Assert.False(answer.ChoicesEmpty);
        Assert.False(ResponseScanner.TryScanAnswer(bytes[..^1], out _)); // cut short: not one object
    }
}
