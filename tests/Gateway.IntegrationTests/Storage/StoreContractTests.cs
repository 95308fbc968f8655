using System.Text.Json;
using Gateway.Auth;
using Gateway.Routing;
using Gateway.Storage;

namespace Gateway.IntegrationTests.Storage;

/// <summary>
/// One IStore contract, run against every implementation (<see cref="PostgresStoreContractTests"/>, <see cref="EmbeddedStoreContractTests"/>):
/// the admin API must behave the same in both modes.
/// </summary>
public abstract partial class StoreContractTests : IAsyncLifetime
{
    private IStore? _store;
    protected IStore Store => _store ?? throw new InvalidOperationException("not initialized");

    protected abstract Task<IStore> CreateStoreAsync();

    public async Task InitializeAsync() => _store = await CreateStoreAsync();

    public async Task DisposeAsync()
    {
        if (_store is not null) await _store.DisposeAsync();
    }

    internal static NewModel Model(string name = "llama-3") => new()
    {
        Name = name,
        ModelId = "meta-llama/Llama-3.1-70B-Instruct",
        DefaultParams = """{"temperature": 0.7, "max_tokens": 4096}""",
        ReasoningConfig = """{"enabled": true}""",
        Transforms = """{"system_prompt_prefix": "You are a helpful assistant."}""",
    };

    internal static NewKey Key(string name = "dev", string? plaintext = null)
    {
        var key = plaintext ?? ApiKey.Generate();
        return new NewKey { KeyHash = ApiKey.HashHex(key), KeyPrefix = ApiKey.DisplayPrefix(key), Name = name };
    }

    private static void AssertJson(string expected, string actual) =>
        Assert.True(JsonElement.DeepEquals(JsonDocument.Parse(expected).RootElement, JsonDocument.Parse(actual).RootElement), $"{expected} != {actual}");

    private static async Task<StoreException> Fails(StoreErrorKind kind, Func<Task> action)
    {
        var e = await Assert.ThrowsAsync<StoreException>(action);
        Assert.Equal(kind, e.Kind);
        return e;
    }

    [Fact]
    public async Task Lists_are_empty_not_null_on_a_new_store()
    {
        Assert.Empty(await Store.ListModelsAsync());
        Assert.Empty(await Store.ListKeysAsync());
        var all = await Store.LoadAllAsync();
        Assert.Empty(all.Models);
        Assert.Empty(all.Keys);
    }

    [Fact]
    public async Task Model_create_get_list_round_trip()
    {
        var created = await Store.CreateModelAsync(Model());
        Assert.NotEqual(Guid.Empty, created.Id);
        Assert.Equal("llama-3", created.Name);
        Assert.True(created.Active);
        Assert.Empty(created.Backends);
        AssertJson("""{"temperature":0.7,"max_tokens":4096}""", created.DefaultParams);
        AssertJson("{}", created.RateLimits);

        var got = await Store.GetModelAsync(created.Id);
        Assert.Equal(created.Name, got.Name);
        Assert.Equal(created.CreatedAt, got.CreatedAt);
        AssertJson(created.Transforms, got.Transforms);
        Assert.Equal(created.Id, (await Store.FindModelByNameAsync("llama-3"))!.Id);
        Assert.Null(await Store.FindModelByNameAsync("nope"));

        await Store.CreateModelAsync(Model("alpha"));
        Assert.Equal(["alpha", "llama-3"], (await Store.ListModelsAsync()).Select(m => m.Name));
    }

    [Fact]
    public async Task Duplicate_name_and_rename_onto_existing_name_conflict()
    {
        var a = await Store.CreateModelAsync(Model("a"));
        await Store.CreateModelAsync(Model("b"));
        var e = await Fails(StoreErrorKind.Conflict, () => Store.CreateModelAsync(Model("a")));
        Assert.Equal("name", e.Param);
        await Fails(StoreErrorKind.Conflict, () => Store.UpdateModelAsync(a.Id, new ModelPatch { Name = "b" }));
        Assert.Equal("a", (await Store.GetModelAsync(a.Id)).Name); // nothing changed
        Assert.Equal(2, (await Store.ListModelsAsync()).Count);
    }

    [Theory]
    [InlineData("", "m", "{}", "name")]
    [InlineData("  ", "m", "{}", "name")]
    [InlineData("x", "", "{}", "model_id")]
    [InlineData("x", "m", "[1]", "default_params")]
    [InlineData("x", "m", "{bad", "default_params")]
    public async Task Model_validation(string name, string modelId, string defaults, string param)
    {
        var e = await Fails(StoreErrorKind.Validation,
            () => Store.CreateModelAsync(new NewModel { Name = name, ModelId = modelId, DefaultParams = defaults }));
        Assert.Equal(param, e.Param);
        Assert.Empty(await Store.ListModelsAsync());
    }

    [Fact]
    public async Task Partial_update_changes_only_the_given_fields()
    {
        var m = await Store.CreateModelAsync(Model());
        var u = await Store.UpdateModelAsync(m.Id, new ModelPatch { Active = false, RateLimits = """{"rpm": 10}""" });
        Assert.False(u.Active);
        Assert.Equal(m.Name, u.Name);
        Assert.Equal(m.ModelId, u.ModelId);
        AssertJson(m.DefaultParams, u.DefaultParams);
        AssertJson("""{"rpm":10}""", u.RateLimits);
        Assert.True(u.UpdatedAt >= m.UpdatedAt);
        var renamed = await Store.UpdateModelAsync(m.Id, new ModelPatch { Name = "renamed" });
        Assert.False(renamed.Active);
        Assert.Null(await Store.FindModelByNameAsync("llama-3"));
    }

    [Fact]
    public async Task Unknown_ids_are_not_found()
    {
        var id = Guid.NewGuid();
        await Fails(StoreErrorKind.NotFound, () => Store.GetModelAsync(id));
        await Fails(StoreErrorKind.NotFound, () => Store.UpdateModelAsync(id, new ModelPatch { Active = false }));
        await Fails(StoreErrorKind.NotFound, () => Store.DeleteModelAsync(id));
        await Fails(StoreErrorKind.NotFound, () => Store.AddBackendAsync(id, new NewBackend { Url = "http://127.0.0.1:8000" }));
        await Fails(StoreErrorKind.NotFound, () => Store.GetKeyAsync(id));
        await Fails(StoreErrorKind.NotFound, () => Store.UpdateKeyAsync(id, new KeyPatch { Name = "x" }));
        await Fails(StoreErrorKind.NotFound, () => Store.RevokeKeyAsync(id));
        Assert.Throws<StoreException>(() => StoreValidation.ParseId("not-a-uuid", "model"));
    }

    [Fact]
    public async Task Backends_are_scoped_to_their_model()
    {
        var m = await Store.CreateModelAsync(Model("m"));
        var other = await Store.CreateModelAsync(Model("other"));
        var b = await Store.AddBackendAsync(m.Id, new NewBackend { Url = "http://127.0.0.1:8001/", Weight = 3 });
        Assert.Equal("http://127.0.0.1:8001", b.Url); // trailing slash normalized
        Assert.Equal(3, b.Weight);
        Assert.True(b.Active);
        Assert.True(b.Healthy);
        Assert.Equal(m.Id, b.ModelId);

        await Fails(StoreErrorKind.NotFound, () => Store.UpdateBackendAsync(other.Id, b.Id, new BackendPatch { Weight = 2 }));
        await Fails(StoreErrorKind.NotFound, () => Store.DeleteBackendAsync(other.Id, b.Id));
        await Fails(StoreErrorKind.NotFound, () => Store.DeleteBackendAsync(m.Id, Guid.NewGuid()));

        var u = await Store.UpdateBackendAsync(m.Id, b.Id, new BackendPatch { Weight = 5, Active = false });
        Assert.Equal(5, u.Weight);
        Assert.False(u.Active);
        Assert.Equal(b.Url, u.Url);
        var h = await Store.UpdateBackendAsync(m.Id, b.Id, new BackendPatch { Healthy = false });
        Assert.False(h.Healthy);
        Assert.NotNull(h.LastHealthCheck);

        await Store.AddBackendAsync(m.Id, new NewBackend { Url = "http://127.0.0.1:8000" });
        Assert.Equal(["http://127.0.0.1:8000", "http://127.0.0.1:8001"], (await Store.GetModelAsync(m.Id)).Backends.Select(x => x.Url));
        Assert.Empty((await Store.GetModelAsync(other.Id)).Backends);

        await Store.DeleteBackendAsync(m.Id, b.Id);
        Assert.Single((await Store.GetModelAsync(m.Id)).Backends);
    }

    [Fact]
    public async Task Duplicate_backend_url_conflicts_within_a_model_only()
    {
        var m = await Store.CreateModelAsync(Model("m"));
        var other = await Store.CreateModelAsync(Model("other"));
        await Store.AddBackendAsync(m.Id, new NewBackend { Url = "http://127.0.0.1:8000" });
        var second = await Store.AddBackendAsync(m.Id, new NewBackend { Url = "http://127.0.0.1:8002" });
        var e = await Fails(StoreErrorKind.Conflict, () => Store.AddBackendAsync(m.Id, new NewBackend { Url = "http://127.0.0.1:8000/" }));
        Assert.Equal("url", e.Param);
        await Fails(StoreErrorKind.Conflict, () => Store.UpdateBackendAsync(m.Id, second.Id, new BackendPatch { Url = "http://127.0.0.1:8000" }));
        await Store.AddBackendAsync(other.Id, new NewBackend { Url = "http://127.0.0.1:8000" }); // another model may use it
    }

    [Theory]
    [InlineData("ftp://127.0.0.1:21", 1, "url")]
    [InlineData("127.0.0.1:8000", 1, "url")]
    [InlineData("http://", 1, "url")]
    [InlineData("", 1, "url")]
    [InlineData("http://127.0.0.1:8000", 0, "weight")]
    [InlineData("http://127.0.0.1:8000", -4, "weight")]
    public async Task Backend_validation(string url, int weight, string param)
    {
        var m = await Store.CreateModelAsync(Model("m"));
        var e = await Fails(StoreErrorKind.Validation, () => Store.AddBackendAsync(m.Id, new NewBackend { Url = url, Weight = weight }));
        Assert.Equal(param, e.Param);
        Assert.Empty((await Store.GetModelAsync(m.Id)).Backends);
    }

    [Fact]
    public async Task Deleting_a_model_deletes_its_backends()
    {
        var m = await Store.CreateModelAsync(Model("m"));
        var b = await Store.AddBackendAsync(m.Id, new NewBackend { Url = "http://127.0.0.1:8000" });
        await Store.DeleteModelAsync(m.Id);
        await Fails(StoreErrorKind.NotFound, () => Store.GetModelAsync(m.Id));
        await Fails(StoreErrorKind.NotFound, () => Store.UpdateBackendAsync(m.Id, b.Id, new BackendPatch { Weight = 2 }));
        Assert.Empty((await Store.LoadAllAsync()).Models);
        // The name is free again.
        await Store.CreateModelAsync(Model("m"));
    }

    [Fact]
    public async Task Keys_create_get_update_revoke()
    {
        var plaintext = ApiKey.Generate();
        var expires = new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.FromHours(2));
        var k = await Store.CreateKeyAsync(Key("svc", plaintext) with { RpmLimit = 120, TpmLimit = 500_000, AllowedModels = ["llama-3"], ExpiresAt = expires });
        Assert.Equal(ApiKey.HashHex(plaintext), k.KeyHash);
        Assert.Equal(plaintext[..ApiKey.PrefixLength], k.KeyPrefix);
        Assert.True(k.Active);
        Assert.Equal(120, k.RpmLimit);
        Assert.Equal(["llama-3"], k.AllowedModels);
        Assert.Equal(expires, k.ExpiresAt);
        Assert.Equal(TimeSpan.Zero, k.ExpiresAt!.Value.Offset);
        Assert.Null(k.LastUsedAt);

        Assert.Equal(k.Id, (await Store.FindKeyByHashAsync(k.KeyHash))!.Id);
        Assert.Null(await Store.FindKeyByHashAsync(ApiKey.HashHex(ApiKey.Generate())));

        var u = await Store.UpdateKeyAsync(k.Id, new KeyPatch { RpmLimit = new Set<long?>(null), AllowedModels = [], Name = "svc2" });
        Assert.Null(u.RpmLimit);
        Assert.Equal(500_000, u.TpmLimit); // untouched
        Assert.Empty(u.AllowedModels);
        Assert.Equal("svc2", u.Name);
        Assert.Equal(expires, u.ExpiresAt);

        var cleared = await Store.UpdateKeyAsync(k.Id, new KeyPatch { ExpiresAt = new Set<DateTimeOffset?>(null) });
        Assert.Null(cleared.ExpiresAt);

        var revoked = await Store.RevokeKeyAsync(k.Id);
        Assert.False(revoked.Active);
        Assert.False((await Store.GetKeyAsync(k.Id)).Active); // soft: the row stays
        Assert.Single(await Store.ListKeysAsync());
    }

    [Fact]
    public async Task Keys_reject_duplicate_hash_and_bad_input()
    {
        var key = Key("a");
        await Store.CreateKeyAsync(key);
        var e = await Fails(StoreErrorKind.Conflict, () => Store.CreateKeyAsync(key with { Name = "b" }));
        Assert.Equal("key_hash", e.Param);
        await Fails(StoreErrorKind.Validation, () => Store.CreateKeyAsync(Key() with { KeyHash = "abc" }));
        await Fails(StoreErrorKind.Validation, () => Store.CreateKeyAsync(Key() with { Name = "" }));
        await Fails(StoreErrorKind.Validation, () => Store.CreateKeyAsync(Key() with { RpmLimit = 0 }));
        await Fails(StoreErrorKind.Validation, () => Store.CreateKeyAsync(Key() with { AllowedModels = [""] }));
        Assert.Single(await Store.ListKeysAsync());
    }

    [Fact]
    public async Task Keys_list_in_creation_order()
    {
        var first = await Store.CreateKeyAsync(Key("first"));
        var second = await Store.CreateKeyAsync(Key("second"));
        Assert.Equal([first.Id, second.Id], (await Store.ListKeysAsync()).Select(k => k.Id));
    }

    [Fact]
    public async Task Snapshot_built_from_the_store_serves_models_and_keys()
    {
        var m = await Store.CreateModelAsync(Model("llama-3"));
        await Store.AddBackendAsync(m.Id, new NewBackend { Url = "http://127.0.0.1:8000", Weight = 2 });
        await Store.CreateModelAsync(Model("off") with { Active = false });
        var plaintext = ApiKey.Generate();
        var key = await Store.CreateKeyAsync(Key("k", plaintext) with { AllowedModels = ["llama-3"], RpmLimit = 7 });

        var snapshot = await SnapshotBuilder.BuildAsync(Store);
        var entry = snapshot.FindModel("llama-3")!;
        Assert.Equal("meta-llama/Llama-3.1-70B-Instruct", entry.ModelId);
        Assert.True(entry.EnableThinking);
        Assert.NotNull(entry.SystemPrefixEscaped);
        // jsonb does not keep member order; the set of defaults is what matters.
        Assert.Equal(["max_tokens", "temperature"], entry.DefaultParams.Select(p => p.Name).Order(StringComparer.Ordinal));
        var backend = Assert.Single(entry.Backends);
        Assert.Equal(2, backend.Weight);
        Assert.False(snapshot.FindModel("off")!.Active);

        var k = snapshot.FindKey(ApiKey.Hash(System.Text.Encoding.ASCII.GetBytes(plaintext)))!;
        Assert.Equal(key.Id.ToString("D"), k.Id);
        Assert.True(k.Allows("llama-3"));
        Assert.False(k.Allows("off"));
        Assert.Equal(7, k.RpmLimit);

        var next = SnapshotBuilder.FromStore(await Store.LoadAllAsync(), snapshot);
        Assert.Equal(snapshot.Version + 1, next.Version);
        Assert.Same(entry.Balancer.GetType(), next.FindModel("llama-3")!.Balancer.GetType());
    }

    [Fact]
    public async Task Backend_health_reports_update_matching_backends_only()
    {
        var m = await Store.CreateModelAsync(Model());
        var up = await Store.AddBackendAsync(m.Id, new NewBackend { Url = "http://10.0.0.1:8000" });
        var down = await Store.AddBackendAsync(m.Id, new NewBackend { Url = "http://10.0.0.2:8000" });
        var at = new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
        await Store.RecordBackendHealthAsync(
        [
            new BackendHealthReport(m.ModelId, up.Url, true, at),
            new BackendHealthReport(m.ModelId, down.Url, false, at),
            new BackendHealthReport("another/model", up.Url, false, at), // another model's backend: untouched
            new BackendHealthReport(m.ModelId, "http://10.0.0.3:8000", false, at), // no such backend: ignored
        ]);
        var after = (await Store.GetModelAsync(m.Id)).Backends;
        var u = Assert.Single(after, b => b.Id == up.Id);
        var d = Assert.Single(after, b => b.Id == down.Id);
        Assert.True(u.Healthy);
        Assert.False(d.Healthy);
        Assert.Equal(at, u.LastHealthCheck);
        Assert.Equal(at, d.LastHealthCheck);
        Assert.Equal(down.UpdatedAt, d.UpdatedAt); // health is not an admin change
        await Store.RecordBackendHealthAsync([]);
    }
}
