using System.Diagnostics;
using Gateway.Auth;
using Gateway.IntegrationTests.Fixtures;
using Gateway.Storage;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Storage;

/// <summary><c>gateway migrate</c> and <c>gateway keys</c> run as real processes (the built gateway.dll on the JIT) against real stores.</summary>
[Collection(PostgresCollection.Name)]
public sealed class CliTests(PostgresFixture pg) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);
    private readonly string _dir = LocalProcess.CreateTempDirectory("gw-cli", traversableByOthers: false);

    public void Dispose() => LocalProcess.TryDeleteDirectory(_dir);

    internal static string GatewayDll()
    {
        // Built next to the tests by the ReferenceOutputAssembly=false project reference, in the same configuration.
        var config = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        var dll = Path.Combine(Path.GetDirectoryName(MigratorTests.RepoFile("Gateway.slnx"))!, "src", "Gateway", "bin", config, "net10.0", "gateway.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"{dll} is missing: build the solution first");
    }

    private string Config(string? databaseUrl)
    {
        var path = Path.Combine(_dir, "gateway.toml");
        File.WriteAllText(path, $"[database]\nurl = \"{databaseUrl ?? ""}\"\n[storage]\ndata_dir = \"{Path.Combine(_dir, "data")}\"\n");
        return path;
    }

    private static Task<LocalProcess.Result> Gateway(params string[] args) => LocalProcess.RunAsync("dotnet", [GatewayDll(), .. args], Timeout);

    [Fact]
    public async Task Migrate_and_keys_against_postgres()
    {
        var config = Config(await pg.CreateDatabaseAsync());

        var early = await Gateway("keys", "list", "--config", config);
        Assert.Equal(1, early.ExitCode);
        Assert.Contains("run 'gateway migrate up'", early.StdErr, StringComparison.Ordinal);

        var status = await Gateway("migrate", "status", "--config", config);
        Assert.True(status.ExitCode == 0, status.Output);
        Assert.Contains("0001_initial  pending", status.StdOut, StringComparison.Ordinal);
        Assert.Equal(0, (await Gateway("migrate", "up", "--config", config)).ExitCode);
        Assert.Contains("up to date", (await Gateway("migrate", "up", "--config", config)).StdOut, StringComparison.Ordinal);

        var created = await Gateway("keys", "create", "--name", "ops", "--models", "qwen,llama", "--rpm", "10", "--expires", "2031-01-01T00:00:00Z", "--config", config);
        Assert.True(created.ExitCode == 0, created.Output);
        var key = created.StdOut.Trim();
        Assert.True(ApiKey.IsWellFormed(key), key);

        await using (var store = PostgresStore.Open(new Npgsql.NpgsqlConnectionStringBuilder(pg.ConnectionString) { Database = DatabaseOf(config) }.ConnectionString))
        {
            var stored = (await store.FindKeyByHashAsync(ApiKey.HashHex(key)))!;
            Assert.Equal(["qwen", "llama"], stored.AllowedModels);
            Assert.Equal(10, stored.RpmLimit);

            await store.RecordKeyUsageAsync([new KeyUsageReport(stored.Id, new DateTimeOffset(2030, 5, 6, 7, 8, 9, TimeSpan.FromHours(2)))]);
            var list = await Gateway("keys", "list", "--config", config);
            Assert.Contains(stored.Id.ToString(), list.StdOut, StringComparison.Ordinal);
            var row = list.StdOut.Split('\n').Single(l => l.StartsWith(stored.Id.ToString(), StringComparison.Ordinal));
            Assert.Contains("2031-01-01T00:00:00Z  2030-05-06T05:08:09Z  qwen,llama  ops", row, StringComparison.Ordinal); // expires, last used (UTC)
            Assert.DoesNotContain(stored.KeyHash, list.StdOut, StringComparison.Ordinal);
            Assert.DoesNotContain(key, list.StdOut, StringComparison.Ordinal);

            Assert.Equal(0, (await Gateway("keys", "revoke", stored.Id.ToString(), "--config", config)).ExitCode);
            Assert.False((await store.GetKeyAsync(stored.Id)).Active);
        }

        Assert.Equal(0, (await Gateway("migrate", "down", "--config", config)).ExitCode);
        Assert.Contains("pending", (await Gateway("migrate", "status", "--config", config)).StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Keys_revoke_refuses_a_key_the_config_file_defines()
    {
        var config = Config(null); // embedded mode
        var created = await Gateway("keys", "create", "--name", "ops", "--config", config);
        Assert.True(created.ExitCode == 0, created.Output);
        var key = created.StdOut.Trim();
        var id = (await Gateway("keys", "list", "--config", config)).StdOut.Split('\n')
            .Single(l => l.Contains(" ops", StringComparison.Ordinal) && !l.StartsWith("ID", StringComparison.Ordinal)).Split(' ')[0];
        // The same key now also in the file: the next start would bring a revoked row back, so the CLI refuses, as the admin API does.
        File.AppendAllText(config, $"[[keys]]\nname = \"ops\"\nkey_hash = \"{ApiKey.HashHex(key)}\"\n");
        var refused = await Gateway("keys", "revoke", id, "--config", config);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("defined in the config file", refused.StdErr, StringComparison.Ordinal);
        Assert.Contains(" yes ", (await Gateway("keys", "list", "--config", config)).StdOut, StringComparison.Ordinal); // still active
    }

    [Fact]
    public async Task Serve_refuses_a_schema_that_is_behind()
    {
        var result = await Gateway("serve", Config(await pg.CreateDatabaseAsync()));
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("run 'gateway migrate up'", result.StdErr, StringComparison.Ordinal);
        Assert.Single(result.StdErr.Trim().Split('\n'));
    }

    [Theory]
    [InlineData("migrate")]
    [InlineData("migrate", "sideways")]
    [InlineData("migrate", "down", "0")]
    [InlineData("migrate", "down", "x")]
    [InlineData("keys", "create")]
    [InlineData("keys", "create", "--name", "a", "--rpm", "-1")]
    [InlineData("keys", "create", "--name", "a", "--expires", "2030-01-01T00:00:00")]
    [InlineData("keys", "revoke", "not-a-uuid")]
    [InlineData("keys", "delete", "x")]
    public async Task Bad_usage_exits_2_with_one_line(params string[] args)
    {
        var result = await Gateway([.. args, "--config", Config(null)]);
        Assert.Equal(2, result.ExitCode);
        Assert.Single(result.StdErr.Trim().Split('\n'));
    }

    [Fact]
    public async Task Unreachable_database_exits_1()
    {
        var result = await Gateway("migrate", "status", "--config", Config($"postgres://postgres@127.0.0.1:{LocalProcess.FreePort()}/x?connect_timeout=2"));
        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("gateway: migrate status failed:", result.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Keys_in_embedded_mode_survive_kill_9_at_any_moment()
    {
        var config = Config(null);
        Assert.Equal(0, (await Gateway("keys", "create", "--name", "first", "--config", config)).ExitCode);

        // Kill writers at random moments; whatever instant the kill lands on, the file must hold a complete state.
        var random = new Random(42);
        for (var i = 0; i < 6; i++)
        {
            var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { GatewayDll(), "keys", "create", "--name", $"k{i}", "--config", config }) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            await Task.Delay(random.Next(50, 400));
            try { p.Kill(); } catch (InvalidOperationException) { } // SIGKILL; it may already have finished
            await p.WaitForExitAsync();
        }

        await using var store = EmbeddedStore.Open(Path.Combine(_dir, "data"));
        var keys = await store.ListKeysAsync();
        Assert.Equal("first", keys[0].Name);
        Assert.InRange(keys.Count, 1, 7);
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir, "data"), "*" + AtomicFile.TempMarker + "*"));
    }

    private static string DatabaseOf(string configPath)
    {
        var line = File.ReadAllLines(configPath).First(l => l.StartsWith("url", StringComparison.Ordinal));
        var url = line[(line.IndexOf('"', StringComparison.Ordinal) + 1)..^1];
        return new Npgsql.NpgsqlConnectionStringBuilder(url).Database!;
    }
}
