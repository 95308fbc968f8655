using System.Diagnostics;
using System.Net;
using Gateway.Auth;
using Gateway.Config;
using Gateway.Http;
using Gateway.IntegrationTests.Fixtures;
using Gateway.Simulation;
using Gateway.Testing;
using Xunit.Abstractions;

namespace Gateway.IntegrationTests.Limits;

/// <summary>Two gateway instances on one real Redis: one key's limit holds exactly across both, and Redis going away fails open.</summary>
[Collection(RedisCollection.Name)]
public sealed class ScaledOutRateLimitTests(RedisFixture redis, ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly string Key = ApiKey.Generate();
    private VllmSimulator _sim = null!;
    private GatewayHost _a = null!, _b = null!;

    public async Task InitializeAsync()
    {
        await redis.FlushAsync();
        _sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Tokens = 4 });
        var options = GatewayFixture.BuildOptions(_sim.BaseUrl) with
        {
            RedisUrl = $"redis://{redis.ConnectionString}/0",
            // Generous: this test is about exactness, and a loaded 2-core machine can stall Redis replies past a production timeout
            // (which would fail open and let extra requests through). Redis being down fails fast regardless of this value.
            RateLimiterTimeout = TimeSpan.FromSeconds(5),
            Keys = [new KeyConfig { Name = "shared", KeyHashHex = ApiKey.HashHex(Key), RpmLimit = 100, TpmLimit = 10_000_000 }],
        };
        _a = new GatewayHost(options, Stream.Null);
        _b = new GatewayHost(options, Stream.Null);
        await _a.StartAsync();
        await _b.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _a.DisposeAsync();
        await _b.DisposeAsync();
        await _sim.DisposeAsync();
    }

    [Fact]
    public async Task Exactly_the_limit_succeeds_across_two_instances()
    {
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 });
        int ok = 0, limited = 0, other = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, 1000).Select(async i =>
        {
            var gateway = i % 2 == 0 ? _a : _b;
            using var request = GatewayFixture.CreatePost($"http://127.0.0.1:{gateway.Port}/v1/chat/completions", "{\"model\":\"qwen\",\"messages\":[]}", Key);
            using var response = await client.SendAsync(request);
            await response.Content.ReadAsStringAsync();
            if (response.StatusCode == HttpStatusCode.OK) Interlocked.Increment(ref ok);
            else if (response.StatusCode == HttpStatusCode.TooManyRequests) Interlocked.Increment(ref limited);
            else Interlocked.Increment(ref other);
        }));
        output.WriteLine($"1000 concurrent requests over 2 gateways on one Redis, rpm=100: {ok} succeeded, {limited} got 429, {other} other, {clock.ElapsedMilliseconds} ms");
        Assert.Equal(100, ok);
        Assert.Equal(900, limited);
        Assert.Equal(100, _sim.RequestCount);
    }

    [Fact]
    public async Task Redis_down_means_no_client_errors_and_limiting_resumes_when_it_returns()
    {
        using var client = new HttpClient();
        async Task<HttpStatusCode> Send(GatewayHost g)
        {
            using var request = GatewayFixture.CreatePost($"http://127.0.0.1:{g.Port}/v1/chat/completions", "{\"model\":\"qwen\",\"messages\":[]}", Key);
            using var response = await client.SendAsync(request);
            await response.Content.ReadAsStringAsync();
            return response.StatusCode;
        }
        await redis.StopServerAsync();
        int errors = 0;
        try
        {
            for (int i = 0; i < 200; i++)
                if (await Send(i % 2 == 0 ? _a : _b) != HttpStatusCode.OK) errors++;
        }
        finally { await redis.StartServerAsync(); }
        output.WriteLine($"200 requests with Redis stopped (rpm=100): {errors} client errors");
        Assert.Equal(0, errors); // fail-open: more than the limit got through, none failed
        using (var scrape = await client.GetAsync($"http://127.0.0.1:{_a.Port}/metrics"))
            Assert.DoesNotContain("gateway_rate_limiter_errors_total 0", await scrape.Content.ReadAsStringAsync());

        // Limiting resumes: within a few seconds the 101st request in the window is refused again.
        var deadline = Stopwatch.StartNew();
        bool limitedAgain = false;
        while (!limitedAgain && deadline.Elapsed < TimeSpan.FromSeconds(20))
            limitedAgain = await Send(_a) == HttpStatusCode.TooManyRequests;
        Assert.True(limitedAgain);
    }
}
