using Gateway.Testing;
using Npgsql;

namespace Gateway.IntegrationTests.Fixtures;

[Collection(PostgresCollection.Name)]
public sealed class PostgresFixtureTests(PostgresFixture pg)
{
    [Fact]
    public async Task Server_answers_select_version()
    {
        await using var conn = new NpgsqlConnection(pg.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT version()", conn);
        var version = (string?)await cmd.ExecuteScalarAsync();
        Assert.Contains("PostgreSQL", version, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connection_string_points_at_loopback_as_postgres()
    {
        var csb = new NpgsqlConnectionStringBuilder(pg.ConnectionString);
        Assert.Equal("127.0.0.1", csb.Host);
        Assert.Equal(pg.Port, csb.Port);
        Assert.Equal("postgres", csb.Username);
        Assert.Equal("postgres", csb.Database);

        await using var conn = new NpgsqlConnection(pg.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT current_user || '@' || current_database()", conn);
        Assert.Equal("postgres@postgres", (string?)await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task CreateDatabaseAsync_gives_isolated_databases()
    {
        var first = await pg.CreateDatabaseAsync();
        var second = await pg.CreateDatabaseAsync();
        Assert.NotEqual(new NpgsqlConnectionStringBuilder(first).Database, new NpgsqlConnectionStringBuilder(second).Database);

        await using (var conn = new NpgsqlConnection(first))
        {
            await conn.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE TABLE isolation_probe (id int PRIMARY KEY); INSERT INTO isolation_probe VALUES (1)", conn);
            await create.ExecuteNonQueryAsync();
            await using var count = new NpgsqlCommand("SELECT count(*) FROM isolation_probe", conn);
            Assert.Equal(1L, (long)(await count.ExecuteScalarAsync())!);
        }

        await using (var conn = new NpgsqlConnection(second))
        {
            await conn.OpenAsync();
            await using var exists = new NpgsqlCommand("SELECT to_regclass('public.isolation_probe') IS NOT NULL", conn);
            Assert.False((bool)(await exists.ExecuteScalarAsync())!);
        }
    }
}
