using System.Text;
using Gateway.Json;

namespace Gateway.Tests.Json;

public sealed class RequestScannerTests
{
    private static (Gateway.Http.OpenAiError? Error, RequestScan Scan) Scan(string body) => Scan(Encoding.UTF8.GetBytes(body));

    private static (Gateway.Http.OpenAiError? Error, RequestScan Scan) Scan(byte[] body)
    {
        var scan = new RequestScan();
        return (RequestScanner.Scan(body, scan), scan);
    }

    [Theory]
    [InlineData("", "empty", null)]
    [InlineData("   ", "not valid JSON", null)]
    [InlineData("{", "not valid JSON", null)]
    [InlineData("{\"model\":\"qwen\",}", "not valid JSON", null)]
    [InlineData("{\"model\":\"qwen\"} {}", "not valid JSON", null)]
    [InlineData("[{\"model\":\"qwen\"}]", "must be a JSON object", null)]
    [InlineData("\"qwen\"", "must be a JSON object", null)]
    [InlineData("42", "must be a JSON object", null)]
    [InlineData("null", "must be a JSON object", null)]
    [InlineData("{}", "'model' field is required", "model")]
    [InlineData("{\"messages\":[]}", "'model' field is required", "model")]
    [InlineData("{\"model\":42}", "must be a string", "model")]
    [InlineData("{\"model\":null}", "must be a string", "model")]
    [InlineData("{\"model\":[\"qwen\"]}", "must be a string", "model")]
    [InlineData("{\"model\":\"\"}", "must not be empty", "model")]
    [InlineData("{\"model\":\"qwen\",\"model\":\"other\"}", "Duplicate key 'model'", "model")]
    [InlineData("{\"model\":\"qwen\",\"mo\\u0064el\":\"other\"}", "Duplicate key 'model'", "model")]
    [InlineData("{\"model\":\"qwen\",\"stream\":\"true\"}", "'stream' field must be a boolean", "stream")]
    [InlineData("{\"model\":\"qwen\",\"stream\":1}", "'stream' field must be a boolean", "stream")]
    [InlineData("{\"model\":\"qwen\",\"stream\":true,\"stream\":false}", "Duplicate key 'stream'", "stream")]
    [InlineData("{\"model\":\"qwen\",\"stream_options\":[]}", "must be an object", "stream_options")]
    [InlineData("{\"model\":\"qwen\",\"stream_options\":{\"include_usage\":\"yes\"}}", "must be a boolean", "stream_options")]
    [InlineData("{\"model\":\"qwen\",\"chat_template_kwargs\":\"x\"}", "must be an object", "chat_template_kwargs")]
    [InlineData("{\"model\":'qwen'}", "not valid JSON", null)]
    [InlineData("{\"model\":\"qwen\" // comment\n}", "not valid JSON", null)]
    public void Rejects_bad_bodies_with_a_400_naming_the_problem(string body, string message, string? param)
    {
        var (error, _) = Scan(body);
        Assert.NotNull(error);
        Assert.Equal(400, error.Value.Status);
        Assert.Equal("invalid_request_error", error.Value.Type);
        Assert.Contains(message, error.Value.Message);
        Assert.Equal(param, error.Value.Param);
    }

    [Fact]
    public void Rejects_invalid_utf8()
    {
        var body = Encoding.UTF8.GetBytes("{\"model\":\"qwen\",\"x\":\"__\"}");
        body[^4] = 0xC3; body[^3] = 0x28; // a lead byte followed by a non-continuation byte
        var (error, _) = Scan(body);
        Assert.Contains("UTF-8", error!.Value.Message);
    }

    [Fact]
    public void Rejects_nesting_deeper_than_the_limit()
    {
        var body = "{\"model\":\"qwen\",\"x\":" + new string('[', 200) + new string(']', 200) + "}";
        Assert.NotNull(Scan(body).Error);
    }

    [Theory]
    [InlineData("{\"model\":\"qwen\"}", "qwen")]
    [InlineData("{\"mo\\u0064el\":\"qwen\"}", "qwen")]
    [InlineData("{\"model\":\"q\\u0077en\"}", "qwen")]
    [InlineData("{\"model\":\"caf\u00e9\"}", "caf\u00e9")]
    [InlineData(" \n{ \"model\" : \"qwen\" } \n", "qwen")]
    public void Finds_the_model_even_when_escaped(string body, string expected)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var (error, scan) = Scan(bytes);
        Assert.Null(error);
        var name = new byte[256];
        int n = RequestScanner.CopyModelName(bytes, scan, name);
        Assert.Equal(expected, Encoding.UTF8.GetString(name, 0, n));
    }

    [Theory]
    [InlineData("{\"model\":\"m\"}", false, false, false)]
    [InlineData("{\"model\":\"m\",\"stream\":true}", true, false, false)]
    [InlineData("{\"model\":\"m\",\"stream\":null}", false, false, false)]
    [InlineData("{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}", true, true, false)]
    [InlineData("{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true,\"continuous_usage_stats\":true}}", true, true, true)]
    [InlineData("{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":false}}", true, false, false)]
    [InlineData("{\"model\":\"m\",\"stream\":true,\"stream_options\":null}", true, false, false)]
    public void Reads_stream_and_what_usage_the_client_asked_for(string body, bool stream, bool includeUsage, bool continuous)
    {
        var (error, scan) = Scan(body);
        Assert.Null(error);
        Assert.Equal(stream, scan.Stream);
        Assert.Equal(includeUsage, scan.ClientIncludeUsage);
        Assert.Equal(continuous, scan.ClientContinuousUsage);
    }

    [Theory]
    [InlineData("{\"model\":\"m\",\"temperature\":0.2}", "temperature", true)]
    [InlineData("{\"model\":\"m\",\"temperature\":null}", "temperature", true)]
    [InlineData("{\"model\":\"m\",\"temp\\u0065rature\":1}", "temperature", true)]
    [InlineData("{\"model\":\"m\",\"top_p\":1}", "temperature", false)]
    [InlineData("{\"model\":\"m\",\"x\":{\"temperature\":1}}", "temperature", false)]
    public void Records_top_level_names_only(string body, string name, bool present)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var (error, scan) = Scan(bytes);
        Assert.Null(error);
        Assert.Equal(present, scan.HasName(bytes, Encoding.UTF8.GetBytes(name)));
    }

    [Fact]
    public void A_scan_is_reusable_after_reset()
    {
        var scan = new RequestScan();
        Assert.Null(RequestScanner.Scan("{\"model\":\"m\",\"stream\":true,\"a\":1,\"b\":2}"u8, scan));
        Assert.Null(RequestScanner.Scan("{\"model\":\"m\"}"u8, scan));
        Assert.False(scan.Stream);
        Assert.Equal(1, scan.NameCount);
    }
}
