using Gateway.Auth;
using Gateway.Config;
using Gateway.Routing;
using Gateway.Storage;
using Microsoft.Extensions.Primitives;

namespace Gateway.Tests.Auth;

/// <summary>The request path's half of <c>last_used_at</c>: a timestamp in a per-key slot, nothing else.</summary>
public sealed class KeyUsageTests
{
    private static readonly DateTimeOffset T = new(2026, 11, 27, 10, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Touch_keeps_the_latest_time_and_never_moves_back()
    {
        var usage = new KeyUsage(Guid.NewGuid());
        Assert.Equal(0, usage.LastUsedTicks);
        usage.Touch(T);
        Assert.Equal(T.UtcTicks, usage.LastUsedTicks);
        usage.Touch(T.AddSeconds(-1)); // a request that read the clock earlier and got here later
        Assert.Equal(T.UtcTicks, usage.LastUsedTicks);
        usage.Touch(T.AddTicks(TimeSpan.TicksPerMillisecond / 2)); // within the resolution: the line is not written again
        Assert.Equal(T.UtcTicks, usage.LastUsedTicks);
        usage.Touch(T.AddMilliseconds(2));
        Assert.Equal(T.AddMilliseconds(2).UtcTicks, usage.LastUsedTicks);
    }

    [Fact]
    public void A_stored_key_keeps_one_slot_across_snapshots()
    {
        var id = Guid.NewGuid();
        var contents = new StoreContents([], [new StoredKey(id, ApiKey.HashHex(Key), "ml-1", "k", true, null, null, [], null, T, null)]);
        var registry = new KeyUsageRegistry();
        var first = SnapshotBuilder.FromStore(contents, usage: registry);
        var second = SnapshotBuilder.FromStore(contents, first, usage: registry);
        var a = first.FindKey(Hash)!;
        var b = second.FindKey(Hash)!;
        Assert.NotSame(a, b);
        Assert.Same(a.Usage, b.Usage); // a use recorded just before a swap is still there to flush
        Assert.Equal(id, a.Usage.KeyId);
        Assert.Same(a.Usage, Assert.Single(registry.All));
        Assert.Equal(Guid.Empty, SnapshotBuilder.FromStore(contents).FindKey(Hash)!.Usage.KeyId); // no registry: not persisted
    }

    private static readonly string Key = "ml-" + new string('4', 64);
    private static readonly string Revoked = "ml-" + new string('5', 64);
    private static KeyHash Hash => ApiKey.Hash(System.Text.Encoding.ASCII.GetBytes(Key));

    private static SnapshotHolder Holder(out KeyEntry good, out KeyEntry revoked)
    {
        good = KeyEntry.Create(new KeyConfig { Name = "good", KeyHashHex = ApiKey.HashHex(Key) });
        revoked = KeyEntry.Create(new KeyConfig { Name = "revoked", KeyHashHex = ApiKey.HashHex(Revoked), Active = false });
        var holder = new SnapshotHolder();
        holder.Swap(new Snapshot([], [good, revoked], 1));
        return holder;
    }

    [Fact]
    public async Task Authenticating_records_a_use_of_an_admitted_key_only()
    {
        var holder = Holder(out var good, out var revoked);
        var before = DateTimeOffset.UtcNow.UtcTicks;
        var (error, key, _) = await Authenticator.AuthenticateAsync(new StringValues("Bearer " + Key), holder, null);
        Assert.Null(error);
        Assert.Same(good, key);
        Assert.InRange(good.Usage.LastUsedTicks, before, DateTimeOffset.UtcNow.UtcTicks);

        var (refused, _, _) = await Authenticator.AuthenticateAsync(new StringValues("Bearer " + Revoked), holder, null);
        Assert.NotNull(refused);
        Assert.Equal(0, revoked.Usage.LastUsedTicks); // a refused key was not used
    }

    [Fact]
    public void Recording_a_use_allocates_nothing()
    {
        var holder = Holder(out var good, out _);
        var header = new StringValues("Bearer " + Key);
        // The least of a few rounds: the JIT moving a method up a tier may allocate once, in any round.
        long least = long.MaxValue;
        for (int round = 0; round < 5 && least > 0; round++)
        {
            long allocated = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 10_000; i++) _ = Authenticator.AuthenticateAsync(header, holder, null);
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - allocated);
        }
        Assert.Equal(0, least);
        Assert.NotEqual(0, good.Usage.LastUsedTicks);
    }
}
