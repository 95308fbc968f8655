using System.Globalization;
using System.Net;
using System.Text.Json;
using Gateway.Auth;
using Gateway.Config;
using Gateway.Http;
using Gateway.IntegrationTests.Fixtures;
using Gateway.IntegrationTests.Proxy;
using Gateway.Limits;
using Gateway.Simulation;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Limits;

/// <summary>
/// Which /v1 responses carry X-RateLimit-{Limit,Remaining,Reset}-{Requests,Tokens}: every one for a key with limits (counted requests,
/// refusals with Retry-After, errors before the limit check and GET /v1/models, which are reported but not counted); none for a
/// 401 (no key, so no limits) or an unlimited key. Run against both limiters.
/// </summary>
public abstract class RateLimitHeaderTests : IAsyncLifetime
{
    private static readonly string RpmKey = ApiKey.Generate();
    private static readonly string TpmKey = ApiKey.Generate();
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(10);
    private static readonly string[] Names =
    [
        RateLimitHeaders.LimitRequests, RateLimitHeaders.RemainingRequests, RateLimitHeaders.ResetRequests,
        RateLimitHeaders.LimitTokens, RateLimitHeaders.RemainingTokens, RateLimitHeaders.ResetTokens,
    ];
    private VllmSimulator _sim = null!;
    private GatewayHost _gateway = null!;
    private HttpClient _client = null!;

    protected abstract string? RedisUrl { get; }
    protected virtual Task ResetAsync() => Task.CompletedTask;

    public async Task InitializeAsync()
    {
        await ResetAsync();
        _sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Tokens = 10, Models = [GatewayFixture.ModelId, "other/model"] });
        var options = GatewayFixture.BuildOptions(_sim.BaseUrl);
        _gateway = new GatewayHost(options with
        {
            RedisUrl = RedisUrl,
            RateLimiterTimeout = TimeSpan.FromSeconds(1),
            RateLimitWindow = Window,
            Keys =
            [
                .. options.Keys,
                new KeyConfig { Name = "rpm", KeyHashHex = ApiKey.HashHex(RpmKey), RpmLimit = 3, TpmLimit = 1_000_000 },
                new KeyConfig { Name = "tpm", KeyHashHex = ApiKey.HashHex(TpmKey), RpmLimit = 1000, TpmLimit = 10 },
            ],
        }, Stream.Null);
        await _gateway.StartAsync();
        _client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_gateway.Port}") };
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _gateway.DisposeAsync();
        await _sim.DisposeAsync();
    }

    private Task<HttpResponseMessage> Chat(string? key, string model = "qwen", bool stream = false, string? body = null) =>
        _client.SendAsync(GatewayFixture.CreatePost("/v1/chat/completions",
            body ?? $"{{\"model\":\"{model}\",\"stream\":{(stream ? "true" : "false")},\"messages\":[]}}", key));

    private async Task<HttpResponseMessage> Models(string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        return await _client.SendAsync(request);
    }

    private static string Header(HttpResponseMessage response, string name) => response.Headers.GetValues(name).Single();

    private static TimeSpan Reset(string text)
    {
        Assert.True(Durations.TryParse(text, out var value), $"'{text}' is not a duration");
        return value;
    }

    /// <summary>All six headers, with the request and token limits given, and resets in the "12s" / "1m4s" form within the window.</summary>
    private static long RemainingRequests(HttpResponseMessage response, long rpm, long tpm)
    {
        Assert.All(Names, n => Assert.True(response.Headers.Contains(n), $"{(int)response.StatusCode} without {n}"));
        Assert.Equal(rpm.ToString(CultureInfo.InvariantCulture), Header(response, RateLimitHeaders.LimitRequests));
        Assert.Equal(tpm.ToString(CultureInfo.InvariantCulture), Header(response, RateLimitHeaders.LimitTokens));
        foreach (var reset in new[] { Header(response, RateLimitHeaders.ResetRequests), Header(response, RateLimitHeaders.ResetTokens) })
            Assert.InRange(Reset(reset), TimeSpan.Zero, Window);
        return long.Parse(Header(response, RateLimitHeaders.RemainingRequests), CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task Every_v1_response_of_a_limited_key_carries_the_headers_and_only_counted_requests_use_the_limit()
    {
        // Not counted: listing models, a request refused before the limit check (bad JSON, unknown model, model not allowed).
        using (var models = await Models(RpmKey))
        {
            Assert.Equal(HttpStatusCode.OK, models.StatusCode);
            Assert.Equal(3, RemainingRequests(models, 3, 1_000_000));
            Assert.False(models.Headers.Contains("Retry-After"));
        }
        using (var badJson = await Chat(RpmKey, body: "{not json"))
        {
            await BadInputTests.AssertError(badJson, 400, "invalid_request", null);
            Assert.Equal(3, RemainingRequests(badJson, 3, 1_000_000));
        }
        using (var unknown = await Chat(RpmKey, model: "nope"))
        {
            await BadInputTests.AssertError(unknown, 404, "model_not_found", "model");
            Assert.Equal(3, RemainingRequests(unknown, 3, 1_000_000));
        }

        // Counted: a success, and a request that passed the limit but failed upstream (the "down" model's backend refuses).
        using (var ok = await Chat(RpmKey)) { Assert.Equal(HttpStatusCode.OK, ok.StatusCode); Assert.Equal(2, RemainingRequests(ok, 3, 1_000_000)); }
        using (var down = await Chat(RpmKey, model: "down"))
        {
            Assert.Equal(HttpStatusCode.BadGateway, down.StatusCode);
            Assert.Equal(1, RemainingRequests(down, 3, 1_000_000));
        }
        using (var stream = await Chat(RpmKey, stream: true))
        {
            Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
            Assert.Equal(0, RemainingRequests(stream, 3, 1_000_000));
            await stream.Content.ReadAsStringAsync();
        }

        var before = _sim.RequestCount;
        using (var refused = await Chat(RpmKey))
        {
            var error = await BadInputTests.AssertError(refused, 429, "rate_limit_exceeded", null);
            Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());
            Assert.Equal(0, RemainingRequests(refused, 3, 1_000_000));
            // Retry-After: whole seconds until the oldest counted request leaves the 10 s window, at least 1.
            var retry = int.Parse(Header(refused, "Retry-After"), CultureInfo.InvariantCulture);
            Assert.InRange(retry, 1, (int)Window.TotalSeconds);
            Assert.Contains($"Retry after {retry}s", error.GetProperty("message").GetString());
            Assert.InRange(Reset(Header(refused, RateLimitHeaders.ResetRequests)), TimeSpan.FromSeconds(retry - 1), TimeSpan.FromSeconds(retry));
        }
        Assert.Equal(before, _sim.RequestCount); // the refusal never reached the upstream

        // Still reported while refused, and still not counted.
        using (var models = await Models(RpmKey)) Assert.Equal(0, RemainingRequests(models, 3, 1_000_000));
    }

    [Fact]
    public async Task A_tpm_refusal_carries_the_headers_and_a_retry_after()
    {
        using (var stream = await Chat(TpmKey, stream: true))
        {
            Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
            await stream.Content.ReadAsStringAsync(); // 10 completion tokens + the prompt, charged as they stream
        }
        // The charge may still be on its way to Redis (it counts as pending meanwhile): the next check sees it either way.
        using var refused = await Chat(TpmKey);
        var error = await BadInputTests.AssertError(refused, 429, "rate_limit_exceeded", null);
        Assert.Contains("tokens per minute", error.GetProperty("message").GetString());
        Assert.Equal(999, RemainingRequests(refused, 1000, 10)); // the stream counted; the refusal did not
        Assert.Equal("0", Header(refused, RateLimitHeaders.RemainingTokens));
        var retry = int.Parse(Header(refused, "Retry-After"), CultureInfo.InvariantCulture);
        Assert.InRange(retry, 1, (int)Window.TotalSeconds);
    }

    [Fact]
    public async Task A_401_and_an_unlimited_key_carry_no_rate_limit_headers()
    {
        using (var unauthorized = await Chat("ml-not-a-key"))
        {
            await BadInputTests.AssertError(unauthorized, 401, "invalid_api_key", null);
            Assert.DoesNotContain(unauthorized.Headers, h => h.Key.StartsWith("X-RateLimit-", StringComparison.OrdinalIgnoreCase));
        }
        using (var unlimited = await Chat(GatewayFixture.Key))
        {
            Assert.Equal(HttpStatusCode.OK, unlimited.StatusCode);
            Assert.DoesNotContain(unlimited.Headers, h => h.Key.StartsWith("X-RateLimit-", StringComparison.OrdinalIgnoreCase));
        }
        using var models = await Models(GatewayFixture.Key);
        Assert.Equal(HttpStatusCode.OK, models.StatusCode);
        Assert.DoesNotContain(models.Headers, h => h.Key.StartsWith("X-RateLimit-", StringComparison.OrdinalIgnoreCase));
    }
}

public sealed class InProcessRateLimitHeaderTests : RateLimitHeaderTests
{
    protected override string? RedisUrl => null;
}

[Collection(RedisCollection.Name)]
public sealed class RedisRateLimitHeaderTests(RedisFixture redis) : RateLimitHeaderTests
{
    protected override string? RedisUrl => $"redis://{redis.ConnectionString}";
    protected override Task ResetAsync() => redis.FlushAsync();
}
