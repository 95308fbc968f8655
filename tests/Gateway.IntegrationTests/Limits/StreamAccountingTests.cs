using System.Diagnostics;
using System.Net;
using System.Net.ServerSentEvents;
using System.Text.Json;
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
/// Tokens are charged as they stream: clients that disconnect pay exactly for what was streamed, the upstream stops generating for
/// them, and a key's TPM overshoot is less than one request. Run against both limiters.
/// </summary>
public abstract class StreamAccountingTests(ITestOutputHelper output) : IAsyncLifetime
{
    protected static readonly string Key = ApiKey.Generate();
    private const long Huge = 1_000_000_000;
    private const int Streams = 50, Chunks = 5;
    private VllmSimulator _sim = null!;
    private GatewayHost _gateway = null!;

    protected abstract string? RedisUrl { get; }
    protected virtual Task ResetAsync() => Task.CompletedTask;

    /// <summary>Tokens in the key's TPM window, as the limiter's next check counts them.</summary>
    protected virtual async Task<long> WindowTokensAsync(GatewayHost gateway, string keyId)
    {
        // A check with no request limit records nothing; its remaining tokens give the window's sum.
        var decision = await gateway.Limiter.CheckAsync(new RateRequest(keyId, new RateLimits(0, Huge), null, default));
        return Huge - decision.TokensRemaining;
    }

    public async Task InitializeAsync()
    {
        await ResetAsync();
        _sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, ItlMs = 20, Tokens = 500 });
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

    private static string KeyId(GatewayHost gateway) =>
        gateway.Snapshots.Current!.FindKey(ApiKey.Hash(System.Text.Encoding.ASCII.GetBytes(Key)))!.Id;

    private const string StreamBody =
        """{"model":"qwen","stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true},"messages":[{"role":"user","content":"count to two hundred"}]}""";

    /// <summary>What one client saw before it left: the cumulative usage of its last chunk, and when it aborted.</summary>
    private readonly record struct Leaver(string RequestId, long TokensSeen, long LeftAt);

    /// <summary>50 clients each read <see cref="Chunks"/> content chunks, then abort their connection at the same time.</summary>
    private async Task<Leaver[]> LeaveMidStreamAsync()
    {
        using var client = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0, MaxConnectionsPerServer = Streams })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{_gateway.Port}"),
            Timeout = TimeSpan.FromSeconds(60),
        };
        return await Task.WhenAll(Enumerable.Range(0, Streams).Select(async i =>
        {
            var id = $"leaver-{i}";
            using var request = GatewayFixture.CreatePost("/v1/chat/completions", StreamBody, Key);
            request.Headers.Add(GatewayHeaders.RequestId, id);
            var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var stuck = new CancellationTokenSource(TimeSpan.FromSeconds(60)); // a broken stream fails the test, never hangs it
            int content = 0;
            long seen = 0;
            await foreach (var item in SseParser.Create(await response.Content.ReadAsStreamAsync()).EnumerateAsync(stuck.Token))
            {
                using var chunk = JsonDocument.Parse(item.Data);
                seen = chunk.RootElement.GetProperty("usage").GetProperty("total_tokens").GetInt64();
                if (item.Data.Contains("\"content\":\"tok", StringComparison.Ordinal) && ++content == Chunks) break;
            }
            long left = Stopwatch.GetTimestamp();
            response.Dispose(); // unread body, no drain: the connection closes
            return new Leaver(id, seen, left);
        }));
    }

    /// <summary>Waits until the simulator has seen every leaver go; returns each one's notice latency in ms, in leaver order.</summary>
    private async Task<double[]> UpstreamCancelLatenciesAsync(Leaver[] leavers)
    {
        var wait = Stopwatch.StartNew();
        while (_sim.CancelledStreams < leavers.Length && wait.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(10);
        var noticed = _sim.Cancellations.Where(c => c.RequestId is not null).ToDictionary(c => c.RequestId!, c => c.Timestamp);
        var missing = leavers.Where(l => !noticed.ContainsKey(l.RequestId)).Select(l => l.RequestId).ToList();
        Assert.True(missing.Count == 0,
            $"{_sim.CancelledStreams} of {leavers.Length} upstream streams were cancelled after {wait.ElapsedMilliseconds} ms; not: {string.Join(", ", missing)}");
        Assert.Equal(0, _sim.StatsFor(GatewayFixture.ModelId).Success); // not one ran to its end
        return leavers.Select(l => Stopwatch.GetElapsedTime(l.LeftAt, noticed[l.RequestId]).TotalMilliseconds).ToArray();
    }

    /// <summary>Prompt + completion tokens the gateway relayed, from its own counters, once every request has been accounted.</summary>
    private async Task<long> RelayedTokensAsync(int requests)
    {
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_gateway.Port}") };
        var wait = Stopwatch.StartNew();
        while (true)
        {
            var scrape = PrometheusText.Parse(await client.GetStringAsync("/metrics"));
            if (scrape.Value("gateway_requests_total", ("model", "qwen")) >= requests || wait.Elapsed > TimeSpan.FromSeconds(10))
                return (long)(scrape.Value("gateway_prompt_tokens_total", ("model", "qwen")) + scrape.Value("gateway_completion_tokens_total", ("model", "qwen")));
            await Task.Delay(20);
        }
    }

    /// <summary>The window once it equals <paramref name="expected"/> (charges may still be on their way), or what it holds after 10 s.</summary>
    private async Task<long> SettledWindowAsync(GatewayHost gateway, long expected)
    {
        long charged = 0;
        for (var wait = Stopwatch.StartNew(); wait.Elapsed < TimeSpan.FromSeconds(10); await Task.Delay(20))
            if ((charged = await WindowTokensAsync(gateway, KeyId(gateway))) == expected) break;
        return charged;
    }

    private static string Latencies(double[] ms)
    {
        var sorted = ms.Order().ToArray();
        return $"p50 {sorted[sorted.Length / 2]:0} ms, p95 {sorted[(int)(sorted.Length * 0.95)]:0} ms, max {sorted[^1]:0} ms";
    }

    [Fact]
    public async Task Fifty_clients_leaving_mid_stream_stop_their_upstream_streams_and_pay_for_what_was_relayed()
    {
        // The upstream keeps generating (a token every 20 ms, 10 s per stream) while the clients leave: some chunks are in flight.
        var leavers = await LeaveMidStreamAsync();
        var latencies = await UpstreamCancelLatenciesAsync(leavers);

        long relayed = await RelayedTokensAsync(Streams);
        long charged = await SettledWindowAsync(_gateway, relayed);
        long clientsSaw = leavers.Sum(l => l.TokensSeen), upstreamSent = _sim.ReportedUsageTokens;
        output.WriteLine($"{Streams} clients left after {Chunks} chunks; the upstream noticed each: {Latencies(latencies)}");
        output.WriteLine($"tokens: expected (relayed by the gateway) {relayed}, charged {charged}; clients saw {clientsSaw}, upstream sent {upstreamSent}");
        // Generous: well under the 10 s a stream would run if its cancel got lost. The target is 100 ms and the measured values are
        // printed; a cold test process starting other collections' fixtures in parallel on 2 cores has been seen at ~1 s.
        Assert.All(latencies, ms => Assert.InRange(ms, 0, 5000));
        Assert.Equal(relayed, charged);
        // The gateway can relay no less than the clients saw, nor more than the upstream sent.
        Assert.InRange(charged, clientsSaw, upstreamSent);
    }

    [Fact]
    public async Task Fifty_clients_leaving_a_stalled_stream_pay_exactly_the_tokens_they_received()
    {
        // Nothing is in flight when the clients leave: what they saw, what the gateway relayed and what the upstream generated
        // must all be the same number, and the window must hold exactly that.
        _sim.Options.StallAfterTokens = Chunks;
        var leavers = await LeaveMidStreamAsync();
        var latencies = await UpstreamCancelLatenciesAsync(leavers);

        long expected = leavers.Sum(l => l.TokensSeen);
        long charged = await SettledWindowAsync(_gateway, expected);
        long relayed = await RelayedTokensAsync(Streams);
        output.WriteLine($"{Streams} clients left a stream stalled after {Chunks} tokens; the upstream noticed each: {Latencies(latencies)}");
        output.WriteLine($"tokens: expected (what the clients received) {expected}, charged {charged}; relayed {relayed}, upstream sent {_sim.ReportedUsageTokens}");
        Assert.All(leavers, l => Assert.True(l.TokensSeen > Chunks, $"{l.RequestId} saw no prompt tokens in its usage"));
        Assert.Equal(expected, charged);
        Assert.Equal(expected, relayed);
        Assert.Equal(expected, _sim.ReportedUsageTokens);
    }

    [Fact]
    public async Task Tpm_is_exact_and_overshoots_by_less_than_the_last_request()
    {
        const long tpm = 100; // each request: a few prompt tokens + 20 completion tokens
        _sim.Options.ItlMs = 0;
        _sim.Options.Tokens = 20;
        await using var gateway = new GatewayHost(Options(_sim.BaseUrl, tpm), Stream.Null);
        await gateway.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{gateway.Port}") };
        long used = 0, last = 0;
        int ok = 0;
        while (true)
        {
            using var request = GatewayFixture.CreatePost("/v1/chat/completions",
                """{"model":"qwen","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello there"}]}""", Key);
            using var response = await client.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            if (response.StatusCode == HttpStatusCode.TooManyRequests) break;
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            // Each request was admitted because the window held less than the limit, counting every earlier request's tokens.
            Assert.True(used < tpm, $"request {ok + 1} was admitted with {used} tokens in a window of {tpm}");
            var usage = body.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal) && l.Contains("\"choices\":[]", StringComparison.Ordinal)).Single();
            using (var doc = JsonDocument.Parse(usage[6..])) last = doc.RootElement.GetProperty("usage").GetProperty("total_tokens").GetInt64();
            used += last;
            ok++;
        }
        long charged = await SettledWindowAsync(gateway, used);
        output.WriteLine($"tpm={tpm}: {ok} requests admitted, refused at {used} tokens used; expected {used}, charged {charged}, overshoot {used - tpm} (last request {last})");
        Assert.Equal(used, charged);
        Assert.True(used >= tpm, $"refused with {used} tokens in a window of {tpm}");
        Assert.InRange(used - tpm, 0, last - 1);
    }
}

public sealed class InProcessStreamAccountingTests(ITestOutputHelper output) : StreamAccountingTests(output)
{
    protected override string? RedisUrl => null;
}

[Collection(RedisCollection.Name)]
public sealed class RedisStreamAccountingTests(RedisFixture redis, ITestOutputHelper output) : StreamAccountingTests(output)
{
    protected override string? RedisUrl => $"redis://{redis.ConnectionString}";
    protected override Task ResetAsync() => redis.FlushAsync();

    /// <summary>What the other instances see: the tokens in the key's sorted set in Redis (members are "unique:tokens").</summary>
    protected override async Task<long> WindowTokensAsync(GatewayHost gateway, string keyId)
    {
        var members = await redis.Connection.GetDatabase().SortedSetRangeByRankAsync($"ratelimit:tpm:{{{keyId}}}");
        return members.Sum(m => long.Parse(((string)m!)[(((string)m!).LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }
}
