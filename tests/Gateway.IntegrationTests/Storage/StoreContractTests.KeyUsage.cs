using Gateway.Storage;

namespace Gateway.IntegrationTests.Storage;

/// <summary><c>last_used_at</c>: moved only forward by usage reports, whichever instance's report arrives last.</summary>
public abstract partial class StoreContractTests
{
    [Fact]
    public async Task Key_usage_moves_last_used_at_forward_and_never_back()
    {
        var used = await Store.CreateKeyAsync(Key("used"));
        var unused = await Store.CreateKeyAsync(Key("unused"));
        var t1 = new DateTimeOffset(2026, 11, 27, 10, 0, 0, TimeSpan.Zero).AddTicks(1_234_560); // microseconds survive
        await Store.RecordKeyUsageAsync([new KeyUsageReport(used.Id, t1), new KeyUsageReport(Guid.NewGuid(), t1)]); // unknown id: ignored
        Assert.Equal(t1, (await Store.GetKeyAsync(used.Id)).LastUsedAt);
        Assert.Null((await Store.GetKeyAsync(unused.Id)).LastUsedAt);

        // Another instance's older report, flushed after the newer one: the newer stays.
        await Store.RecordKeyUsageAsync([new KeyUsageReport(used.Id, t1.AddMinutes(-5))]);
        Assert.Equal(t1, (await Store.GetKeyAsync(used.Id)).LastUsedAt);

        var t2 = t1.AddSeconds(3);
        await Store.RecordKeyUsageAsync([new KeyUsageReport(used.Id, t2)]);
        var after = await Store.GetKeyAsync(used.Id);
        Assert.Equal(t2, after.LastUsedAt);
        Assert.Equal(t2, Assert.Single((await Store.LoadAllAsync()).Keys, k => k.Id == used.Id).LastUsedAt);
        // Not an admin change: the rest of the key is as it was.
        Assert.Equal((used.Name, used.Active, used.KeyHash, used.CreatedAt), (after.Name, after.Active, after.KeyHash, after.CreatedAt));
        Assert.Null((await Store.GetKeyAsync(unused.Id)).LastUsedAt);
        await Store.RecordKeyUsageAsync([]);
    }
}
