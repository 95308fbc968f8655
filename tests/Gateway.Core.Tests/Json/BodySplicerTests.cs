using System.Text;
using System.Text.Json;
using Gateway.Json;
using Gateway.Proxy;
using Gateway.Routing;

namespace Gateway.Tests.Json;

public sealed class BodySplicerTests
{
    private static string Splice(string body, ModelEntry model, ProxyEndpoint endpoint = ProxyEndpoint.ChatCompletions)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var scan = new RequestScan();
        Assert.Null(RequestScanner.Scan(bytes, scan));
        using var output = new PooledBuffer(16);
        BodySplicer.Splice(bytes, scan, model, endpoint, output);
        var text = Encoding.UTF8.GetString(output.WrittenSpan);
        using var _ = JsonDocument.Parse(text); // every output is valid JSON
        return text;
    }

    private static readonly ModelEntry Plain = TestModels.Create(modelId: "org/M");

    [Theory]
    // Only the model value changes; whitespace, key order, escapes and numbers stay byte-identical.
    [InlineData("{\"model\":\"qwen\"}", "{\"model\":\"org/M\"}")]
    [InlineData("{ \"a\" : 1.50e3 ,\n \"model\" :\t\"qwen\" , \"z\":\"\\u00e9\\n\" }", "{ \"a\" : 1.50e3 ,\n \"model\" :\t\"org/M\" , \"z\":\"\\u00e9\\n\" }")]
    [InlineData("{\"mo\\u0064el\":\"q\\u0077en\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "{\"mo\\u0064el\":\"org/M\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")]
    [InlineData("{\"model\":\"qwen\",\"stream\":false,\"stream_options\":{\"include_usage\":true}}", "{\"model\":\"org/M\",\"stream\":false,\"stream_options\":{\"include_usage\":true}}")]
    public void Replaces_only_the_model_and_keeps_every_other_byte(string body, string expected) =>
        Assert.Equal(expected, Splice(body, Plain));

    [Theory]
    [InlineData("{\"model\":\"qwen\",\"stream\":true}",
        "{\"model\":\"org/M\",\"stream\":true,\"stream_options\":{\"include_usage\":true,\"continuous_usage_stats\":true}}")]
    [InlineData("{\"model\":\"qwen\",\"stream\":true,\"stream_options\":null}",
        "{\"model\":\"org/M\",\"stream\":true,\"stream_options\":{\"include_usage\":true,\"continuous_usage_stats\":true}}")]
    [InlineData("{\"model\":\"qwen\",\"stream\":true,\"stream_options\":{}}",
        "{\"model\":\"org/M\",\"stream\":true,\"stream_options\":{\"include_usage\":true,\"continuous_usage_stats\":true}}")]
    [InlineData("{\"stream_options\":{\"include_usage\":false,\"other\":[1,2]},\"model\":\"qwen\",\"stream\":true}",
        "{\"stream_options\":{\"other\":[1,2],\"include_usage\":true,\"continuous_usage_stats\":true},\"model\":\"org/M\",\"stream\":true}")]
    public void Merges_stream_options_into_streams_only(string body, string expected) =>
        Assert.Equal(expected, Splice(body, Plain));

    [Fact]
    public void Stream_options_go_to_completions_streams_but_never_to_embeddings()
    {
        Assert.Equal("{\"model\":\"org/M\",\"stream\":true,\"stream_options\":{\"include_usage\":true,\"continuous_usage_stats\":true}}",
            Splice("{\"model\":\"qwen\",\"stream\":true}", Plain, ProxyEndpoint.Completions));
        // vLLM's embeddings do not stream: a client's "stream" goes through untouched and nothing is added.
        Assert.Equal("{\"model\":\"org/M\",\"input\":\"x\",\"stream\":true}", Splice("{\"model\":\"qwen\",\"input\":\"x\",\"stream\":true}", Plain, ProxyEndpoint.Embeddings));
        Assert.Equal("{\"model\":\"org/M\",\"stream\":true,\"stream_options\":{}}",
            Splice("{\"model\":\"qwen\",\"stream\":true,\"stream_options\":{}}", Plain, ProxyEndpoint.Embeddings));
    }

    [Theory]
    [InlineData("{\"model\":\"qwen\"}", "{\"model\":\"org/M\",\"temperature\":0.7,\"max_tokens\":512}")]
    [InlineData("{\"model\":\"qwen\",\"temperature\":0.1}", "{\"model\":\"org/M\",\"temperature\":0.1,\"max_tokens\":512}")]
    [InlineData("{\"model\":\"qwen\",\"temperature\":null}", "{\"model\":\"org/M\",\"temperature\":null,\"max_tokens\":512}")]
    [InlineData("{\"model\":\"qwen\",\"max_tokens\":5,\"temperature\":1}", "{\"model\":\"org/M\",\"max_tokens\":5,\"temperature\":1}")]
    [InlineData("{\"model\":\"qwen\",\"nested\":{\"temperature\":1}}", "{\"model\":\"org/M\",\"nested\":{\"temperature\":1},\"temperature\":0.7,\"max_tokens\":512}")]
    public void Inserts_default_params_only_where_absent(string body, string expected)
    {
        var model = TestModels.Create(modelId: "org/M", defaults: [("temperature", "0.7"), ("max_tokens", "512")]);
        Assert.Equal(expected, Splice(body, model));
    }

    [Theory]
    [InlineData("{\"model\":\"qwen\"}", "{\"model\":\"org/M\",\"chat_template_kwargs\":{\"enable_thinking\":false}}")]
    [InlineData("{\"model\":\"qwen\",\"chat_template_kwargs\":null}", "{\"model\":\"org/M\",\"chat_template_kwargs\":{\"enable_thinking\":false}}")]
    [InlineData("{\"model\":\"qwen\",\"chat_template_kwargs\":{\"a\":1}}", "{\"model\":\"org/M\",\"chat_template_kwargs\":{\"a\":1,\"enable_thinking\":false}}")]
    [InlineData("{\"model\":\"qwen\",\"chat_template_kwargs\":{\"enable_thinking\":true,\"b\":\"x\"}}", "{\"model\":\"org/M\",\"chat_template_kwargs\":{\"b\":\"x\",\"enable_thinking\":false}}")]
    public void Sets_enable_thinking_merged_with_the_clients_kwargs(string body, string expected)
    {
        var model = TestModels.Create(modelId: "org/M", enableThinking: false);
        Assert.Equal(expected, Splice(body, model));
    }

    [Fact]
    public void Reasoning_and_prefix_apply_to_chat_only()
    {
        var model = TestModels.Create(modelId: "org/M", enableThinking: true, prefix: "P");
        Assert.Equal("{\"model\":\"org/M\",\"prompt\":\"x\"}", Splice("{\"model\":\"qwen\",\"prompt\":\"x\"}", model, ProxyEndpoint.Completions));
    }

    [Theory]
    // A string system message gets prefix + "\n".
    [InlineData("{\"model\":\"qwen\",\"messages\":[{\"role\":\"system\",\"content\":\"Be kind.\"},{\"role\":\"user\",\"content\":\"hi\"}]}",
        "{\"model\":\"org/M\",\"messages\":[{\"role\":\"system\",\"content\":\"You are \\\"terse\\\".\\nBe kind.\"},{\"role\":\"user\",\"content\":\"hi\"}]}")]
    // Role after content in the first message: still found.
    [InlineData("{\"model\":\"qwen\",\"messages\":[{\"content\":\"S\",\"role\":\"system\"},{\"role\":\"user\",\"content\":\"a\"}]}",
        "{\"model\":\"org/M\",\"messages\":[{\"content\":\"You are \\\"terse\\\".\\nS\",\"role\":\"system\"},{\"role\":\"user\",\"content\":\"a\"}]}")]
    // A system message that is not first stays as sent: the prefix leads the conversation in a message of its own.
    [InlineData("{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"system\",\"content\":\"S\"}]}",
        "{\"model\":\"org/M\",\"messages\":[{\"role\":\"system\",\"content\":\"You are \\\"terse\\\".\"},{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"system\",\"content\":\"S\"}]}")]
    // Array content is kept as sent, with the prefix as a text part in front.
    [InlineData("{\"model\":\"qwen\",\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"S\"}]}]}",
        "{\"model\":\"org/M\",\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"You are \\\"terse\\\".\"},{\"type\":\"text\",\"text\":\"S\"}]}]}")]
    [InlineData("{\"model\":\"qwen\",\"messages\":[{\"role\":\"system\",\"content\":[]}]}",
        "{\"model\":\"org/M\",\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"You are \\\"terse\\\".\"}]}]}")]
    // No system message: one is inserted first.
    [InlineData("{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        "{\"model\":\"org/M\",\"messages\":[{\"role\":\"system\",\"content\":\"You are \\\"terse\\\".\"},{\"role\":\"user\",\"content\":\"hi\"}]}")]
    [InlineData("{\"model\":\"qwen\",\"messages\":[]}",
        "{\"model\":\"org/M\",\"messages\":[{\"role\":\"system\",\"content\":\"You are \\\"terse\\\".\"}]}")]
    public void Applies_the_system_prompt_prefix(string body, string expected)
    {
        var model = TestModels.Create(modelId: "org/M", prefix: "You are \"terse\".");
        Assert.Equal(expected, Splice(body, model));
    }

    [Fact]
    public void Every_transform_at_once_keeps_the_rest_intact()
    {
        var model = TestModels.Create(modelId: "org/M", enableThinking: true, prefix: "P", defaults: [("temperature", "0.7")]);
        var body = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true,\"model\":\"qwen\",\"top_p\":0.9}";
        Assert.Equal(
            "{\"messages\":[{\"role\":\"system\",\"content\":\"P\"},{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true,\"model\":\"org/M\",\"top_p\":0.9," +
            "\"stream_options\":{\"include_usage\":true,\"continuous_usage_stats\":true},\"chat_template_kwargs\":{\"enable_thinking\":true},\"temperature\":0.7}",
            Splice(body, model));
    }

    [Fact]
    public void Large_bodies_are_spliced_without_truncation()
    {
        var content = new string('x', 100_000);
        var body = "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"" + content + "\"}]}";
        Assert.Equal(body.Replace("\"qwen\"", "\"org/M\""), Splice(body, Plain));
    }
}
