using System.Diagnostics;
using Gateway.IntegrationTests.Fixtures;
using Gateway.Limits;
using Gateway.Limits.Resp;
using Gateway.Testing;
using Xunit.Abstractions;

namespace Gateway.IntegrationTests.Limits;

/// <summary>What the loop client adds to the limiter's contract: login from the URL, and fail-open without waiting on a gone or hung Redis.</summary>
[Collection(RedisCollection.Name)]
public sealed class LoopRedisClientTests(RedisFixture redis, ITestOutputHelper output) : IAsyncLifetime
{
    public Task InitializeAsync() => redis.FlushAsync();
    public Task DisposeAsync() => Task.CompletedTask;

    private RedisRateLimiter Limiter(string url, TimeSpan timeout, List<string>? logs = null) =>
        new(RespEndpoint.TryParse(url)!, TimeSpan.FromSeconds(60), timeout, m =>
        {
            output.WriteLine(m);
            if (logs is not null) lock (logs) logs.Add(m);
        });

    private static RateRequest Key(long rpm, string id) => new(id, new RateLimits(rpm, 0), null, default);

    /// <summary>Checks until one is limited again (headers) or 15 s pass.</summary>
    private static async Task<bool> RecoversAsync(RedisRateLimiter limiter, string id)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(15))
        {
            if ((await limiter.CheckAsync(Key(1, id))).HasHeaders) return true;
            await Task.Delay(20);
        }
        return false;
    }

    [Fact]
    public async Task A_stopped_redis_fails_checks_open_at_once_and_a_restarted_one_is_used_again()
    {
        var timeout = TimeSpan.FromSeconds(1);
        await using var limiter = Limiter(redis.ConnectionString, timeout);
        Assert.True((await limiter.CheckAsync(Key(1, "a"))).HasHeaders);
        await redis.StopServerAsync();
        try
        {
            for (int i = 0; i < 20; i++)
            {
                var clock = Stopwatch.StartNew();
                var d = await limiter.CheckAsync(Key(1, "a"));
                Assert.True(d.Allowed && !d.HasHeaders);
                Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(300), $"check {i} took {clock.ElapsedMilliseconds} ms with Redis down");
                await Task.Delay(20); // spans reconnect attempts (refused)
            }
            Assert.False(limiter.LoopClient!.IsConnected);
        }
        finally { await redis.StartServerAsync(); }
        Assert.True(await RecoversAsync(limiter, "b"), "limiting resumed after Redis came back");
        Assert.False((await limiter.CheckAsync(Key(1, "b"))).Allowed);
        Assert.Equal(2, limiter.LoopClient!.Connects);
    }

    [Fact]
    public async Task A_hung_redis_fails_checks_open_within_the_timeout_and_is_used_again_when_it_wakes()
    {
        var timeout = TimeSpan.FromMilliseconds(200);
        await using var limiter = Limiter(redis.ConnectionString, timeout);
        Assert.True((await limiter.CheckAsync(Key(1, "hung"))).HasHeaders);
        await Task.Delay(300); // the sweep finds nothing waiting and stops: the next check must start it again
        await redis.HangServerAsync();
        try
        {
            var hung = Stopwatch.StartNew();
            while (hung.Elapsed < TimeSpan.FromSeconds(1.6)) // past the 1 s stall limit: the connection is opened again
            {
                var clock = Stopwatch.StartNew();
                var d = await limiter.CheckAsync(Key(1, "hung")).AsTask().WaitAsync(TimeSpan.FromSeconds(5)); // fail, not hang, with Redis stopped
                Assert.True(d.Allowed && !d.HasHeaders);
                // The sweep runs every 50 ms at most (timeout / 2 here: 100 ms); the rest is slack for a loaded machine.
                Assert.True(clock.Elapsed < timeout + TimeSpan.FromMilliseconds(250), $"a check took {clock.ElapsedMilliseconds} ms");
            }
        }
        finally { await redis.ResumeServerAsync(); }
        Assert.True(await RecoversAsync(limiter, "woke"), "limiting resumed after Redis woke");
        var next = await limiter.CheckAsync(Key(1, "woke")); // late replies were dropped, not handed to later checks
        Assert.True(next.HasHeaders);
        Assert.False(next.Allowed);
        Assert.True(limiter.LoopClient!.Connects >= 2, "a stalled connection is replaced");
        Assert.True(limiter.Errors > 0);
    }

    [Fact]
    public async Task Past_the_in_flight_bound_a_check_fails_open_at_once()
    {
        // A long timeout: neither the sweep nor the stall limit steps in while Redis is hung; only the bound does.
        await using var limiter = Limiter(redis.ConnectionString, TimeSpan.FromSeconds(30));
        Assert.True((await limiter.CheckAsync(Key(1_000_000, "busy"))).HasHeaders);
        var waiting = new List<Task<RateDecision>>();
        await redis.HangServerAsync();
        try
        {
            for (int i = 0; i < RespClient.MaxInFlight; i++) waiting.Add(limiter.CheckAsync(Key(1_000_000, "busy")).AsTask());
            var clock = Stopwatch.StartNew();
            var over = await limiter.CheckAsync(Key(1_000_000, "busy")).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
            Assert.True(over.Allowed && !over.HasHeaders); // failed open, not queued behind the others
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"took {clock.ElapsedMilliseconds} ms");
            Assert.DoesNotContain(waiting, t => t.IsCompleted); // those wait for Redis
        }
        finally { await redis.ResumeServerAsync(); }
        var answered = await Task.WhenAll(waiting).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(answered, d => Assert.True(d.HasHeaders)); // every one of them got Redis's answer once it woke
    }

    [Fact]
    public async Task The_url_database_is_selected()
    {
        await using var limiter = Limiter($"redis://{redis.ConnectionString}/3", TimeSpan.FromSeconds(2));
        Assert.True((await limiter.CheckAsync(Key(5, "db"))).HasHeaders);
        Assert.True(await redis.Connection.GetDatabase(3).KeyExistsAsync("ratelimit:rpm:{db}"));
        Assert.False(await redis.Connection.GetDatabase(0).KeyExistsAsync("ratelimit:rpm:{db}"));
    }

    [Fact]
    public async Task A_password_in_the_url_logs_in_and_a_wrong_one_fails_open_with_the_reason()
    {
        await using var secured = new RedisFixture { Password = "s3cr3t" };
        await secured.InitializeAsync();
        await using (var limiter = Limiter($"redis://:s3cr3t@127.0.0.1:{secured.Port}", TimeSpan.FromSeconds(2)))
            Assert.True((await limiter.CheckAsync(Key(5, "pw"))).HasHeaders);
        await using (var limiter = Limiter($"redis://default:s3cr3t@127.0.0.1:{secured.Port}", TimeSpan.FromSeconds(2))) // ACL user + password
            Assert.True((await limiter.CheckAsync(Key(5, "pw"))).HasHeaders);
        var logs = new List<string>();
        await using (var limiter = Limiter($"redis://:wrong@127.0.0.1:{secured.Port}", TimeSpan.FromSeconds(2), logs))
        {
            Assert.False((await limiter.CheckAsync(Key(5, "pw"))).HasHeaders);
            Assert.Contains("AUTH failed", Assert.Single(logs));
        }
        await using (var limiter = Limiter($"redis://127.0.0.1:{secured.Port}", TimeSpan.FromSeconds(2))) // no password: NOAUTH, fail-open
            Assert.False((await limiter.CheckAsync(Key(5, "pw"))).HasHeaders);
    }
}
