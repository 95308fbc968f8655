using Gateway.IntegrationTests.Fixtures;
using Gateway.Storage;
using Gateway.Testing;
using Npgsql;

namespace Gateway.IntegrationTests.Storage;

[Collection(PostgresCollection.Name)]
public sealed class MigratorTests(PostgresFixture pg)
{
    private async Task<NpgsqlDataSource> FreshDatabaseAsync() => DatabaseUrl.CreateDataSource(await pg.CreateDatabaseAsync(), 4);

    [Fact]
    public void Migrations_are_embedded_in_order_with_their_downs()
    {
        Assert.NotEmpty(Migrator.All);
        Assert.Equal(1, Migrator.All[0].Version);
        Assert.Equal("initial", Migrator.All[0].Name);
        Assert.Equal(Migrator.All.Select(m => m.Version).Order(), Migrator.All.Select(m => m.Version));
        Assert.All(Migrator.All, m => Assert.Contains("DROP TABLE", m.Down, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Up_down_up_is_idempotent()
    {
        await using var ds = await FreshDatabaseAsync();
        var migrator = new Migrator(ds);
        Assert.False(await migrator.IsUpToDateAsync());
        Assert.All(await migrator.StatusAsync(), s => Assert.Null(s.AppliedAt));

        Assert.Equal(Migrator.All.Count, (await migrator.UpAsync()).Count);
        Assert.Empty(await migrator.UpAsync()); // second run: nothing to do
        Assert.True(await migrator.IsUpToDateAsync());
        Assert.All(await migrator.StatusAsync(), s => Assert.NotNull(s.AppliedAt));
        Assert.True(await TableExistsAsync(ds, "models"));

        Assert.Equal(Migrator.All.Count, (await migrator.DownAsync(Migrator.All.Count + 5)).Count);
        Assert.Empty(await migrator.DownAsync(1)); // nothing left to revert
        Assert.False(await TableExistsAsync(ds, "models"));
        Assert.False(await TableExistsAsync(ds, "api_keys"));
        Assert.False(await migrator.IsUpToDateAsync());

        Assert.Equal(Migrator.All.Count, (await migrator.UpAsync()).Count);
        Assert.True(await migrator.IsUpToDateAsync());
    }

    [Fact]
    public async Task Concurrent_runners_apply_each_migration_once()
    {
        await using var ds = await FreshDatabaseAsync();
        var runs = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => Task.Run(() => new Migrator(ds).UpAsync())));
        Assert.Equal(Migrator.All.Count, runs.Sum(r => r.Count));
        await using var cmd = ds.CreateCommand("SELECT count(*) FROM schema_migrations");
        Assert.Equal((long)Migrator.All.Count, (long)(await cmd.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task A_database_the_binary_does_not_know_shows_in_status()
    {
        await using var ds = await FreshDatabaseAsync();
        var migrator = new Migrator(ds);
        await migrator.UpAsync();
        await using (var cmd = ds.CreateCommand("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')"))
            await cmd.ExecuteNonQueryAsync();
        var status = await migrator.StatusAsync();
        Assert.True(status.Single(s => s.Version == 9999).Unknown);
        Assert.True(await migrator.IsUpToDateAsync());
        await Assert.ThrowsAsync<InvalidOperationException>(() => migrator.DownAsync(1));
    }

    [Fact]
    public async Task Schema_file_matches_the_migrations()
    {
        await using var fromMigrations = await FreshDatabaseAsync();
        await new Migrator(fromMigrations).UpAsync();

        await using var fromFile = await FreshDatabaseAsync();
        await using (var cmd = fromFile.CreateCommand(await File.ReadAllTextAsync(RepoFile("schema.sql"))))
            await cmd.ExecuteNonQueryAsync();

        Assert.Equal(await DescribeAsync(fromMigrations), await DescribeAsync(fromFile));
        Assert.True(await new Migrator(fromFile).IsUpToDateAsync()); // schema.sql records itself as migrated
        Assert.Empty(await new Migrator(fromFile).UpAsync());
    }

    [Fact]
    public async Task Constraints_hold_and_map_to_store_errors()
    {
        await using var ds = await FreshDatabaseAsync();
        await new Migrator(ds).UpAsync();
        var modelId = (Guid)(await ScalarAsync(ds, "INSERT INTO models (name, model_id) VALUES ('m', 'x') RETURNING id"))!;

        var weight = await SqlFailsAsync(ds, $"INSERT INTO model_backends (model_id, url, weight) VALUES ('{modelId}', 'http://h:1', 0)");
        Assert.Equal((StoreErrorKind.Validation, "weight"), (weight.Kind, weight.Param));

        var name = await SqlFailsAsync(ds, "INSERT INTO models (name, model_id) VALUES ('m', 'y')");
        Assert.Equal((StoreErrorKind.Conflict, "name"), (name.Kind, name.Param));

        await ScalarAsync(ds, $"INSERT INTO model_backends (model_id, url) VALUES ('{modelId}', 'http://h:1') RETURNING id");
        var url = await SqlFailsAsync(ds, $"INSERT INTO model_backends (model_id, url) VALUES ('{modelId}', 'http://h:1')");
        Assert.Equal((StoreErrorKind.Conflict, "url"), (url.Kind, url.Param));

        var fk = await SqlFailsAsync(ds, $"INSERT INTO model_backends (model_id, url) VALUES ('{Guid.NewGuid()}', 'http://h:1')");
        Assert.Equal(StoreErrorKind.NotFound, fk.Kind);

        var uuid = await SqlFailsAsync(ds, "SELECT * FROM models WHERE id = 'not-a-uuid'");
        Assert.Equal(StoreErrorKind.Validation, uuid.Kind);

        var hash = "'" + new string('a', 64) + "'";
        await ScalarAsync(ds, $"INSERT INTO api_keys (key_hash, key_prefix, name) VALUES ({hash}, 'ml-', 'k') RETURNING id");
        var dup = await SqlFailsAsync(ds, $"INSERT INTO api_keys (key_hash, key_prefix, name) VALUES ({hash}, 'ml-', 'k2')");
        Assert.Equal((StoreErrorKind.Conflict, "key_hash"), (dup.Kind, dup.Param));

        await ScalarAsync(ds, $"DELETE FROM models WHERE id = '{modelId}' RETURNING id");
        Assert.Equal(0L, (long)(await ScalarAsync(ds, "SELECT count(*) FROM model_backends"))!); // ON DELETE CASCADE
    }

    [Fact]
    public async Task Store_on_an_unreachable_database_is_unavailable_not_a_crash()
    {
        await using var store = PostgresStore.Open($"postgres://postgres@127.0.0.1:{LocalProcess.FreePort()}/none?connect_timeout=2");
        var e = await Assert.ThrowsAsync<StoreException>(() => store.ListModelsAsync());
        Assert.Equal(StoreErrorKind.Unavailable, e.Kind);
    }

    [Fact]
    public async Task Store_on_an_unmigrated_database_is_unavailable()
    {
        await using var store = PostgresStore.Open(await pg.CreateDatabaseAsync());
        var e = await Assert.ThrowsAsync<StoreException>(() => store.ListKeysAsync());
        Assert.Equal(StoreErrorKind.Unavailable, e.Kind);
    }

    private static async Task<StoreException> SqlFailsAsync(NpgsqlDataSource ds, string sql)
    {
        var e = await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync(ds, sql));
        return PostgresErrors.Map(e);
    }

    private static async Task<object?> ScalarAsync(NpgsqlDataSource ds, string sql)
    {
        await using var cmd = ds.CreateCommand(sql);
        return await cmd.ExecuteScalarAsync();
    }

    private static async Task<bool> TableExistsAsync(NpgsqlDataSource ds, string table) =>
        await ScalarAsync(ds, $"SELECT to_regclass('public.{table}') IS NOT NULL") is true;

    /// <summary>Columns, constraints, indexes and recorded versions, as sorted text lines.</summary>
    private static async Task<string> DescribeAsync(NpgsqlDataSource ds)
    {
        const string sql = """
            SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' null=' || is_nullable || ' default=' || coalesce(column_default, '')
              FROM information_schema.columns WHERE table_schema = 'public'
            UNION ALL
            SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
              FROM pg_constraint WHERE connamespace = 'public'::regnamespace
            UNION ALL
            SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
            UNION ALL
            SELECT 'migration ' || version || ' ' || name FROM schema_migrations
            """;
        var lines = new List<string>();
        await using var cmd = ds.CreateCommand(sql);
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync()) lines.Add(reader.GetString(0));
        lines.Sort(StringComparer.Ordinal);
        Assert.Contains(lines, l => l.StartsWith("column models.", StringComparison.Ordinal));
        return string.Join('\n', lines);
    }

    internal static string RepoFile(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, name);
            if (File.Exists(candidate) && File.Exists(Path.Combine(dir.FullName, "Gateway.slnx"))) return candidate;
        }
        throw new FileNotFoundException($"{name} not found above {AppContext.BaseDirectory}");
    }
}
