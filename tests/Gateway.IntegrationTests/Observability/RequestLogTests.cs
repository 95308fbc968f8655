using System.Net;
using System.Text;
using System.Text.Json;
using Gateway.Auth;
using Gateway.Http;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Observability;

/// <summary>A gateway of its own (same simulator) whose log goes to a captured stream: one line per request, the fields, no secret.</summary>
[Collection("gateway")]
public sealed class RequestLogTests(GatewayFixture fx)
{
    private async Task<string[]> RunAsync(Func<HttpClient, Task> requests, string level = "info", string format = "json", string? upstream = null)
    {
        fx.ResetSimulator();
        var sink = new MemoryStream();
        var options = GatewayFixture.BuildOptions(upstream ?? fx.Simulator.BaseUrl) with { LogLevel = level, LogFormat = format };
        var gateway = new GatewayHost(options, sink);
        await gateway.StartAsync();
        try
        {
            using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = new Uri($"http://127.0.0.1:{gateway.Port}") };
            await requests(client);
        }
        finally
        {
            await gateway.DisposeAsync(); // flushes the log
        }
        return Encoding.UTF8.GetString(sink.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    private static async Task Send(HttpClient client, string body, string? key = null, string? requestId = null)
    {
        using var request = fx_Post(body, key ?? GatewayFixture.Key);
        if (requestId is not null) request.Headers.Add("X-Request-ID", requestId);
        using var response = await client.SendAsync(request);
        await response.Content.ReadAsStringAsync();
    }

    private static HttpRequestMessage fx_Post(string body, string key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + key);
        return request;
    }

    /// <summary>A POST to a proxy route is logged once, by the proxy; another method on the same path once, as a 405.</summary>
    [Fact]
    public async Task Proxy_routes_log_one_line_per_request_whatever_the_method()
    {
        var lines = await RunAsync(async client =>
        {
            await Send(client, "{\"model\":\"qwen\",\"max_tokens\":3,\"messages\":[]}", requestId: "req-post");
            using var get = new HttpRequestMessage(HttpMethod.Get, "/v1/chat/completions");
            get.Headers.Add("X-Request-ID", "req-get");
            using var response = await client.SendAsync(get);
            Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        });
        var requests = lines.Where(l => l.Contains("\"msg\":\"request\"")).ToArray();
        Assert.Equal(2, requests.Length);
        Assert.Single(requests, l => l.Contains("\"method\":\"POST\"") && l.Contains("\"status\":200"));
        Assert.Single(requests, l => l.Contains("\"method\":\"GET\"") && l.Contains("\"status\":405") && l.Contains("\"path\":\"/v1/chat/completions\"") && l.Contains("\"request_id\":\"req-get\""));
    }

    [Fact]
    public async Task One_json_line_per_request_with_every_field_and_no_secret()
    {
        var lines = await RunAsync(async client =>
        {
            await Send(client, "{\"model\":\"qwen\",\"max_tokens\":3,\"messages\":[]}", requestId: "req-plain");
            await Send(client, "{\"model\":\"qwen\",\"stream\":true,\"max_tokens\":4,\"messages\":[]}", requestId: "req-stream");
            await Send(client, "{\"model\":\"qwen\",\"messages\":[]}", key: GatewayFixture.RevokedKey, requestId: "req-401");
            await Send(client, "{\"model\":\"nope\",\"messages\":[]}", requestId: "req-404");
        });
        var all = string.Join("\n", lines);
        foreach (var secret in new[] { GatewayFixture.Key, ApiKey.HashHex(GatewayFixture.Key), GatewayFixture.RevokedKey, ApiKey.HashHex(GatewayFixture.RevokedKey) })
            Assert.DoesNotContain(secret, all, StringComparison.OrdinalIgnoreCase);

        var requests = lines.Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.GetProperty("msg").GetString() == "request").ToList();
        Assert.Equal(4, requests.Count);
        string[] fields = ["ts", "level", "msg", "request_id", "method", "path", "status", "duration_ms", "overhead_ms", "model", "backend_url", "streaming", "key_prefix", "prompt_tokens", "completion_tokens"];
        Assert.All(requests, r => Assert.All(fields, f => Assert.True(r.TryGetProperty(f, out _), $"missing {f} in {r}")));

        var plain = requests.Single(r => r.GetProperty("request_id").GetString() == "req-plain");
        Assert.Equal("info", plain.GetProperty("level").GetString());
        Assert.Equal(200, plain.GetProperty("status").GetInt32());
        Assert.Equal("POST", plain.GetProperty("method").GetString());
        Assert.Equal("/v1/chat/completions", plain.GetProperty("path").GetString());
        Assert.Equal("qwen", plain.GetProperty("model").GetString());
        Assert.Equal(fx.Simulator.BaseUrl.TrimEnd('/'), plain.GetProperty("backend_url").GetString());
        Assert.False(plain.GetProperty("streaming").GetBoolean());
        Assert.Equal(ApiKey.DisplayPrefix(GatewayFixture.Key), plain.GetProperty("key_prefix").GetString());
        Assert.Equal(3, plain.GetProperty("completion_tokens").GetInt32());
        Assert.True(plain.GetProperty("prompt_tokens").GetInt32() > 0);
        Assert.True(plain.GetProperty("duration_ms").GetDouble() >= plain.GetProperty("overhead_ms").GetDouble());

        var stream = requests.Single(r => r.GetProperty("request_id").GetString() == "req-stream");
        Assert.True(stream.GetProperty("streaming").GetBoolean());
        Assert.Equal(4, stream.GetProperty("completion_tokens").GetInt32());
        Assert.False(stream.TryGetProperty("error", out _)); // it ended with [DONE]

        var unauthorized = requests.Single(r => r.GetProperty("request_id").GetString() == "req-401");
        Assert.Equal("warn", unauthorized.GetProperty("level").GetString());
        Assert.Equal(401, unauthorized.GetProperty("status").GetInt32());
        Assert.Equal("", unauthorized.GetProperty("key_prefix").GetString());

        Assert.Equal("warn", requests.Single(r => r.GetProperty("request_id").GetString() == "req-404").GetProperty("level").GetString());
    }

    [Fact]
    public async Task A_stream_the_upstream_broke_after_its_200_is_logged_as_an_error_with_the_cause()
    {
        await using var dying = await Gateway.Simulation.VllmSimulator.StartAsync(new Gateway.Simulation.SimulatorOptions
        {
            Port = 0, Models = [GatewayFixture.ModelId], Tokens = 20, DieAfterEvents = 3,
        });
        var lines = await RunAsync(client => Send(client, "{\"model\":\"qwen\",\"stream\":true,\"messages\":[]}", requestId: "req-broken"),
            upstream: dying.BaseUrl);
        var line = JsonDocument.Parse(lines.Single(l => l.Contains("\"req-broken\""))).RootElement;
        Assert.Equal(200, line.GetProperty("status").GetInt32()); // what the client got
        Assert.Equal("error", line.GetProperty("level").GetString());
        Assert.Contains(line.GetProperty("error").GetString(), new[] { "upstream_ended_early", "upstream_failed" });
    }

    [Fact]
    public async Task Other_routes_are_logged_but_probes_and_scrapes_are_not()
    {
        var lines = await RunAsync(async client =>
        {
            using (var models = new HttpRequestMessage(HttpMethod.Get, "/v1/models"))
            {
                models.Headers.TryAddWithoutValidation("Authorization", "Bearer " + GatewayFixture.Key);
                (await client.SendAsync(models)).Dispose();
            }
            (await client.GetAsync("/nope")).Dispose();
            (await client.GetAsync("/health")).Dispose();
            (await client.GetAsync("/metrics")).Dispose();
        });
        var requests = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["/v1/models", "/nope"], requests.Select(r => r.GetProperty("path").GetString()));
        Assert.Equal([200, 404], requests.Select(r => r.GetProperty("status").GetInt32()));
        Assert.All(requests, r => Assert.Matches("^[0-9a-f]{32}$", r.GetProperty("request_id").GetString()));
        Assert.Equal(GatewayFixture.Key[..11], requests[0].GetProperty("key_prefix").GetString()); // the key that listed the models
        Assert.DoesNotContain(GatewayFixture.Key, string.Join("\n", lines));
    }

    [Fact]
    public async Task Level_warn_drops_successful_requests()
    {
        var lines = await RunAsync(async client =>
        {
            await Send(client, "{\"model\":\"qwen\",\"max_tokens\":1,\"messages\":[]}");
            await Send(client, "{\"model\":\"qwen\",\"messages\":[]}", key: GatewayFixture.RevokedKey);
        }, level: "warn");
        var line = Assert.Single(lines);
        Assert.Equal(401, JsonDocument.Parse(line).RootElement.GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task Text_format_is_one_human_line_per_request()
    {
        var lines = await RunAsync(client => Send(client, "{\"model\":\"qwen\",\"max_tokens\":1,\"messages\":[]}", requestId: "req-text"), format: "text");
        var line = Assert.Single(lines);
        Assert.Contains(" INFO  POST /v1/chat/completions 200 ", line);
        Assert.Contains("model=qwen", line);
        Assert.Contains("id=req-text", line);
        Assert.DoesNotContain(GatewayFixture.Key, line);
    }
}
