using System.Diagnostics;
using System.Net;
using Gateway.Auth;
using Gateway.Config;
using Gateway.Control;
using Gateway.Http;
using Gateway.IntegrationTests.Fixtures;
using Gateway.Routing;
using Gateway.Simulation;
using Gateway.Storage;
using Gateway.Testing;
using Xunit.Abstractions;

namespace Gateway.IntegrationTests.Control;

/// <summary>
/// Two gateway instances on one real PostgreSQL and one real Redis: what one writes, the other serves, through the invalidation
/// channel (measured) or, with Redis gone, through the periodic refresh. Plus the bounded lookup of keys missing from a snapshot.
/// Writes go through <c>ControlPlane.Store</c> + <c>AfterWriteAsync</c>, the path every admin write takes.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class SharedRegistryTests(PostgresFixture pg, RedisFixture redis, ITestOutputHelper output) : IClassFixture<RedisFixture>, IAsyncLifetime
{
    private const string ModelId = "Qwen/Qwen2.5-7B-Instruct";
    private readonly List<GatewayHost> _hosts = [];
    private VllmSimulator _sim = null!;
    private string _db = "";

    public async Task InitializeAsync()
    {
        if (!redis.IsRunning) await redis.StartServerAsync();
        await redis.FlushAsync();
        _sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Tokens = 4, Models = [ModelId] });
        _db = await pg.CreateDatabaseAsync();
        await using var ds = DatabaseUrl.CreateDataSource(_db, 2);
        await new Migrator(ds).UpAsync();
    }

    public async Task DisposeAsync()
    {
        foreach (var h in _hosts) await h.DisposeAsync();
        await _sim.DisposeAsync();
    }

    private async Task<(GatewayHost Host, CountingStore Store)> StartAsync(TimeSpan refresh, bool withRedis = true)
    {
        var options = GatewayFixture.BuildOptions(_sim.BaseUrl) with
        {
            Models = [],
            Keys = [],
            DatabaseUrl = _db,
            RedisUrl = withRedis ? $"redis://{redis.ConnectionString}/0" : null,
            CacheRefreshInterval = refresh,
        };
        var store = new CountingStore(PostgresStore.Open(_db, 4));
        var host = new GatewayHost(options, Stream.Null, store);
        _hosts.Add(host);
        await host.StartAsync();
        return (host, store);
    }

    /// <summary>Polls until <paramref name="seen"/> holds on the host's current snapshot; returns how long it took.</summary>
    private static async Task<TimeSpan> TimeUntil(GatewayHost host, Func<Snapshot, bool> seen, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (!seen(host.Snapshots.Current!))
        {
            if (clock.Elapsed > limit) throw new TimeoutException($"not seen within {limit.TotalSeconds:0.#}s");
            await Task.Delay(2);
        }
        return clock.Elapsed;
    }

    private static async Task<HttpStatusCode> ChatAsync(HttpClient client, GatewayHost host, string model, string key)
    {
        using var request = GatewayFixture.CreatePost($"http://127.0.0.1:{host.Port}/v1/chat/completions",
            $$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}]}""", key);
        using var response = await client.SendAsync(request);
        await response.Content.ReadAsStringAsync();
        return response.StatusCode;
    }

    [Fact]
    public async Task Writes_on_one_instance_reach_the_other_through_the_invalidation_channel_within_a_second()
    {
        // A refresh interval of an hour: whatever B sees within the test came through Redis.
        var (a, _) = await StartAsync(TimeSpan.FromHours(1));
        var (b, _) = await StartAsync(TimeSpan.FromHours(1));
        var store = a.Control!.Store;
        var limit = TimeSpan.FromSeconds(1);
        var timings = new List<string>();
        async Task Write(Func<Task> write) { await write(); await a.Control.AfterWriteAsync(default); }

        StoredModel model = null!;
        await Write(async () =>
        {
            model = await store.CreateModelAsync(new NewModel { Name = "m1", ModelId = ModelId });
            await store.AddBackendAsync(model.Id, new NewBackend { Url = _sim.BaseUrl });
        });
        timings.Add($"model created {(await TimeUntil(b, s => s.FindModel("m1") is { Backends.Length: 1 }, limit)).TotalMilliseconds:0.0} ms");

        await Write(() => store.UpdateModelAsync(model.Id, new ModelPatch { Name = "m2" }));
        timings.Add($"model renamed {(await TimeUntil(b, s => s.FindModel("m2") is not null && s.FindModel("m1") is null, limit)).TotalMilliseconds:0.0} ms");

        var plaintext = ApiKey.Generate();
        KeyHash.TryParseHex(ApiKey.HashHex(plaintext), out var hash);
        StoredKey key = null!;
        await Write(async () => key = await store.CreateKeyAsync(new NewKey { KeyHash = ApiKey.HashHex(plaintext), KeyPrefix = ApiKey.DisplayPrefix(plaintext), Name = "k" }));
        timings.Add($"key created {(await TimeUntil(b, s => s.FindKey(hash) is not null, limit)).TotalMilliseconds:0.0} ms");

        using var client = new HttpClient();
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(client, b, "m2", plaintext));

        await Write(() => store.RevokeKeyAsync(key.Id));
        timings.Add($"key revoked {(await TimeUntil(b, s => s.FindKey(hash) is { Active: false }, limit)).TotalMilliseconds:0.0} ms");
        Assert.Equal(HttpStatusCode.Unauthorized, await ChatAsync(client, b, "m2", plaintext));

        await Write(() => store.DeleteModelAsync(model.Id));
        timings.Add($"model deleted {(await TimeUntil(b, s => s.FindModel("m2") is null, limit)).TotalMilliseconds:0.0} ms");
        output.WriteLine("instance A write → visible on instance B (Redis pub/sub): " + string.Join(", ", timings));
    }

    [Fact]
    public async Task An_invalidation_met_by_dead_pooled_connections_is_retried()
    {
        // As after a PostgreSQL restart: every connection B's pool holds is gone. The refresh interval is an hour, so only the
        // invalidation can bring the revocation to B in time.
        var (b, _) = await StartAsync(TimeSpan.FromHours(1));
        var plaintext = ApiKey.Generate();
        KeyHash.TryParseHex(ApiKey.HashHex(plaintext), out var hash);
        await using var writer = PostgresStore.Open(_db, 2);
        var key = await writer.CreateKeyAsync(new NewKey { KeyHash = ApiKey.HashHex(plaintext), KeyPrefix = ApiKey.DisplayPrefix(plaintext), Name = "k" });
        await b.Control!.ReloadAsync(default);
        Assert.NotNull(b.Snapshots.Current!.FindKey(hash));

        await using (var admin = DatabaseUrl.CreateDataSource(_db, 1))
        await using (var kill = admin.CreateCommand("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            Assert.True((long)(await kill.ExecuteScalarAsync())! >= 1); // B's pooled connections (and the writer's)

        await using var fresh = PostgresStore.Open(_db, 2);
        await fresh.RevokeKeyAsync(key.Id);
        var publisher = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        await using (publisher)
            await publisher.GetSubscriber().PublishAsync(StackExchange.Redis.RedisChannel.Literal(ControlPlane.InvalidationChannel), "another-instance");
        await TimeUntil(b, s => s.FindKey(hash) is { Active: false }, TimeSpan.FromSeconds(3));
    }

    [Fact]
    public async Task With_redis_down_the_refresh_interval_heals()
    {
        var refresh = TimeSpan.FromMilliseconds(500);
        var (a, _) = await StartAsync(refresh);
        var (b, _) = await StartAsync(refresh);
        await redis.StopServerAsync();
        try
        {
            var store = a.Control!.Store;
            var m = await store.CreateModelAsync(new NewModel { Name = "late", ModelId = ModelId });
            await a.Control.AfterWriteAsync(default); // the publish fails; the write stands
            Assert.NotNull(a.Snapshots.Current!.FindModel("late"));
            var took = await TimeUntil(b, s => s.FindModel("late") is not null, TimeSpan.FromSeconds(5));
            output.WriteLine($"Redis stopped: instance B saw the new model after {took.TotalMilliseconds:0} ms (refresh interval {refresh.TotalMilliseconds:0} ms)");
            Assert.True(took < refresh * 4, $"took {took}");
        }
        finally { await redis.StartServerAsync(); }
    }

    [Fact]
    public async Task With_redis_hung_an_admin_write_waits_for_its_invalidation_one_second_at_most()
    {
        var refresh = TimeSpan.FromMilliseconds(500);
        var (a, _) = await StartAsync(refresh);
        var (b, _) = await StartAsync(refresh);
        await redis.HangServerAsync();
        try
        {
            await a.Control!.Store.CreateModelAsync(new NewModel { Name = "hung", ModelId = ModelId });
            var clock = Stopwatch.StartNew();
            await a.Control.AfterWriteAsync(default); // the publish is not answered; the write stands
            var waited = clock.Elapsed;
            output.WriteLine($"Redis hung: the admin write's invalidation gave up after {waited.TotalMilliseconds:0} ms");
            Assert.InRange(waited, ControlPlane.PublishWait * 0.9, ControlPlane.PublishWait * 2.5); // StackExchange.Redis's own: 5 s
            Assert.NotNull(a.Snapshots.Current!.FindModel("hung"));
            await TimeUntil(b, s => s.FindModel("hung") is not null, TimeSpan.FromSeconds(5)); // by B's refresh
        }
        finally { await redis.ResumeServerAsync(); }
    }

    [Fact]
    public async Task A_key_created_elsewhere_works_before_any_invalidation_arrives()
    {
        // B has neither Redis nor a useful refresh: only the unknown-key lookup can find the key.
        var (b, counted) = await StartAsync(TimeSpan.FromHours(1), withRedis: false);
        var plaintext = ApiKey.Generate();
        await using (var other = PostgresStore.Open(_db, 2))
        {
            var m = await other.CreateModelAsync(new NewModel { Name = "fresh", ModelId = ModelId });
            await other.AddBackendAsync(m.Id, new NewBackend { Url = _sim.BaseUrl });
            await other.CreateKeyAsync(new NewKey { KeyHash = ApiKey.HashHex(plaintext), KeyPrefix = ApiKey.DisplayPrefix(plaintext), Name = "elsewhere" });
        }
        int before = counted.Queries;
        using var client = new HttpClient();
        // The model arrives with the key: the lookup reloads the whole snapshot.
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(client, b, "fresh", plaintext));
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(client, b, "fresh", plaintext));
        output.WriteLine($"key created on another instance: accepted on first use; store queries: {counted.Queries - before} (1 lookup + 1 reload)");
        Assert.Equal(1, counted.KeyLookups);
    }

    [Fact]
    public async Task Random_unknown_keys_cost_a_handful_of_queries()
    {
        var (b, counted) = await StartAsync(TimeSpan.FromHours(1));
        int before = counted.Queries;
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 32 });
        int unauthorized = 0;
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, 1000), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (_, _) =>
        {
            if (await ChatAsync(client, b, "any", ApiKey.Generate()) == HttpStatusCode.Unauthorized) Interlocked.Increment(ref unauthorized);
        });
        var elapsed = clock.Elapsed;
        int queries = counted.Queries - before;
        // The budget: a burst of 5, then 5 per second.
        int bound = 5 + (int)Math.Ceiling(elapsed.TotalSeconds * 5);
        output.WriteLine($"1000 requests with random unknown keys in {elapsed.TotalMilliseconds:0} ms: {unauthorized} × 401, {queries} PostgreSQL queries (bound {bound})");
        Assert.Equal(1000, unauthorized);
        Assert.InRange(queries, 1, bound);
    }

    [Fact]
    public async Task One_unknown_key_sent_concurrently_is_looked_up_once()
    {
        var (b, counted) = await StartAsync(TimeSpan.FromHours(1));
        var key = ApiKey.Generate();
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 });
        var codes = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => ChatAsync(client, b, "any", key)));
        Assert.All(codes, c => Assert.Equal(HttpStatusCode.Unauthorized, c));
        // Single flight while the lookup runs, then the negative cache.
        Assert.Equal(1, counted.KeyLookups);
    }
}

/// <summary>PostgreSQL going away under a running gateway: the data plane serves on from its snapshot and picks up changes once it returns.</summary>
public sealed class PostgresOutageTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string ModelId = "Qwen/Qwen2.5-7B-Instruct";
    private readonly PostgresFixture _pg = new(); // its own server: stopping the shared one would take the collection down
    private VllmSimulator _sim = null!;

    public async Task InitializeAsync()
    {
        await _pg.InitializeAsync();
        _sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Tokens = 4, Models = [ModelId] });
    }

    public async Task DisposeAsync()
    {
        await _sim.DisposeAsync();
        await _pg.DisposeAsync();
    }

    /// <summary>A gateway on a fresh, migrated database of this test's server, with one model and one key in its file.</summary>
    private async Task<(GatewayHost Host, string Key, string Db)> StartGatewayAsync(TimeSpan refresh, Stream log)
    {
        var db = await MigratedDatabaseAsync();
        var key = ApiKey.Generate();
        var options = GatewayFixture.BuildOptions(_sim.BaseUrl) with
        {
            Models = [new ModelConfig { Name = "qwen", ModelId = ModelId, Backends = [new BackendConfig { Url = _sim.BaseUrl }] }],
            Keys = [new KeyConfig { Name = "k", KeyHashHex = ApiKey.HashHex(key) }],
            DatabaseUrl = db,
            CacheRefreshInterval = refresh,
        };
        var host = new GatewayHost(options, log, PostgresStore.Open(db, 4));
        await host.StartAsync();
        return (host, key, db);
    }

    private async Task<string> MigratedDatabaseAsync()
    {
        var db = await _pg.CreateDatabaseAsync();
        await using (var ds = DatabaseUrl.CreateDataSource(db, 2)) await new Migrator(ds).UpAsync();
        return db;
    }

    private static async Task<HttpStatusCode> ChatAsync(HttpClient client, GatewayHost host, string key)
    {
        using var request = GatewayFixture.CreatePost($"http://127.0.0.1:{host.Port}/v1/chat/completions", """{"model":"qwen","messages":[]}""", key);
        using var response = await client.SendAsync(request);
        return response.StatusCode;
    }

    /// <summary>Leaves <paramref name="count"/> idle connections in the data source's pool, as a busy moment does.</summary>
    internal static async Task FillPoolAsync(Npgsql.NpgsqlDataSource dataSource, int count = 4)
    {
        var open = new List<Npgsql.NpgsqlConnection>();
        for (int i = 0; i < count; i++) open.Add(await dataSource.OpenConnectionAsync());
        foreach (var c in open) await c.DisposeAsync();
    }

    [Fact]
    public async Task The_data_plane_serves_its_snapshot_while_postgres_is_down_and_catches_up_after()
    {
        var log = new MemoryStream();
        var (host, key, db) = await StartGatewayAsync(TimeSpan.FromMilliseconds(300), log);
        await using var _ = host;
        using var client = new HttpClient();
        Task<HttpStatusCode> Chat(string k) => ChatAsync(client, host, k);
        Assert.Equal(HttpStatusCode.OK, await Chat(key));

        await _pg.StopServerAsync();
        long reloads = host.Control!.Reloads;
        await Task.Delay(1000); // several failed refreshes
        int ok = 0;
        for (int i = 0; i < 50; i++) if (await Chat(key) == HttpStatusCode.OK) ok++;
        // An unknown key's lookup fails fast and is refused like any unknown key, not with a 500.
        var unknown = await Chat(ApiKey.Generate());
        output.WriteLine($"PostgreSQL down: {ok}/50 requests served from the snapshot; unknown key → {(int)unknown}");
        Assert.Equal(50, ok);
        Assert.Equal(HttpStatusCode.Unauthorized, unknown);
        Assert.Equal(reloads, host.Control.Reloads);

        await _pg.StartServerAsync();
        await using (var store = PostgresStore.Open(db, 2))
            await store.CreateModelAsync(new NewModel { Name = "after", ModelId = ModelId });
        var clock = Stopwatch.StartNew();
        while (host.Snapshots.Current!.FindModel("after") is null && clock.Elapsed < TimeSpan.FromSeconds(15)) await Task.Delay(20);
        output.WriteLine($"PostgreSQL back: change picked up after {clock.ElapsedMilliseconds} ms");
        Assert.NotNull(host.Snapshots.Current!.FindModel("after"));
        await host.Log.DisposeAsync();
        Assert.Contains("registry refresh failed, serving the previous snapshot", System.Text.Encoding.UTF8.GetString(log.ToArray()), StringComparison.Ordinal);
    }

    [Fact]
    public async Task After_a_crash_restart_a_read_is_tried_again_and_a_write_is_not()
    {
        await using var dataSource = DatabaseUrl.CreateDataSource(await MigratedDatabaseAsync(), 4);
        await using var store = new PostgresStore(dataSource);

        // An immediate stop, as a crash: the sessions end without a word, so the pooled connections only find out by reading.
        // (A checkpoint first: the fixture runs without fsync, and the new tables should survive the crash.)
        await using (var checkpoint = dataSource.CreateCommand("CHECKPOINT")) await checkpoint.ExecuteNonQueryAsync();
        await FillPoolAsync(dataSource);
        await _pg.StopServerAsync();
        await _pg.StartServerAsync();
        Assert.Empty(await store.ListModelsAsync()); // read: tried again on a new connection
        Assert.Empty(await store.ListKeysAsync());

        // A write that meets a connection broken this way is not tried again: the server may have run it before it went.
        await FillPoolAsync(dataSource);
        await _pg.StopServerAsync();
        await _pg.StartServerAsync();
        var refused = await Assert.ThrowsAsync<StoreException>(() => store.CreateModelAsync(new NewModel { Name = "m", ModelId = ModelId }));
        Assert.Equal(StoreErrorKind.Unavailable, refused.Kind);
        Assert.Equal("m", (await store.CreateModelAsync(new NewModel { Name = "m", ModelId = ModelId })).Name); // the pool is fresh now
    }

    [Fact]
    public async Task A_hung_postgres_holds_an_unknown_key_for_the_lookup_timeout_only()
    {
        var (host, key, _) = await StartGatewayAsync(TimeSpan.FromHours(1), new MemoryStream());
        await using var _ = host;
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        Task<HttpStatusCode> Chat(string k) => ChatAsync(client, host, k);
        Assert.Equal(HttpStatusCode.Unauthorized, await Chat(ApiKey.Generate())); // a lookup that the server answers: a pooled connection

        await _pg.HangServerAsync();
        try
        {
            var clock = Stopwatch.StartNew();
            var unknown = await Chat(ApiKey.Generate());
            var waited = clock.Elapsed;
            output.WriteLine($"PostgreSQL hung: unknown key → {(int)unknown} after {waited.TotalMilliseconds:0} ms");
            Assert.Equal(HttpStatusCode.Unauthorized, unknown);
            // The resolver's 2 s, not the driver's connect and command timeouts (the fixture's: 30 s and 60 s).
            Assert.InRange(waited, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(6));
            Assert.Equal(HttpStatusCode.OK, await Chat(key)); // known keys never wait on the store
        }
        finally
        {
            await _pg.ResumeServerAsync();
        }
    }
}

/// <summary>Backend health as this instance's checks see it reaches PostgreSQL (coalesced), for the admin API to show.</summary>
[Collection(PostgresCollection.Name)]
public sealed class BackendHealthWriteBackTests(PostgresFixture pg, ITestOutputHelper output) : IAsyncLifetime
{
    private VllmSimulator _sim = null!;

    public async Task InitializeAsync() => _sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Models = ["m/id"] });
    public async Task DisposeAsync() => await _sim.DisposeAsync();

    [Fact]
    public async Task Checks_flip_healthy_and_last_health_check_in_postgres()
    {
        var db = await pg.CreateDatabaseAsync();
        await using (var ds = DatabaseUrl.CreateDataSource(db, 2)) await new Migrator(ds).UpAsync();
        var dead = $"http://127.0.0.1:{LocalProcess.FreePort()}";
        var options = GatewayFixture.BuildOptions(_sim.BaseUrl) with
        {
            Models = [new ModelConfig { Name = "m", ModelId = "m/id", Backends = [new BackendConfig { Url = _sim.BaseUrl }, new BackendConfig { Url = dead }] }],
            Keys = [],
            DatabaseUrl = db,
            HealthCheck = new HealthCheckOptions { Interval = TimeSpan.FromMilliseconds(200), Timeout = TimeSpan.FromSeconds(2), HealthyThreshold = 1, UnhealthyThreshold = 1 },
        };
        await using var host = new GatewayHost(options, Stream.Null, PostgresStore.Open(db, 4));
        await host.StartAsync();
        await using var store = PostgresStore.Open(db, 2);
        var clock = Stopwatch.StartNew();
        IReadOnlyList<StoredBackend> backends;
        do
        {
            await Task.Delay(50);
            backends = (await store.FindModelByNameAsync("m"))!.Backends;
        }
        while (backends.Any(b => b.LastHealthCheck is null) && clock.Elapsed < TimeSpan.FromSeconds(10));
        // The row can be visible a moment before the writer counts its batch.
        while (host.HealthWriter!.Writes == 0 && clock.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(10);
        output.WriteLine($"dead backend written as unhealthy after {clock.ElapsedMilliseconds} ms; {host.HealthWriter!.Writes} batch write(s) for {backends.Count} backends while checks ran every 200 ms");
        Assert.True(Assert.Single(backends, b => b.Url == _sim.BaseUrl).Healthy);
        Assert.False(Assert.Single(backends, b => b.Url == dead).Healthy);
        Assert.All(backends, b => Assert.NotNull(b.LastHealthCheck));
        // Several rounds ran (200 ms apart); the writer batched them: one write per flip burst, not per check.
        Assert.InRange(host.HealthWriter.Writes, 1, 2);
    }
}
