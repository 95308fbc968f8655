using System.Globalization;
using System.Reflection;
using Npgsql;

namespace Gateway.Storage;

/// <summary>One numbered migration, read from the assembly's embedded <c>NNNN_name.up.sql</c> / <c>.down.sql</c>.</summary>
public sealed record Migration(int Version, string Name, string Up, string Down);

/// <summary>A migration's state in one database; <see cref="AppliedAt"/> null = pending. Unknown = applied but not in this binary.</summary>
public sealed record MigrationStatus(int Version, string Name, DateTimeOffset? AppliedAt, bool Unknown = false);

/// <summary>
/// Applies the embedded migrations. Each one runs in its own transaction that first takes a transaction-scoped advisory lock and
/// re-reads <c>schema_migrations</c>, so concurrent runners (two instances starting at once) apply each migration exactly once and
/// a second <c>up</c> is a no-op. A failed migration rolls back entirely and stops the run.
/// </summary>
public sealed class Migrator(NpgsqlDataSource dataSource)
{
    // Arbitrary constant shared by every gateway process ("gwmigr" in ASCII).
    private const long LockKey = 0x67776D696772;

    private const string Bootstrap =
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())";

    public static IReadOnlyList<Migration> All { get; } = LoadEmbedded();

    /// <summary>Applies every pending migration in order; returns the ones applied by this call.</summary>
    public async Task<IReadOnlyList<Migration>> UpAsync(CancellationToken ct = default)
    {
        var applied = new List<Migration>();
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        foreach (var m in All)
        {
            await using var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
            await LockAsync(conn, ct).ConfigureAwait(false);
            if (await IsAppliedAsync(conn, m.Version, ct).ConfigureAwait(false)) continue; // disposing tx rolls back, releasing the lock
            await ExecAsync(conn, m.Up, ct).ConfigureAwait(false);
            await using (var record = new NpgsqlCommand("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", conn))
            {
                record.Parameters.Add(new NpgsqlParameter<int> { TypedValue = m.Version });
                record.Parameters.Add(new NpgsqlParameter<string> { TypedValue = m.Name });
                await record.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            await tx.CommitAsync(ct).ConfigureAwait(false);
            applied.Add(m);
        }
        return applied;
    }

    /// <summary>Reverts the newest <paramref name="steps"/> applied migrations, newest first; returns the ones reverted.</summary>
    public async Task<IReadOnlyList<Migration>> DownAsync(int steps = 1, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        var reverted = new List<Migration>();
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        for (var i = 0; i < steps; i++)
        {
            await using var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
            await LockAsync(conn, ct).ConfigureAwait(false);
            await using var newest = new NpgsqlCommand("SELECT max(version) FROM schema_migrations", conn);
            if (await newest.ExecuteScalarAsync(ct).ConfigureAwait(false) is not int version) break; // nothing applied
            var m = All.FirstOrDefault(x => x.Version == version)
                ?? throw new InvalidOperationException($"migration {version} is applied but unknown to this binary (a newer gateway applied it); cannot revert it");
            await ExecAsync(conn, m.Down, ct).ConfigureAwait(false);
            await using (var forget = new NpgsqlCommand("DELETE FROM schema_migrations WHERE version = $1", conn))
            {
                forget.Parameters.Add(new NpgsqlParameter<int> { TypedValue = version });
                await forget.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            await tx.CommitAsync(ct).ConfigureAwait(false);
            reverted.Add(m);
        }
        return reverted;
    }

    /// <summary>Every known migration (applied or pending) plus any applied version this binary does not know.</summary>
    public async Task<IReadOnlyList<MigrationStatus>> StatusAsync(CancellationToken ct = default)
    {
        var applied = await ReadAppliedAsync(ct).ConfigureAwait(false);
        var result = All.Select(m => new MigrationStatus(m.Version, m.Name, applied.TryGetValue(m.Version, out var a) ? a.At : null)).ToList();
        foreach (var (version, a) in applied)
            if (All.All(m => m.Version != version)) result.Add(new MigrationStatus(version, a.Name, a.At, Unknown: true));
        return result.OrderBy(s => s.Version).ToList();
    }

    /// <summary>True when every embedded migration is applied (what <c>gateway serve</c> checks before starting).</summary>
    public async Task<bool> IsUpToDateAsync(CancellationToken ct = default)
    {
        var applied = await ReadAppliedAsync(ct).ConfigureAwait(false);
        return All.All(m => applied.ContainsKey(m.Version));
    }

    private async Task<Dictionary<int, (string Name, DateTimeOffset At)>> ReadAppliedAsync(CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        var result = new Dictionary<int, (string, DateTimeOffset)>();
        // Reading must not create anything: a database never migrated simply has nothing applied.
        await using (var exists = new NpgsqlCommand("SELECT to_regclass('schema_migrations') IS NOT NULL", conn))
            if (await exists.ExecuteScalarAsync(ct).ConfigureAwait(false) is not true) return result;
        await using var cmd = new NpgsqlCommand("SELECT version, name, applied_at FROM schema_migrations", conn);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
            result[reader.GetInt32(0)] = (reader.GetString(1), reader.GetFieldValue<DateTimeOffset>(2));
        return result;
    }

    private static async Task LockAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using (var lk = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1)", conn) { CommandTimeout = MigrationCommandSeconds })
        {
            lk.Parameters.Add(new NpgsqlParameter<long> { TypedValue = LockKey });
            await lk.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await ExecAsync(conn, Bootstrap, ct).ConfigureAwait(false);
    }

    private static async Task<bool> IsAppliedAsync(NpgsqlConnection conn, int version, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", conn);
        cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = version });
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is true;
    }

    /// <summary>A migration may rewrite a large table, and the lock may wait for another instance's: longer than any store call.</summary>
    private const int MigrationCommandSeconds = 600;

    private static async Task ExecAsync(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = MigrationCommandSeconds };
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private static IReadOnlyList<Migration> LoadEmbedded()
    {
        const string prefix = "migrations/";
        var asm = typeof(Migrator).Assembly;
        var names = asm.GetManifestResourceNames().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        var migrations = new List<Migration>();
        foreach (var up in names.Where(n => n.EndsWith(".up.sql", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var stem = up[prefix.Length..^".up.sql".Length]; // "0001_initial"
            var underscore = stem.IndexOf('_', StringComparison.Ordinal);
            var version = int.Parse(stem.AsSpan(0, underscore), NumberStyles.None, CultureInfo.InvariantCulture);
            var down = prefix + stem + ".down.sql";
            if (!names.Contains(down)) throw new InvalidOperationException($"migration {stem} has no .down.sql");
            migrations.Add(new Migration(version, stem[(underscore + 1)..], Read(asm, up), Read(asm, down)));
        }
        return migrations;

        static string Read(Assembly asm, string name)
        {
            using var stream = asm.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
    }
}
