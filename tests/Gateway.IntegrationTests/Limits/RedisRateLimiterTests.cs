using System.Diagnostics;
using Gateway.IntegrationTests.Fixtures;
using Gateway.Limits;
using Gateway.Limits.Resp;
using Gateway.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace Gateway.IntegrationTests.Limits;

/// <summary>The limiter on StackExchange.Redis (<c>redis.limiter_client = "stackexchange"</c>, and rediss:// URLs).</summary>
[Collection(RedisCollection.Name)]
public sealed class RedisRateLimiterTests(RedisFixture redis, ITestOutputHelper output) : RedisRateLimiterContract(redis, output)
{
    protected override RedisRateLimiter Create(TimeSpan window, TimeSpan timeout, Action<string>? log) => new(Redis.Connection, window, timeout, log);
}

/// <summary>The limiter on the gateway's own RESP client (<c>redis.limiter_client = "loop"</c>, the default).</summary>
[Collection(RedisCollection.Name)]
public sealed class LoopRedisRateLimiterTests(RedisFixture redis, ITestOutputHelper output) : RedisRateLimiterContract(redis, output)
{
    protected override RedisRateLimiter Create(TimeSpan window, TimeSpan timeout, Action<string>? log) =>
        new(RespEndpoint.TryParse(Redis.ConnectionString)!, window, timeout, log);
}

/// <summary>The Redis limiter on a real Redis server: exact limits, across instances, with fail-open when Redis goes away; run on each client.</summary>
public abstract class RedisRateLimiterContract(RedisFixture redis, ITestOutputHelper output) : IAsyncLifetime
{
    protected RedisFixture Redis => redis;

    public Task InitializeAsync() => redis.FlushAsync();
    public Task DisposeAsync() => Task.CompletedTask;

    protected abstract RedisRateLimiter Create(TimeSpan window, TimeSpan timeout, Action<string>? log);

    private RedisRateLimiter Limiter(TimeSpan? window = null, Action<string>? log = null, TimeSpan? timeout = null) =>
        Create(window ?? TimeSpan.FromSeconds(60), timeout ?? TimeSpan.FromSeconds(2), log ?? output.WriteLine);

    /// <summary>How many times the server ran these commands since it started (INFO commandstats).</summary>
    private long CommandCalls(params string[] commands)
    {
        var server = redis.Connection.GetServer(redis.Connection.GetEndPoints()[0]);
        return server.Info("commandstats").SelectMany(g => g).Where(p => commands.Any(c => p.Key == "cmdstat_" + c))
            .Sum(p => long.Parse(p.Value.Split(',')[0].Split('=')[1], System.Globalization.CultureInfo.InvariantCulture));
    }

    private static RateRequest Key(long rpm, long tpm, string id = "k1") => new(id, new RateLimits(rpm, tpm), null, default);

    [Fact]
    public async Task The_third_request_at_rpm_2_is_refused_with_a_retry_after_that_matches_the_window()
    {
        await using var limiter = Limiter();
        var first = await limiter.CheckAsync(Key(2, 0));
        Assert.True(first.Allowed);
        Assert.Equal(1, first.RequestsRemaining);
        Assert.InRange(first.RequestsReset.TotalSeconds, 59, 60);
        Assert.True((await limiter.CheckAsync(Key(2, 0))).Allowed);
        var third = await limiter.CheckAsync(Key(2, 0));
        Assert.False(third.Allowed);
        Assert.Equal(LimitViolation.KeyRequests, third.Violation);
        Assert.Equal(0, third.RequestsRemaining);
        Assert.InRange(third.RetryAfter.TotalSeconds, 58, 60);
    }

    [Fact]
    public async Task Limits_reset_after_a_short_window()
    {
        await using var limiter = Limiter(TimeSpan.FromMilliseconds(400));
        Assert.True((await limiter.CheckAsync(Key(1, 0))).Allowed);
        Assert.False((await limiter.CheckAsync(Key(1, 0))).Allowed);
        await Task.Delay(450);
        Assert.True((await limiter.CheckAsync(Key(1, 0))).Allowed);
    }

    [Fact]
    public async Task Charged_tokens_push_the_next_request_over_the_tpm_limit_and_are_flushed_on_dispose()
    {
        var r = Key(0, 100);
        await using (var writer = Limiter())
        {
            Assert.True((await writer.CheckAsync(r)).Allowed);
            for (int i = 0; i < 10; i++) writer.ChargeTokens(r, 7); // live deltas
            writer.ChargeTokens(r, 30);
        } // dispose flushes the queue
        await using var limiter = Limiter();
        var d = await limiter.CheckAsync(r);
        Assert.False(d.Allowed);
        Assert.Equal(LimitViolation.KeyTokens, d.Violation);
        Assert.Equal(0, d.TokensRemaining);
    }

    [Fact]
    public async Task Charges_made_while_one_is_in_flight_go_together_and_none_is_lost()
    {
        var r = Key(0, 1000, "batched");
        await using (var limiter = Limiter())
        {
            Assert.Equal(1000, (await limiter.CheckAsync(r)).TokensRemaining); // loads the script
            long before = CommandCalls("evalsha", "eval");
            for (int i = 0; i < 100; i++) limiter.ChargeTokens(r, 1); // the first goes at once; the rest wait for its reply
            await limiter.DisposeAsync(); // waits for every charge to be answered
            long calls = CommandCalls("evalsha", "eval") - before;
            output.WriteLine($"100 charges of one scope → {calls} script calls");
            Assert.InRange(calls, 2, 10);
        }
        await using var next = Limiter();
        Assert.Equal(900, (await next.CheckAsync(r)).TokensRemaining);
    }

    [Fact]
    public async Task A_model_limit_is_enforced_as_a_second_scope()
    {
        await using var limiter = Limiter();
        var r = new RateRequest("k1", new RateLimits(100, 0), "qwen", new RateLimits(1, 0));
        Assert.True((await limiter.CheckAsync(r)).Allowed);
        var refused = await limiter.CheckAsync(r);
        Assert.Equal(LimitViolation.ModelRequests, refused.Violation);
        var other = await limiter.CheckAsync(r with { Model = "other" });
        Assert.True(other.Allowed);
        Assert.Equal(98, other.RequestsRemaining); // the refused request did not count against the key
    }

    [Fact]
    public async Task Two_instances_let_exactly_the_limit_through()
    {
        await using var a = Limiter();
        await using var b = Limiter();
        int allowed = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, 1000).Select(i => Task.Run(async () =>
        {
            var d = await (i % 2 == 0 ? a : b).CheckAsync(Key(100, 0, "shared"));
            if (d.Allowed) Interlocked.Increment(ref allowed);
        })));
        output.WriteLine($"1000 concurrent checks over 2 instances, rpm=100: {allowed} allowed in {clock.ElapsedMilliseconds} ms");
        Assert.Equal(100, allowed);
        Assert.Equal(0, a.Errors + b.Errors);
    }

    [Fact]
    public async Task One_round_trip_per_check()
    {
        await using var limiter = Limiter();
        await limiter.CheckAsync(Key(10, 10)); // loads the script
        long Calls() => CommandCalls("evalsha", "eval");
        long before = Calls();
        for (int i = 0; i < 50; i++) await limiter.CheckAsync(Key(1000, 1000));
        long calls = Calls() - before;
        output.WriteLine($"50 checks → {calls} script calls");
        Assert.Equal(50, calls);
    }

    [Fact]
    public async Task Redis_down_fails_open_counts_errors_and_recovers()
    {
        var logs = new List<string>();
        await using var limiter = Limiter(log: m => { lock (logs) logs.Add(m); }, timeout: TimeSpan.FromMilliseconds(200));
        Assert.True((await limiter.CheckAsync(Key(1, 0))).Allowed);
        await redis.StopServerAsync();
        try
        {
            for (int i = 0; i < 5; i++)
            {
                var d = await limiter.CheckAsync(Key(1, 0));
                Assert.True(d.Allowed);
                Assert.False(d.HasHeaders);
            }
            Assert.True(limiter.Errors >= 5);
            Assert.Single(logs); // once per interval, not once per request
        }
        finally
        {
            await redis.StartServerAsync();
        }
        var deadline = Stopwatch.StartNew();
        RateDecision after;
        do { after = await limiter.CheckAsync(Key(1, 0, "fresh")); } while (!after.HasHeaders && deadline.Elapsed < TimeSpan.FromSeconds(15));
        Assert.True(after.HasHeaders, "limiting resumed after Redis came back");
        Assert.False((await limiter.CheckAsync(Key(1, 0, "fresh"))).Allowed);
    }

    // The running total of a key's token window: a hash {t = tokens, n = entries} beside the sorted set of charges.
    private async Task<(long Tokens, long Entries)?> TotalAsync(string keyId)
    {
        var fields = await redis.Connection.GetDatabase().HashGetAsync($"ratelimit:tpm-total:{{{keyId}}}", ["t", "n"]);
        return fields[0].IsNull ? null : ((long)fields[0], (long)fields[1]);
    }

    /// <summary>Puts charge entries straight into a key's token set, scored <paramref name="ageMs"/> ago, as another writer would.</summary>
    private async Task SeedAsync(string keyId, long ageMs, params string[] members)
    {
        var db = redis.Connection.GetDatabase();
        long at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - ageMs; // Redis runs on this machine: the same clock as its TIME
        await db.SortedSetAddAsync($"ratelimit:tpm:{{{keyId}}}", members.Select(m => new SortedSetEntry(m, at)).ToArray());
        await db.KeyExpireAsync($"ratelimit:tpm:{{{keyId}}}", TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task A_token_set_without_its_running_total_is_added_up_once_and_the_total_kept_from_then_on()
    {
        // A window written before the running total existed: 300 entries of 2 tokens.
        await SeedAsync("legacy", 0, Enumerable.Range(0, 300).Select(i => $"old-{i}:2").ToArray());
        var r = Key(0, 1000, "legacy");
        await using (var early = Limiter()) early.ChargeTokens(r, 50); // flushed on dispose
        Assert.Null(await TotalAsync("legacy")); // a charge alone does not start a total of part of the set
        await using (var limiter = Limiter())
        {
            Assert.Equal(350, (await limiter.CheckAsync(r)).TokensRemaining);
            Assert.Equal((650, 301), await TotalAsync("legacy"));
            limiter.ChargeTokens(r, 50);
        }
        Assert.Equal((700, 302), await TotalAsync("legacy")); // kept by the charge
        long before = CommandCalls("zrange");
        await using var next = Limiter();
        for (int i = 0; i < 10; i++) Assert.Equal(300, (await next.CheckAsync(r)).TokensRemaining);
        Assert.Equal(10, CommandCalls("zrange") - before); // one ZRANGE per check (the oldest entry, for the reset), never the whole set again
    }

    [Fact]
    public async Task Entries_leaving_the_window_leave_the_running_total()
    {
        var r = Key(0, 1000, "sliding");
        await SeedAsync("sliding", 0, "a-1:100");
        await using var limiter = Limiter();
        Assert.Equal(900, (await limiter.CheckAsync(r)).TokensRemaining); // adds the set up: (100, 1)
        await SeedAsync("sliding", 61_000, "a-2:30"); // an entry already out of the 60 s window …
        Assert.Equal(900, (await limiter.CheckAsync(r)).TokensRemaining); // … is not counted (the set is added up again: n was off)
        Assert.Equal((100, 1), await TotalAsync("sliding"));
        await SeedAsync("sliding", 61_000, "a-3:40");
        await redis.Connection.GetDatabase().HashIncrementAsync("ratelimit:tpm-total:{sliding}", "t", 40);
        await redis.Connection.GetDatabase().HashIncrementAsync("ratelimit:tpm-total:{sliding}", "n", 1); // in step, as a charge keeps it
        Assert.Equal(900, (await limiter.CheckAsync(r)).TokensRemaining); // the expired entry leaves the total
        Assert.Equal((100, 1), await TotalAsync("sliding"));
        Assert.Equal(1, await redis.Connection.GetDatabase().SortedSetLengthAsync("ratelimit:tpm:{sliding}"));
    }

    [Fact]
    public async Task A_total_out_of_step_with_its_set_is_added_up_again()
    {
        var db = redis.Connection.GetDatabase();
        var r = Key(0, 1000, "shared");
        await SeedAsync("shared", 0, "a-1:100");
        await using var limiter = Limiter();
        Assert.Equal(900, (await limiter.CheckAsync(r)).TokensRemaining);
        await SeedAsync("shared", 0, "older-build-1:30"); // charged by an older build, which does not keep the total
        Assert.Equal(870, (await limiter.CheckAsync(r)).TokensRemaining);
        Assert.Equal((130, 2), await TotalAsync("shared"));
        await db.KeyDeleteAsync("ratelimit:tpm:{shared}"); // the set evicted, the total not
        await SeedAsync("shared", 0, "a-2:5");
        Assert.Equal(995, (await limiter.CheckAsync(r)).TokensRemaining);
        Assert.Equal((5, 1), await TotalAsync("shared"));
    }

    [Fact]
    public async Task The_total_lives_at_most_as_long_as_its_set_and_a_charge_does_not_extend_it()
    {
        var db = redis.Connection.GetDatabase();
        var r = Key(0, 1000, "ttl");
        await SeedAsync("ttl", 0, "a-1:10");
        await db.KeyExpireAsync("ratelimit:tpm:{ttl}", TimeSpan.FromSeconds(5));
        await using (var limiter = Limiter())
        {
            await limiter.CheckAsync(r); // adds the set up; the total expires with the set, at most a window from now
            limiter.ChargeTokens(r, 20);
        }
        Assert.InRange((await db.KeyTimeToLiveAsync("ratelimit:tpm:{ttl}"))!.Value.TotalSeconds, 55, 60); // the charge extended the set …
        Assert.InRange((await db.KeyTimeToLiveAsync("ratelimit:tpm-total:{ttl}"))!.Value.TotalSeconds, 0.1, 5); // … not the total
        Assert.Equal((30, 2), await TotalAsync("ttl"));
    }

    [Fact]
    public async Task A_charge_sent_twice_counts_its_tokens_once()
    {
        var db = redis.Connection.GetDatabase();
        RedisKey[] keys = ["ratelimit:tpm:{twice}", "ratelimit:tpm-total:{twice}"];
        await db.ScriptEvaluateAsync(RedisScripts.Charge, keys, [60_000, "instance-0:10"]);
        await using (var limiter = Limiter()) Assert.Equal(990, (await limiter.CheckAsync(Key(0, 1000, "twice"))).TokensRemaining); // total (10, 1)
        for (int i = 0; i < 2; i++) await db.ScriptEvaluateAsync(RedisScripts.Charge, keys, [60_000, "instance-1:40"]); // a resend after a reconnect
        Assert.Equal((50, 2), await TotalAsync("twice"));
        await using var next = Limiter();
        Assert.Equal(950, (await next.CheckAsync(Key(0, 1000, "twice"))).TokensRemaining);
    }

    [Fact]
    public async Task Checks_and_charges_go_on_when_redis_has_lost_its_scripts()
    {
        var db = redis.Connection.GetDatabase();
        Task Flush() => db.ExecuteAsync("SCRIPT", "FLUSH"); // what a Redis restart does to the script cache
        var r = Key(5, 1000, "flushed");
        await Flush();
        await using (var limiter = Limiter())
        {
            var first = await limiter.CheckAsync(r); // by hash: NOSCRIPT, then the text
            Assert.True(first.HasHeaders && first.Allowed);
            Assert.Equal(4, first.RequestsRemaining);
            await Flush();
            limiter.ChargeTokens(r, 40); // by hash: NOSCRIPT, then the text (flushed on dispose)
            Assert.Equal(0, limiter.Errors);
        }
        await using var next = Limiter();
        var after = await next.CheckAsync(r);
        Assert.Equal(3, after.RequestsRemaining);
        Assert.Equal(960, after.TokensRemaining);
        Assert.Equal(0, next.Errors);
    }
}
