using Gateway.IntegrationTests.Fixtures;
using Gateway.Storage;
using Gateway.Testing;
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
