using System.Diagnostics;
using System.Net;
using System.Net.ServerSentEvents;
using Gateway.Auth;
using Gateway.Config;
using Gateway.Http;
using Gateway.IntegrationTests.Fixtures;
using Gateway.Limits;
using Gateway.Simulation;
using Gateway.Testing;
using Xunit.Abstractions;

namespace Gateway.IntegrationTests.Limits;

/// <summary>
/// Tokens are charged as they stream: clients that disconnect pay exactly for what was streamed, and a key's TPM overshoot is
/// bounded by one request. Run against both limiters.
/// </summary>
public abstract class StreamAccountingTests(ITestOutputHelper output) : IAsyncLifetime
{
    protected static readonly string Key = ApiKey.Generate();
    private const long Huge = 1_000_000_000;
    private VllmSimulator _sim = null!;
    private GatewayHost _gateway = null!;

    protected abstract string? RedisUrl { get; }
    /// <summary>How many requests' tokens the TPM window may overshoot by: charges that are still on their way do not count yet.</summary>
    protected abstract int OvershootRequests { get; }
    protected virtual Task ResetAsync() => Task.CompletedTask;

    public async Task InitializeAsync()
    {
        await ResetAsync();
        _sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, ItlMs = 20, Tokens = 200 });
        _gateway = new GatewayHost(Options(_sim.BaseUrl, tpm: Huge), Stream.Null);
        await _gateway.StartAsync();
    }

    private GatewayOptions Options(string simUrl, long tpm) => GatewayFixture.BuildOptions(simUrl) with
    {
        RedisUrl = RedisUrl,
        RateLimiterTimeout = TimeSpan.FromSeconds(1),
        Keys = [new KeyConfig { Name = "metered", KeyHashHex = ApiKey.HashHex(Key), TpmLimit = tpm }],
    };

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _sim.DisposeAsync();
    }

    /// <summary>Tokens in the key's window, read through the limiter itself (a check with no request limit records nothing).</summary>
    private static async Task<long> ChargedAsync(GatewayHost gateway, long tpm)
    {
        var key = gateway.Snapshots.Current!.FindKey(ApiKey.Hash(System.Text.Encoding.ASCII.GetBytes(Key)))!;
        var decision = await gateway.Limiter.CheckAsync(new RateRequest(key.Id, new RateLimits(0, tpm), null, default));
        return tpm - decision.TokensRemaining;
    }

    [Fact]
    public async Task Clients_that_leave_mid_stream_are_charged_exactly_what_was_streamed_and_the_upstream_stops()
    {
        const int streams = 50, chunks = 5;
        using var client = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0, MaxConnectionsPerServer = streams })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{_gateway.Port}"),
        };
        long lastLeft = 0;
        await Task.WhenAll(Enumerable.Range(0, streams).Select(async _ =>
        {
            using var request = GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"count to two hundred\"}]}", Key);
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            int content = 0;
            await foreach (var item in SseParser.Create(await response.Content.ReadAsStreamAsync()).EnumerateAsync())
                if (item.Data.Contains("\"content\":\"tok") && ++content == chunks) break;
            Interlocked.Exchange(ref lastLeft, Stopwatch.GetTimestamp());
        })); // each response is disposed here: the client is gone

        var wait = Stopwatch.StartNew();
        while (_sim.CancelledStreams < streams && wait.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(5);
        var cancelLatency = Stopwatch.GetElapsedTime(Interlocked.Read(ref lastLeft));
        Assert.True(streams == _sim.CancelledStreams,
            $"{_sim.CancelledStreams} of {streams} upstream streams were cancelled ({_sim.RequestCount} requests, waited {wait.ElapsedMilliseconds} ms)");

        // What the gateway relayed (its own token counters) must be exactly what it charged. Charges may still be on their way
        // (the Redis writer batches): wait until the window matches.
        var scrape = await client.GetStringAsync("/metrics");
        long relayed = Counter(scrape, "gateway_prompt_tokens_total") + Counter(scrape, "gateway_completion_tokens_total");
        long charged = 0;
        for (var settle = Stopwatch.StartNew(); settle.Elapsed < TimeSpan.FromSeconds(5); await Task.Delay(50))
            if ((charged = await ChargedAsync(_gateway, Huge)) == relayed) break;
        long upstream = _sim.ReportedUsageTokens;
        output.WriteLine($"{streams} streams left after {chunks} chunks: upstream saw every cancel within {cancelLatency.TotalMilliseconds:0} ms " +
                         $"of the last client leaving; tokens the upstream put on the wire {upstream}, relayed {relayed}, charged {charged}");
        Assert.True(cancelLatency < TimeSpan.FromSeconds(1), $"cancel took {cancelLatency.TotalMilliseconds} ms");
        Assert.Equal(relayed, charged);
        // Chunks the upstream sent while the cancel was on its way are generated but never seen by the gateway: never charged more
        // than was streamed, and less only by what one ITL (20 ms) per stream and the measured cancel latency let through.
        Assert.InRange(upstream - charged, 0, streams * (1 + (long)(cancelLatency.TotalMilliseconds / 20)));
    }

    private static long Counter(string scrape, string name) =>
        scrape.Split('\n').Where(l => l.StartsWith(name + "{model=\"qwen\"}", StringComparison.Ordinal))
            .Sum(l => (long)double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));

    [Fact]
    public async Task Tpm_overshoot_is_at_most_one_requests_tokens()
    {
        const long tpm = 100; // each request: ~5 prompt + 20 completion tokens
        _sim.Options.ItlMs = 0;
        _sim.Options.Tokens = 20;
        await using var gateway = new GatewayHost(Options(_sim.BaseUrl, tpm), Stream.Null);
        await gateway.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{gateway.Port}") };
        int ok = 0;
        while (true)
        {
            using var request = GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}", Key);
            using var response = await client.SendAsync(request);
            await response.Content.ReadAsStringAsync();
            if (response.StatusCode == HttpStatusCode.TooManyRequests) break;
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.True(++ok < 20, "never limited");
        }
        long charged = await ChargedAsync(gateway, Huge * 1000);
        long perRequest = charged / ok;
        output.WriteLine($"tpm={tpm}: {ok} requests passed, {charged} tokens charged, overshoot {charged - tpm} (one request ≈ {perRequest})");
        Assert.InRange(charged - tpm, 0, OvershootRequests * perRequest);
    }
}

public sealed class InProcessStreamAccountingTests(ITestOutputHelper output) : StreamAccountingTests(output)
{
    protected override string? RedisUrl => null;
    protected override int OvershootRequests => 1; // charges land synchronously
}

[Collection(RedisCollection.Name)]
public sealed class RedisStreamAccountingTests(RedisFixture redis, ITestOutputHelper output) : StreamAccountingTests(output)
{
    protected override string? RedisUrl => $"redis://{redis.ConnectionString}";
    // The last charge of a request goes through the batched writer; the client's next request can be checked before it lands.
    protected override int OvershootRequests => 2;
    protected override Task ResetAsync() => redis.FlushAsync();
}
