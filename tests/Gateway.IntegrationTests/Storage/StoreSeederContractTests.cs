using Gateway.Auth;
using Gateway.Config;
using Gateway.Routing;
using Gateway.Storage;

namespace Gateway.IntegrationTests.Storage;

// Seeding is part of the contract: both stores must end in the same state from the same gateway.toml.
public abstract partial class StoreContractTests
{
    private const string DemoKey = "ml-0000000000000000000000000000000000000000000000000000000000000001";

    private static GatewayOptions Config(int weight, string secondUrl) => ConfigLoader.Load($$"""
        [[models]]
        name = "qwen"
        model_id = "Qwen/Qwen2.5-7B-Instruct"
        default_params = { temperature = 0.7 }
        reasoning_config = { enable_thinking = false }
        transforms = { system_prompt_prefix = "You are terse." }
        lb = "p2c"
          [[models.backends]]
          url = "http://127.0.0.1:8000"
          weight = {{weight}}
          [[models.backends]]
          url = "{{secondUrl}}"

        [[keys]]
        name = "demo"
        key = "{{DemoKey}}"
        allowed_models = ["qwen"]
        rpm_limit = 600
        """, "test.toml", new Dictionary<string, string?>());

    [Fact]
    public async Task Seeding_is_idempotent_and_config_wins_for_named_entries()
    {
        var adminModel = await Store.CreateModelAsync(Model("admin-made"));
        await StoreSeeder.SeedAsync(Store, Config(1, "http://127.0.0.1:8001"));
        await StoreSeeder.SeedAsync(Store, Config(1, "http://127.0.0.1:8001")); // a restart: nothing new
        var models = await Store.ListModelsAsync();
        Assert.Equal(["admin-made", "qwen"], models.Select(m => m.Name));
        var qwen = models[1];
        Assert.Equal(2, qwen.Backends.Count);
        Assert.Single(await Store.ListKeysAsync());

        // An admin edit to a config entry is overwritten at the next start; backends follow the file (matched by url).
        await Store.UpdateModelAsync(qwen.Id, new ModelPatch { ModelId = "changed", Active = false });
        var key = Assert.Single(await Store.ListKeysAsync());
        await Store.RevokeKeyAsync(key.Id);
        await StoreSeeder.SeedAsync(Store, Config(4, "http://127.0.0.1:8002"));

        var reseeded = (await Store.FindModelByNameAsync("qwen"))!;
        Assert.Equal(qwen.Id, reseeded.Id);
        Assert.Equal("Qwen/Qwen2.5-7B-Instruct", reseeded.ModelId);
        Assert.True(reseeded.Active);
        Assert.Equal(["http://127.0.0.1:8000", "http://127.0.0.1:8002"], reseeded.Backends.Select(b => b.Url));
        Assert.Equal(4, reseeded.Backends[0].Weight);
        Assert.Equal(qwen.Backends[0].Id, reseeded.Backends[0].Id);
        var seededKey = Assert.Single(await Store.ListKeysAsync());
        Assert.Equal(key.Id, seededKey.Id);
        Assert.True(seededKey.Active);
        Assert.Equal(600, seededKey.RpmLimit);
        Assert.Equal(adminModel.Id, (await Store.FindModelByNameAsync("admin-made"))!.Id); // untouched

        // The seeded store serves what the config file alone would have served.
        var fromStore = await SnapshotBuilder.BuildAsync(Store);
        var fromConfig = Snapshot.FromConfig(Config(4, "http://127.0.0.1:8002"));
        var a = fromStore.FindModel("qwen")!;
        var b = fromConfig.FindModel("qwen")!;
        Assert.Equal(b.ModelIdJson, a.ModelIdJson);
        Assert.Equal(b.EnableThinking, a.EnableThinking);
        Assert.Equal(b.SystemPrefixEscaped, a.SystemPrefixEscaped);
        Assert.Equal(b.DefaultParams.Select(p => p.Member), a.DefaultParams.Select(p => p.Member));
        Assert.Equal(b.Backends.Select(x => (x.Url, x.Weight)), a.Backends.Select(x => (x.Url, x.Weight)));
        Assert.IsType<LeastOutstanding>(b.Balancer);
        Assert.IsType<LeastOutstanding>(a.Balancer); // stored as transforms.lb
        Assert.Equal("p2c", System.Text.Json.JsonDocument.Parse(reseeded.Transforms).RootElement.GetProperty("lb").GetString());
        var hash = ApiKey.Hash(System.Text.Encoding.ASCII.GetBytes(DemoKey));
        Assert.True(fromStore.FindKey(hash)!.Allows("qwen"));
        Assert.Equal(fromConfig.FindKey(hash)!.RpmLimit, fromStore.FindKey(hash)!.RpmLimit);
    }

    [Fact]
    public async Task Concurrent_writers_lose_nothing_and_one_name_wins()
    {
        var distinct = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(() => Store.CreateModelAsync(Model($"m{i}")))));
        Assert.Equal(8, distinct.Select(m => m.Id).Distinct().Count());

        var same = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Task.Run(async () =>
        {
            try { await Store.CreateModelAsync(Model("same")); return "ok"; }
            catch (StoreException e) { return e.Kind.ToString(); }
        })));
        Assert.Equal(1, same.Count(r => r == "ok"));
        Assert.All(same.Where(r => r != "ok"), r => Assert.Equal(nameof(StoreErrorKind.Conflict), r));
        Assert.Equal(9, (await Store.ListModelsAsync()).Count);
    }
}
