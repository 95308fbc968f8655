using Gateway.IntegrationTests.Fixtures;
using Gateway.Storage;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Storage;

/// <summary>The IStore contract on a fresh, migrated PostgreSQL database per test.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresStoreContractTests(PostgresFixture pg) : StoreContractTests
{
    private string _db = "";

    protected override async Task<IStore> CreateStoreAsync()
    {
        var connectionString = _db = await pg.CreateDatabaseAsync();
        await using (var ds = DatabaseUrl.CreateDataSource(connectionString, 2))
            await new Migrator(ds).UpAsync();
        return PostgresStore.Open(connectionString, 4);
    }

    /// <summary>Ends every other session on the database, as a restart does: each gets 57P01 and its socket closes.</summary>
    private async Task<long> EndPooledConnectionsAsync()
    {
        await using var admin = DatabaseUrl.CreateDataSource(_db, 1);
        await using var kill = admin.CreateCommand(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");
        long ended = (long)(await kill.ExecuteScalarAsync())!;
        // pg_terminate_backend only signals: wait until the sessions are gone, so their goodbye is in our sockets.
        await using var left = admin.CreateCommand("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");
        for (int i = 0; i < 100 && (long)(await left.ExecuteScalarAsync())! > 0; i++) await Task.Delay(20);
        return ended;
    }

    [Fact]
    public async Task Calls_after_the_server_ended_the_pooled_connections_succeed()
    {
        await using var dataSource = DatabaseUrl.CreateDataSource(_db, 4);
        await using var store = new PostgresStore(dataSource);
        async Task FillPoolThenEndItAsync()
        {
            // A busy moment leaves four idle connections in the pool; then the server ends them all (a restart).
            await Gateway.IntegrationTests.Control.PostgresOutageTests.FillPoolAsync(dataSource);
            Assert.True(await EndPooledConnectionsAsync() >= 4);
        }
        await FillPoolThenEndItAsync();
        var model = await store.CreateModelAsync(Model("after-restart")); // a write: the server said it ended the session, nothing ran
        await FillPoolThenEndItAsync();
        Assert.Contains(await store.ListModelsAsync(), m => m.Id == model.Id);
        await FillPoolThenEndItAsync();
        Assert.Null(await store.FindKeyByHashAsync(Gateway.Auth.ApiKey.HashHex(Gateway.Auth.ApiKey.Generate())));
    }

    [Fact]
    public async Task Instances_that_seed_a_fresh_database_at_the_same_moment_all_start()
    {
        var options = Gateway.Config.ConfigLoader.Load("""
            [[models]]
            name = "qwen"
            model_id = "Qwen/Qwen2.5-7B-Instruct"
              [[models.backends]]
              url = "http://127.0.0.1:8000"
              [[models.backends]]
              url = "http://127.0.0.1:8001"
            [[keys]]
            name = "demo"
            key = "ml-0000000000000000000000000000000000000000000000000000000000000001"
            """, "test.toml", new Dictionary<string, string?>());
        for (int round = 0; round < 5; round++) // the race is a matter of timing: several fresh databases
        {
            var connectionString = await pg.CreateDatabaseAsync();
            await using (var ds = DatabaseUrl.CreateDataSource(connectionString, 2))
                await new Migrator(ds).UpAsync();
            var stores = Enumerable.Range(0, 3).Select(_ => PostgresStore.Open(connectionString, 2)).ToArray();
            try
            {
                await Task.WhenAll(stores.Select(s => StoreSeeder.SeedAsync(s, options)));
                var model = Assert.Single(await stores[0].ListModelsAsync());
                Assert.Equal(2, model.Backends.Count);
                Assert.Single(await stores[0].ListKeysAsync());
            }
            finally
            {
                foreach (var s in stores) await s.DisposeAsync();
            }
        }
    }
}

/// <summary>The IStore contract on an embedded state file in a temp directory per test.</summary>
public sealed class EmbeddedStoreContractTests : StoreContractTests, IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "gw-store-" + Guid.NewGuid().ToString("N"));

    protected override Task<IStore> CreateStoreAsync() => Task.FromResult<IStore>(EmbeddedStore.Open(_dir));

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (DirectoryNotFoundException) { }
    }

    [Fact]
    public async Task Every_write_is_on_disk_when_it_returns()
    {
        var m = await Store.CreateModelAsync(Model("m"));
        await Store.AddBackendAsync(m.Id, new NewBackend { Url = "http://127.0.0.1:8000" });
        var k = await Store.CreateKeyAsync(Key("k"));
        await Store.RevokeKeyAsync(k.Id);
        await Store.DisposeAsync();

        await using var reopened = EmbeddedStore.Open(_dir);
        var all = await reopened.LoadAllAsync();
        Assert.Equal("m", Assert.Single(all.Models).Name);
        Assert.Single(all.Models[0].Backends);
        Assert.False(Assert.Single(all.Keys).Active);
    }

    [Fact]
    public void A_data_dir_that_cannot_be_created_is_one_store_error_naming_it()
    {
        // Its parent is a regular file: mkdir fails even for root (ENOTDIR), where a permission test would not.
        var file = Path.Combine(_dir, "a-file");
        File.WriteAllText(file, "");
        var e = Assert.Throws<StoreException>(() => EmbeddedStore.Open(Path.Combine(file, "data")));
        Assert.Equal(StoreErrorKind.Unavailable, e.Kind);
        Assert.StartsWith($"storage.data_dir {Path.Combine(file, "data")}: cannot create the directory: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_data_dir_another_store_holds_is_reported_as_in_use()
    {
        Assert.NotNull(Store); // open on _dir: it holds the lock
        var e = Assert.Throws<StoreException>(() => EmbeddedStore.Open(_dir));
        Assert.Contains("is in use by another gateway process", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Key_usage_is_on_disk_when_it_returns()
    {
        var k = await Store.CreateKeyAsync(Key("k"));
        var at = new DateTimeOffset(2026, 11, 27, 10, 0, 0, TimeSpan.Zero).AddTicks(10);
        await Store.RecordKeyUsageAsync([new KeyUsageReport(k.Id, at)]);
        await Store.DisposeAsync();

        await using var reopened = EmbeddedStore.Open(_dir);
        Assert.Equal(at, Assert.Single((await reopened.LoadAllAsync()).Keys).LastUsedAt);
    }
}
