using System.Net;
using System.Text;
using System.Text.Json;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Proxy;

/// <summary>Every malformed request gets the right 4xx with an OpenAI-shaped body, nothing reaches the upstream, the process stays up.</summary>
[Collection("gateway")]
public sealed class BadInputTests(GatewayFixture fx)
{
    private const string Chat = "/v1/chat/completions";

    public static TheoryData<string, string, int, string, string?> Bodies => new()
    {
        // body, content type, status, code, param
        { "{not json", "application/json", 400, "invalid_request", null },
        { "[1,2,3]", "application/json", 400, "invalid_request", null },
        { "\"just a string\"", "application/json", 400, "invalid_request", null },
        { "{\"messages\":[]}", "application/json", 400, "invalid_request", "model" },
        { "{\"model\":42,\"messages\":[]}", "application/json", 400, "invalid_request", "model" },
        { "{\"model\":null,\"messages\":[]}", "application/json", 400, "invalid_request", "model" },
        { "{\"model\":\"qwen\",\"model\":\"qwen\",\"messages\":[]}", "application/json", 400, "invalid_request", "model" },
        { "{\"model\":\"qwen\",\"mo\\u0064el\":\"other\",\"messages\":[]}", "application/json", 400, "invalid_request", "model" },
        { "{\"model\":\"qwen\",\"stream\":\"true\",\"messages\":[]}", "application/json", 400, "invalid_request", "stream" },
        { "", "application/json", 400, "invalid_request", null },
        { "{\"model\":\"qwen\"}", "text/plain", 415, "unsupported_media_type", null },
        { "model=qwen", "application/x-www-form-urlencoded", 415, "unsupported_media_type", null },
        { "{\"model\":\"nope\",\"messages\":[]}", "application/json", 404, "model_not_found", "model" },
        { "{\"model\":\"retired\",\"messages\":[]}", "application/json", 404, "model_not_found", "model" },
        { "{\"model\":\"\",\"messages\":[]}", "application/json", 400, "invalid_request", "model" }, // empty is as good as missing
        // Escapes of a lone surrogate: valid JSON, but no text (was a 500 from the unescape).
        { "{\"model\":\"\\ud800\",\"messages\":[]}", "application/json", 400, "invalid_request", "model" },
        { "{\"model\":\"ab\\udc00cd\",\"messages\":[]}", "application/json", 400, "invalid_request", "model" },
    };

    [Theory]
    [MemberData(nameof(Bodies))]
    public async Task Bad_bodies_get_an_openai_error_and_never_reach_the_upstream(string body, string contentType, int status, string code, string? param)
    {
        var before = fx.Simulator.RequestCount;
        using var response = await fx.Client.SendAsync(fx.Post(Chat, body, contentType: contentType));
        await AssertError(response, status, code, param);
        Assert.Equal(before, fx.Simulator.RequestCount);
    }

    [Fact]
    public async Task An_escaped_model_key_is_understood()
    {
        using var response = await fx.Client.SendAsync(fx.Post(Chat, "{\"mo\\u0064el\":\"qw\\u0065n\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("qwen", doc.RootElement.GetProperty("model").GetString());
    }

    [Fact]
    public async Task Invalid_utf8_is_a_400()
    {
        var bytes = Encoding.UTF8.GetBytes("{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"__\"}]}");
        int i = Array.IndexOf(bytes, (byte)'_');
        bytes[i] = 0xFF;
        var request = new HttpRequestMessage(HttpMethod.Post, Chat) { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + GatewayFixture.Key);
        using var response = await fx.Client.SendAsync(request);
        await AssertError(response, 400, "invalid_request", null);
    }

    [Theory]
    [InlineData(65 * 1024, true)]   // declared Content-Length over the 64 KiB test limit
    [InlineData(65 * 1024, false)]  // chunked, no Content-Length: counted while reading
    public async Task Bodies_over_the_limit_are_413(int size, bool withLength)
    {
        var before = fx.Simulator.RequestCount;
        var body = "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"" + new string('x', size) + "\"}]}";
        HttpContent content = withLength ? new StringContent(body) : new StreamContent(new NonSeekableStream(Encoding.UTF8.GetBytes(body)));
        content.Headers.ContentType = new("application/json");
        var request = new HttpRequestMessage(HttpMethod.Post, Chat) { Content = content };
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + GatewayFixture.Key);
        using var response = await fx.Client.SendAsync(request);
        await AssertError(response, 413, "request_too_large", null);
        Assert.Equal(before, fx.Simulator.RequestCount);
    }

    private async Task<System.Net.Sockets.TcpClient> ConnectRawAsync()
    {
        var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync("127.0.0.1", fx.Gateway.Port);
        return tcp;
    }

    /// <summary>A chat request's head with a chunked body, for the tests that write its chunks themselves over a raw socket.</summary>
    private static string ChunkedChatHead => $"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {GatewayFixture.Key}\r\n" +
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

    [Fact]
    public async Task A_chunked_body_that_goes_over_the_limit_in_its_second_part_is_413()
    {
        // The first chunk is taken with the headers, the second waited for: the limit is counted across both reads. (A body that
        // arrives in pieces and fits: TransportTests.)
        var before = fx.Simulator.RequestCount;
        using var tcp = await ConnectRawAsync();
        var stream = tcp.GetStream();
        var chunk = new string('x', 40 * 1024); // two of them are over the 64 KiB test limit
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"{ChunkedChatHead}{chunk.Length:x}\r\n{chunk}\r\n"));
        await Task.Delay(150);
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"{chunk.Length:x}\r\n{chunk}\r\n0\r\n\r\n"));

        var received = new List<byte>();
        var buffer = new byte[8192];
        string text;
        while (true)
        {
            int n = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(n > 0, "the gateway closed before answering");
            received.AddRange(buffer.AsSpan(0, n).ToArray());
            text = Encoding.UTF8.GetString(received.ToArray());
            if (text.Contains("\r\n\r\n") && text.TrimEnd().EndsWith('}')) break;
        }
        Assert.StartsWith("HTTP/1.1 413", text);
        Assert.Contains("request_too_large", text);
        Assert.Equal(before, fx.Simulator.RequestCount);
    }

    [Fact]
    public async Task A_malformed_chunked_body_is_a_400_not_a_crash()
    {
        var before = fx.Simulator.RequestCount;
        using var tcp = await ConnectRawAsync();
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(ChunkedChatHead + "ZZZ\r\n{}\r\n0\r\n\r\n"));
        var buffer = new byte[4096];
        int n = await stream.ReadAsync(buffer);
        var response = Encoding.ASCII.GetString(buffer, 0, n);
        Assert.StartsWith("HTTP/1.1 400", response);
        Assert.Contains("\"error\"", response);
        Assert.Equal(before, fx.Simulator.RequestCount);
    }

    public static TheoryData<string?, string> Keys => new()
    {
        { null, "Missing API key" },
        { "Basic Zm9vOmJhcg==", "Bearer" },
        { "Bearer sk-not-ours", "Incorrect API key" },
        { "Bearer ml-" + new string('0', 63), "Incorrect API key" },
        { "Bearer ml-" + new string('f', 64), "Incorrect API key" },
        { "Bearer " + GatewayFixture.RevokedKey, "revoked" },
        { "Bearer " + GatewayFixture.ExpiredKey, "expired" },
    };

    [Theory]
    [MemberData(nameof(Keys))]
    public async Task Missing_malformed_unknown_revoked_and_expired_keys_are_401(string? authorization, string message)
    {
        var before = fx.Simulator.RequestCount;
        foreach (var path in new[] { Chat, "/v1/completions", "/v1/embeddings" })
        {
            var request = fx.Post(path, "{\"model\":\"qwen\",\"messages\":[]}", key: "");
            if (authorization is not null) request.Headers.TryAddWithoutValidation("Authorization", authorization);
            using var response = await fx.Client.SendAsync(request);
            var error = await AssertError(response, 401, "invalid_api_key", null);
            Assert.Equal("authentication_error", error.GetProperty("type").GetString());
            Assert.Contains(message, error.GetProperty("message").GetString());
        }
        var models = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        if (authorization is not null) models.Headers.TryAddWithoutValidation("Authorization", authorization);
        using var modelsResponse = await fx.Client.SendAsync(models);
        await AssertError(modelsResponse, 401, "invalid_api_key", null);
        Assert.Equal(before, fx.Simulator.RequestCount);
    }

    [Fact]
    public async Task A_key_for_another_model_is_403()
    {
        var before = fx.Simulator.RequestCount;
        using var response = await fx.Client.SendAsync(fx.Post(Chat, "{\"model\":\"qwen\",\"messages\":[]}", key: GatewayFixture.OtherModelKey));
        var error = await AssertError(response, 403, "model_not_allowed", "model");
        Assert.Equal("permission_error", error.GetProperty("type").GetString());
        Assert.Equal(before, fx.Simulator.RequestCount);
    }

    [Theory]
    [InlineData("GET", "/v1/chat/completions", 405)]
    [InlineData("PUT", "/v1/embeddings", 405)]
    [InlineData("POST", "/v1/models", 405)]
    [InlineData("DELETE", "/health", 405)]
    [InlineData("GET", "/v1/nothing", 404)]
    [InlineData("GET", "/", 404)]
    [InlineData("POST", "/V1/CHAT/COMPLETIONS", 404)]
    public async Task Unknown_routes_are_404_and_wrong_methods_405(string method, string path, int status)
    {
        using var response = await fx.Client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
        await AssertError(response, status, status == 404 ? "not_found" : "method_not_allowed", null);
    }

    [Fact]
    public async Task The_process_is_still_up_after_bad_input()
    {
        using var response = await fx.Client.GetAsync("/health");
        Assert.Equal("{\"status\":\"ok\"}", await response.Content.ReadAsStringAsync());
    }

    internal static async Task<JsonElement> AssertError(HttpResponseMessage response, int status, string code, string? param)
    {
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        using var doc = JsonDocument.Parse(text);
        var error = doc.RootElement.GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.False(string.IsNullOrEmpty(error.GetProperty("type").GetString()));
        var p = error.GetProperty("param");
        Assert.Equal(param, p.ValueKind == JsonValueKind.Null ? null : p.GetString());
        Assert.Single(doc.RootElement.EnumerateObject());
        return error.Clone();
    }

    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
