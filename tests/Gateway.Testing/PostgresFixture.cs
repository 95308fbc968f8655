using System.Globalization;
using Npgsql;
using Xunit;

namespace Gateway.Testing;

/// <summary>
/// A throw-away PostgreSQL server from the machine's own binaries (<c>/usr/lib/postgresql/*/bin</c>, highest version; override with
/// <c>GATEWAY_TEST_PG_BIN</c>): <c>initdb</c> in a temp directory, started on a free loopback port, stopped and deleted on dispose.
/// As root, the server runs as the <c>postgres</c> user through <c>runuser</c> (PostgreSQL refuses to run as root).
/// Share it per test collection (<c>ICollectionFixture&lt;PostgresFixture&gt;</c>) and isolate tests with <see cref="CreateDatabaseAsync"/>.
/// A missing binary or a server that does not start makes <see cref="InitializeAsync"/> throw: the tests fail, they are never skipped.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(120);

    private string? _baseDir;
    private string? _dataDir;
    private string? _binDir;
    private bool _asPostgresUser;
    private bool _started;
    private int _databaseCounter;

    /// <summary>Loopback TCP port of the server.</summary>
    public int Port { get; private set; }

    /// <summary>Npgsql connection string for the <c>postgres</c> database as the <c>postgres</c> superuser (trust auth).</summary>
    public string ConnectionString { get; private set; } = "";

    /// <summary>Directory holding the server's binaries (initdb, pg_ctl, postgres, …).</summary>
    public string BinDirectory => _binDir ?? throw new InvalidOperationException("PostgresFixture is not initialized");

    /// <summary>The connection string for another database on this server.</summary>
    public string ConnectionStringFor(string database) =>
        new NpgsqlConnectionStringBuilder(ConnectionString) { Database = database }.ConnectionString;

    /// <summary>Creates a new, empty, uniquely named database and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = string.Create(CultureInfo.InvariantCulture,
            $"test_{Interlocked.Increment(ref _databaseCounter)}_{Guid.NewGuid():N}");
        await using var conn = new NpgsqlConnection(ConnectionString);
        await conn.OpenAsync().ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", conn);
        await cmd.ExecuteNonQueryAsync().ConfigureAwait(false);
        return ConnectionStringFor(name);
    }

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        _binDir = FindBinDirectory();
        _asPostgresUser = LocalProcess.IsRoot;
        if (_asPostgresUser && LocalProcess.FindExecutable("runuser", "/usr/sbin/runuser", "/sbin/runuser") is null)
            throw new InvalidOperationException("PostgresFixture: running as root but 'runuser' was not found; it is needed to run PostgreSQL as the 'postgres' user.");

        _baseDir = LocalProcess.CreateTempDirectory("gwpg", traversableByOthers: _asPostgresUser);
        _dataDir = Path.Combine(_baseDir, "data");
        var socketDir = Path.Combine(_baseDir, "sock");
        Directory.CreateDirectory(socketDir);
        try
        {
            if (_asPostgresUser)
            {
                var chown = await LocalProcess.RunAsync("chown", ["-R", "postgres:postgres", _baseDir], ToolTimeout).ConfigureAwait(false);
                if (chown.ExitCode != 0)
                    throw new InvalidOperationException(
                        $"PostgresFixture: 'chown -R postgres:postgres {_baseDir}' failed (exit {chown.ExitCode}); does the 'postgres' user exist?\n{chown.Output}");
            }

            var initdb = await PgToolAsync("initdb",
                ["-D", _dataDir, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"]).ConfigureAwait(false);
            if (initdb.ExitCode != 0)
                throw new InvalidOperationException($"PostgresFixture: initdb failed (exit {initdb.ExitCode}):\n{initdb.Output}");

            // The free port can be taken between probing and binding: retry with a new one.
            var logFile = Path.Combine(_baseDir, "postgres.log");
            Exception? last = null;
            for (var attempt = 0; attempt < 3 && !_started; attempt++)
            {
                Port = LocalProcess.FreePort();
                var options = string.Join(' ',
                    $"-p {Port}", $"-k {socketDir}", "-c listen_addresses=127.0.0.1", "-c fsync=off", "-c synchronous_commit=off",
                    "-c full_page_writes=off", "-c max_connections=200");
                // -l: the server's output goes to a file, not to our pipes (which would otherwise stay open as long as it runs).
                var start = await PgToolAsync("pg_ctl",
                    ["-D", _dataDir, "-l", logFile, "-o", options, "-w", "-t", ((int)StartTimeout.TotalSeconds).ToString(CultureInfo.InvariantCulture), "start"])
                    .ConfigureAwait(false);
                if (start.ExitCode == 0)
                {
                    _started = true;
                    _serverOptions = options;
                    _logFile = logFile;
                    break;
                }
                last = new InvalidOperationException(
                    $"PostgresFixture: pg_ctl start on port {Port} failed (exit {start.ExitCode}):\n{start.Output}\n--- server log ---\n{LocalProcess.Tail(logFile)}");
                // A half-started server (timeout) must not linger.
                await PgToolAsync("pg_ctl", ["-D", _dataDir, "-m", "immediate", "-w", "stop"]).ConfigureAwait(false);
            }
            if (!_started) throw last!;

            ConnectionString = new NpgsqlConnectionStringBuilder
            {
                Host = "127.0.0.1",
                Port = Port,
                Username = "postgres",
                Database = "postgres",
                Timeout = 30,
                CommandTimeout = 60,
                IncludeErrorDetail = true,
            }.ConnectionString;

            await using var conn = new NpgsqlConnection(ConnectionString);
            await conn.OpenAsync().ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand("SELECT 1", conn);
            await cmd.ExecuteScalarAsync().ConfigureAwait(false);
        }
        catch
        {
            await DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private string? _serverOptions, _logFile;

    /// <summary>Stops the server the way a crash would (immediate mode), keeping its data; <see cref="StartServerAsync"/> brings it back.
    /// Only for a fixture a test owns: a shared one would take the whole collection down.</summary>
    public async Task StopServerAsync()
    {
        NpgsqlConnection.ClearAllPools();
        var stop = await PgToolAsync("pg_ctl", ["-D", _dataDir!, "-m", "immediate", "-w", "stop"]).ConfigureAwait(false);
        if (stop.ExitCode != 0) throw new InvalidOperationException($"PostgresFixture: pg_ctl stop failed:\n{stop.Output}");
    }

    /// <summary>Starts a stopped server again on the same port.</summary>
    public async Task StartServerAsync()
    {
        var start = await PgToolAsync("pg_ctl",
            ["-D", _dataDir!, "-l", _logFile!, "-o", _serverOptions!, "-w", "-t", ((int)StartTimeout.TotalSeconds).ToString(CultureInfo.InvariantCulture), "start"])
            .ConfigureAwait(false);
        if (start.ExitCode != 0) throw new InvalidOperationException($"PostgresFixture: pg_ctl start failed:\n{start.Output}\n{LocalProcess.Tail(_logFile!)}");
    }

    /// <summary>
    /// Hangs the server as a stuck host would (SIGSTOP to the postmaster and every backend): connections are accepted by the kernel
    /// and queries sent, but nothing answers. <see cref="ResumeServerAsync"/> continues it; call it in a finally. Only for a fixture
    /// a test owns.
    /// </summary>
    public Task HangServerAsync() => SignalServerAsync("-STOP");

    /// <summary>Continues a server stopped by <see cref="HangServerAsync"/>.</summary>
    public Task ResumeServerAsync() => SignalServerAsync("-CONT");

    private async Task SignalServerAsync(string signal)
    {
        var postmaster = File.ReadLines(Path.Combine(_dataDir!, "postmaster.pid")).First().Trim();
        var pids = new List<string> { postmaster };
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            var stat = Path.Combine(dir, "stat");
            string text;
            try { text = File.ReadAllText(stat); }
            catch (IOException) { continue; } // gone meanwhile
            catch (UnauthorizedAccessException) { continue; }
            // "pid (comm) state ppid …": comm may hold spaces, so read after its closing parenthesis.
            var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
            if (fields.Length > 1 && fields[1] == postmaster) pids.Add(Path.GetFileName(dir));
        }
        var kill = await LocalProcess.RunAsync("kill", [signal, .. pids], ToolTimeout).ConfigureAwait(false);
        if (kill.ExitCode != 0) throw new InvalidOperationException($"PostgresFixture: kill {signal} failed:\n{kill.Output}");
    }

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        if (_started && _dataDir is not null)
        {
            _started = false;
            try
            {
                await PgToolAsync("pg_ctl", ["-D", _dataDir, "-m", "immediate", "-w", "stop"]).ConfigureAwait(false);
            }
            catch (TimeoutException) { }
            catch (InvalidOperationException) { }
        }
        LocalProcess.TryDeleteDirectory(_baseDir);
        _baseDir = null;
    }

    private Task<LocalProcess.Result> PgToolAsync(string tool, string[] args)
    {
        var path = Path.Combine(BinDirectory, tool);
        return _asPostgresUser
            ? LocalProcess.RunAsync("runuser", ["-u", "postgres", "--", path, .. args], ToolTimeout, _baseDir)
            : LocalProcess.RunAsync(path, args, ToolTimeout, _baseDir);
    }

    private static string FindBinDirectory()
    {
        var overridden = Environment.GetEnvironmentVariable("GATEWAY_TEST_PG_BIN");
        if (!string.IsNullOrEmpty(overridden))
        {
            return File.Exists(Path.Combine(overridden, "initdb"))
                ? overridden
                : throw new InvalidOperationException($"PostgresFixture: GATEWAY_TEST_PG_BIN={overridden} has no initdb.");
        }

        const string root = "/usr/lib/postgresql";
        var candidates = Directory.Exists(root)
            ? Directory.GetDirectories(root)
                .Select(d => (Dir: d, Version: Version.TryParse(Normalize(Path.GetFileName(d)), out var v) ? v : null))
                .Where(c => c.Version is not null && File.Exists(Path.Combine(c.Dir, "bin", "initdb")) && File.Exists(Path.Combine(c.Dir, "bin", "pg_ctl")))
                .OrderByDescending(c => c.Version)
                .ToList()
            : [];
        if (candidates.Count == 0)
            throw new InvalidOperationException(
                $"PostgresFixture: no PostgreSQL server binaries found ({root}/*/bin/initdb). Install them with " +
                "'apt-get install -y postgresql' (./build.sh test does this), or set GATEWAY_TEST_PG_BIN.");
        return Path.Combine(candidates[0].Dir, "bin");

        static string Normalize(string name) => name.Contains('.', StringComparison.Ordinal) ? name : name + ".0";
    }
}
