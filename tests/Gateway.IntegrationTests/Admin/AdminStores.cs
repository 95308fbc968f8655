using Gateway.IntegrationTests.Fixtures;
using Gateway.Storage;
using Gateway.Testing;
using System.Net;
using Gateway.Http;
using Npgsql;

namespace Gateway.IntegrationTests.Admin;

/// <summary>The admin API on an embedded state file in a temp directory per test.</summary>
public sealed class EmbeddedAdminApiTests : AdminApiContract, IDisposable
{
    private readonly string _dir = LocalProcess.CreateTempDirectory("gw-admin", traversableByOthers: false);

    protected override Task<IStore> OpenStoreAsync() => Task.FromResult<IStore>(EmbeddedStore.Open(_dir));

    protected override Task ResetStoreAsync()
    {
        LocalProcess.TryDeleteDirectory(_dir);
        return Task.CompletedTask;
    }

    /// <summary>The data directory disappears: the next write cannot create its temp file.</summary>
    protected override Task BreakStoreAsync()
    {
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    /// <summary>The directory goes away (the next write cannot create its temp file) and comes back empty; the store keeps its state in memory.</summary>
    protected override Task InterruptStoreAsync()
    {
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    protected override Task ResumeStoreAsync()
    {
        Directory.CreateDirectory(_dir);
        return Task.CompletedTask;
    }

    public void Dispose() => LocalProcess.TryDeleteDirectory(_dir);
}

/// <summary>The admin API on a fresh, migrated PostgreSQL database per test.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresAdminApiTests(PostgresFixture pg) : AdminApiContract
{
    private string? _connectionString;

    protected override async Task<IStore> OpenStoreAsync()
    {
        if (_connectionString is null)
        {
            _connectionString = await pg.CreateDatabaseAsync();
            await using var ds = DatabaseUrl.CreateDataSource(_connectionString, 2);
            await new Migrator(ds).UpAsync();
        }
        return PostgresStore.Open(_connectionString, 4);
    }

    protected override Task ResetStoreAsync()
    {
        _connectionString = null; // the next open creates and migrates a new database
        return Task.CompletedTask;
    }

    [Fact]
    public async Task An_older_use_flushed_last_by_another_instance_never_moves_last_used_at_back()
    {
        var (key, id) = await CreateKey();
        await using var other = new GatewayHost(BaseOptions(), Stream.Null, await OpenStoreAsync());
        await other.StartAsync();
        using var otherClient = GatewayFixture.ClientFor(other);
        using (var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models"))
        {
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + key);
            using var response = await otherClient.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        await Task.Delay(20);
        Assert.Equal(200, (await V1Models(key)).Status); // the newer use, on this instance

        Assert.Equal(1, await FlushKeyUsage());
        var newer = await LastUsed(id);
        Assert.Equal(1, await other.KeyUsageWriter!.FlushAsync()); // the older use arrives last
        Assert.Equal(newer, await LastUsed(id));
    }

    /// <summary>The keys table is renamed away, then back: statements on it fail meanwhile.</summary>
    protected override Task InterruptStoreAsync() => ExecuteAsync("ALTER TABLE api_keys RENAME TO api_keys_away");

    protected override Task ResumeStoreAsync() => ExecuteAsync("ALTER TABLE api_keys_away RENAME TO api_keys");

    private async Task ExecuteAsync(string sql)
    {
        await using var conn = new NpgsqlConnection(_connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>The database is dropped under the running gateway (connections terminated): every statement fails from now on.</summary>
    protected override async Task BreakStoreAsync()
    {
        var database = new NpgsqlConnectionStringBuilder(_connectionString).Database!;
        await using var conn = new NpgsqlConnection(pg.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"DROP DATABASE \"{database}\" WITH (FORCE)", conn);
        await cmd.ExecuteNonQueryAsync();
    }
}
