using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Gateway.Config;

namespace Gateway.IntegrationTests.Admin;

/// <summary>
/// <c>last_used_at</c>: a use is only remembered on the request path; the key writer persists it (a round, or the stop) and the
/// admin API shows what was persisted. BaseOptions sets a 1 h round, so nothing is written unless a test asks for it.
/// </summary>
public abstract partial class AdminApiContract
{
    protected async Task<DateTimeOffset?> LastUsed(string id)
    {
        var value = Expect(200, await Get($"/admin/v1/keys/{id}")).GetProperty("last_used_at");
        if (value.ValueKind == JsonValueKind.Null) return null;
        Assert.True(Rfc3339.TryParse(value.GetString(), out var at), $"not RFC 3339: {value}");
        return at;
    }

    protected Task<int> FlushKeyUsage() => Gateway.KeyUsageWriter!.FlushAsync();

    /// <summary>The stores keep microseconds.</summary>
    private static DateTimeOffset Micros(DateTimeOffset t) => new(t.UtcTicks - t.UtcTicks % 10, TimeSpan.Zero);

    private async Task<string> ConfigKeyId() =>
        Expect(200, await Get("/admin/v1/keys")).EnumerateArray().Single(k => k.GetProperty("name").GetString() == "cfg-key")
            .GetProperty("id").GetString()!;

    [Fact]
    public async Task Last_used_at_is_written_by_a_flush_for_used_keys_only()
    {
        await ServedModel();
        var (used, usedId) = await CreateKey("""{"name":"used"}""");
        var (_, unusedId) = await CreateKey("""{"name":"unused"}""");
        var configId = await ConfigKeyId();
        var before = DateTimeOffset.UtcNow;
        Assert.Equal(200, (await Chat(used)).Status);
        Assert.Equal(200, (await V1Models(ConfigKey)).Status); // a gateway.toml key, used through GET /v1/models
        var after = DateTimeOffset.UtcNow;
        Assert.Null(await LastUsed(usedId)); // the request path wrote nothing to the store

        Assert.Equal(2, await FlushKeyUsage());
        Assert.InRange(await LastUsed(usedId) ?? default, Micros(before), after);
        Assert.InRange(await LastUsed(configId) ?? default, Micros(before), after);
        Assert.Null(await LastUsed(unusedId));
    }

    [Fact]
    public async Task Last_used_at_moves_forward_with_a_later_use()
    {
        var (key, id) = await CreateKey();
        Assert.Equal(200, (await V1Models(key)).Status);
        Assert.Equal(1, await FlushKeyUsage());
        var first = await LastUsed(id);
        Assert.NotNull(first);
        Assert.Equal(0, await FlushKeyUsage()); // no use since: nothing to write

        await Task.Delay(20);
        Assert.Equal(200, (await V1Models(key)).Status);
        Assert.Equal(1, await FlushKeyUsage());
        Assert.True(await LastUsed(id) > first, "a later use moves last_used_at forward");
    }

    [Fact]
    public async Task Stopping_the_gateway_writes_pending_last_used_at()
    {
        var (key, id) = await CreateKey();
        var before = DateTimeOffset.UtcNow;
        Assert.Equal(200, (await V1Models(key)).Status);
        await StopGatewayAsync(); // no round ran (1 h): only the stop writes it

        await using var store = await OpenStoreAsync();
        Assert.True((await store.GetKeyAsync(Guid.Parse(id))).LastUsedAt >= Micros(before));
    }

    [Fact]
    public async Task Last_used_at_survives_a_restart_also_for_a_config_key()
    {
        var (key, id) = await CreateKey();
        var configId = await ConfigKeyId();
        Assert.Equal(200, (await V1Models(key)).Status);
        Assert.Equal(200, (await V1Models(ConfigKey)).Status);
        Assert.Equal(2, await FlushKeyUsage());
        var (used, config) = (await LastUsed(id), await LastUsed(configId));

        await StartGatewayAsync(); // stops, reopens the store and seeds gateway.toml's key again
        Assert.NotNull(used);
        Assert.Equal(used, await LastUsed(id));
        Assert.NotNull(config);
        Assert.Equal(config, await LastUsed(configId));
    }

    [Fact]
    public async Task Rounds_write_last_used_at_and_retry_after_a_store_failure_with_one_warning_per_round()
    {
        var (key, id) = await CreateKey();
        var interval = TimeSpan.FromMilliseconds(100);
        var log = new MemoryStream();
        await StartGatewayAsync(o => o with { KeyLastUsedFlushInterval = interval }, log);
        Assert.Equal(200, (await V1Models(key)).Status);
        var first = await Until(id, t => t is not null);

        await InterruptStoreAsync();
        var broken = Stopwatch.StartNew();
        await Task.Delay(20);
        Assert.Equal(200, (await V1Models(key)).Status); // served from the snapshot; its time cannot be written yet
        await Task.Delay(interval * 6);
        await ResumeStoreAsync();
        broken.Stop();
        await Until(id, t => t > first); // a later round writes it: the failure lost nothing

        await StopGatewayAsync();
        var warnings = Encoding.UTF8.GetString(log.ToArray()).Split('\n').Count(l => l.Contains("key last-use times not written", StringComparison.Ordinal));
        Assert.InRange(warnings, 1, (int)(broken.Elapsed / interval) + 2); // a timer tick late by a round fires at once, once
    }

    private async Task<DateTimeOffset?> Until(string id, Func<DateTimeOffset?, bool> done)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var at = await LastUsed(id);
            if (done(at)) return at;
            if (clock.Elapsed > TimeSpan.FromSeconds(15)) throw new TimeoutException($"last_used_at still {at?.ToString("O") ?? "null"}");
            await Task.Delay(50);
        }
    }
}
