using System.Net;
using System.Text.Json;
using Gateway.Auth;
using Gateway.Config;
using Gateway.Http;
using Gateway.IntegrationTests.Proxy;
using Gateway.Simulation;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Limits;

/// <summary>Rate limits through the gateway in embedded mode (the in-process limiter), with a short window.</summary>
public sealed class GatewayRateLimitTests : IAsyncLifetime
{
    private static readonly string LimitedKey = ApiKey.Generate();
    private static readonly string TokenKey = ApiKey.Generate();
    private VllmSimulator _sim = null!;
    private GatewayHost _gateway = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        _sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Tokens = 10, Models = [GatewayFixture.ModelId, "other/model"] });
        var options = GatewayFixture.BuildOptions(_sim.BaseUrl);
        options = options with
        {
            RateLimitWindow = TimeSpan.FromSeconds(2),
            Models = options.Models.Select(m => m.Name == "other" ? m with { RpmLimit = 1 } : m).ToList(),
            Keys =
            [
                .. options.Keys,
                new KeyConfig { Name = "limited", KeyHashHex = ApiKey.HashHex(LimitedKey), KeyPrefix = ApiKey.DisplayPrefix(LimitedKey), RpmLimit = 2, TpmLimit = 1_000_000 },
                new KeyConfig { Name = "tokens", KeyHashHex = ApiKey.HashHex(TokenKey), RpmLimit = 1000, TpmLimit = 10 },
            ],
        };
        _gateway = new GatewayHost(options);
        await _gateway.StartAsync();
        _client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_gateway.Port}") };
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _gateway.DisposeAsync();
        await _sim.DisposeAsync();
    }

    private Task<HttpResponseMessage> Chat(string key, string model = "qwen", bool stream = false) =>
        _client.SendAsync(GatewayFixture.CreatePost("/v1/chat/completions",
            $"{{\"model\":\"{model}\",\"stream\":{(stream ? "true" : "false")},\"messages\":[]}}", key));

    [Fact]
    public async Task The_third_request_at_rpm_2_is_a_429_with_headers_and_a_retry_after_from_the_window()
    {
        using (var first = await Chat(LimitedKey))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal("2", first.Headers.GetValues("X-RateLimit-Limit-Requests").Single());
            Assert.Equal("1", first.Headers.GetValues("X-RateLimit-Remaining-Requests").Single());
            Assert.Equal("2s", first.Headers.GetValues("X-RateLimit-Reset-Requests").Single());
            Assert.Equal("1000000", first.Headers.GetValues("X-RateLimit-Limit-Tokens").Single());
        }
        using (var second = await Chat(LimitedKey)) Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var before = _sim.RequestCount;
        using (var third = await Chat(LimitedKey))
        {
            var error = await BadInputTests.AssertError(third, 429, "rate_limit_exceeded", null);
            Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());
            Assert.Contains("requests per minute on this API key", error.GetProperty("message").GetString());
            Assert.Equal("0", third.Headers.GetValues("X-RateLimit-Remaining-Requests").Single());
            var retry = int.Parse(third.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(retry, 1, 2);
        }
        Assert.Equal(before, _sim.RequestCount); // refused requests never reach the upstream

        // The refusal is counted: by status on the model, and as a hit for the key's prefix (never the key).
        var metrics = await _client.GetStringAsync("/metrics");
        Assert.Contains("gateway_requests_total{model=\"qwen\",status_code=\"429\",streaming=\"false\"} 1", metrics);
        Assert.Contains($"gateway_rate_limit_hits_total{{key_prefix=\"{ApiKey.DisplayPrefix(LimitedKey)}\",limit_type=\"rpm\"}} 1", metrics);
        Assert.DoesNotContain(LimitedKey, metrics);

        await Task.Delay(2100); // the window (2 s) passes
        using var again = await Chat(LimitedKey);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    [Fact]
    public async Task A_streamed_requests_tokens_push_the_next_request_over_tpm()
    {
        using (var stream = await Chat(TokenKey, stream: true))
        {
            Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
            await stream.Content.ReadAsStringAsync(); // 10 completion tokens + the prompt, charged live
        }
        using var next = await Chat(TokenKey);
        var error = await BadInputTests.AssertError(next, 429, "rate_limit_exceeded", null);
        Assert.Contains("tokens per minute", error.GetProperty("message").GetString());
        Assert.Equal("0", next.Headers.GetValues("X-RateLimit-Remaining-Tokens").Single());
    }

    [Fact]
    public async Task A_models_own_limit_is_enforced_per_key()
    {
        using (var first = await Chat(GatewayFixture.Key, "other")) Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        using var second = await Chat(GatewayFixture.Key, "other");
        var error = await BadInputTests.AssertError(second, 429, "rate_limit_exceeded", null);
        Assert.Contains("this model", error.GetProperty("message").GetString());
        using var otherModel = await Chat(GatewayFixture.Key, "qwen");
        Assert.Equal(HttpStatusCode.OK, otherModel.StatusCode);
    }

    [Fact]
    public async Task Unlimited_keys_get_no_rate_limit_headers()
    {
        using var response = await Chat(GatewayFixture.Key);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(response.Headers.Contains("X-RateLimit-Limit-Requests"));
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("qwen", doc.RootElement.GetProperty("model").GetString());
    }
}
