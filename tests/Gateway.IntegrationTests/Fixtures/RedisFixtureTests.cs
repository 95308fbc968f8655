using System.Diagnostics;
using Gateway.Testing;
using StackExchange.Redis;

namespace Gateway.IntegrationTests.Fixtures;

[Collection(RedisCollection.Name)]
public sealed class RedisFixtureTests(RedisFixture redis) : IAsyncLifetime
{
    public async Task InitializeAsync()
    {
        // A previous test may have stopped the server; every test starts from a running, empty one.
        await redis.StartServerAsync();
        await redis.FlushAsync();
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Set_get_round_trip()
    {
        var db = redis.Connection.GetDatabase();
        Assert.True(await db.StringSetAsync("fixture:key", "value"));
        Assert.Equal("value", (string?)await db.StringGetAsync("fixture:key"));
        Assert.Equal($"127.0.0.1:{redis.Port}", redis.ConnectionString);
    }

    [Fact]
    public async Task Flush_removes_every_key()
    {
        var db = redis.Connection.GetDatabase();
        await db.StringSetAsync("fixture:a", "1");
        await redis.Connection.GetDatabase(3).StringSetAsync("fixture:b", "2");
        await redis.FlushAsync();
        Assert.False(await db.KeyExistsAsync("fixture:a"));
        Assert.False(await redis.Connection.GetDatabase(3).KeyExistsAsync("fixture:b"));
    }

    [Fact]
    public async Task Multiplexer_reconnects_after_server_restart()
    {
        var db = redis.Connection.GetDatabase();
        await db.PingAsync();
        await redis.StopServerAsync();
        Assert.False(redis.IsRunning);

        // The multiplexer notices the dead socket at once.
        var down = Stopwatch.StartNew();
        while (redis.Connection.IsConnected && down.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(50);
        Assert.False(redis.Connection.IsConnected, "the multiplexer still reports a connection 10 s after the server was killed");

        var sw = Stopwatch.StartNew();
        await redis.StartServerAsync();
        Assert.True(redis.IsRunning);

        Exception? last = null;
        while (sw.Elapsed < TimeSpan.FromSeconds(10))
        {
            try
            {
                await db.PingAsync();
                Assert.True(await db.StringSetAsync("fixture:after-restart", "ok"));
                Assert.Equal("ok", (string?)await db.StringGetAsync("fixture:after-restart"));
                Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"reconnect took {sw.Elapsed.TotalSeconds:0.0} s");
                return;
            }
            catch (RedisException e) { last = e; }
            await Task.Delay(100);
        }
        Assert.Fail($"PING did not succeed within 10 s after restart: {last}");
    }
}
