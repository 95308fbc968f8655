using Npgsql;
using NpgsqlTypes;

namespace Gateway.Storage;

public sealed partial class PostgresStore
{
    private const string KeyColumns =
        "id, key_hash, key_prefix, name, active, rpm_limit, tpm_limit, allowed_models, expires_at, created_at, last_used_at";

    public Task<IReadOnlyList<StoredKey>> ListKeysAsync(CancellationToken ct = default) =>
        Retrying(c => ListKeysOnceAsync(c), read: true, ct);

    private async Task<IReadOnlyList<StoredKey>> ListKeysOnceAsync(CancellationToken ct)
    {
        try
        {
            await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
            return await ReadKeysAsync(conn, null, null, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException) { throw PostgresErrors.Map(e); }
    }

    public Task<StoredKey> GetKeyAsync(Guid id, CancellationToken ct = default) =>
        Retrying(c => GetKeyOnceAsync(id, c), read: true, ct);

    private async Task<StoredKey> GetKeyOnceAsync(Guid id, CancellationToken ct)
    {
        try
        {
            await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
            var keys = await ReadKeysAsync(conn, "id = $1", Uuid(id), ct).ConfigureAwait(false);
            return keys.Count == 1 ? keys[0] : throw StoreException.NotFound("key", id);
        }
        catch (Exception e) when (e is not OperationCanceledException) { throw PostgresErrors.Map(e); }
    }

    public Task<StoredKey?> FindKeyByHashAsync(string keyHash, CancellationToken ct = default) =>
        Retrying(c => FindKeyByHashOnceAsync(keyHash, c), read: true, ct);

    private async Task<StoredKey?> FindKeyByHashOnceAsync(string keyHash, CancellationToken ct)
    {
        try
        {
            await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
            var keys = await ReadKeysAsync(conn, "key_hash = $1", Text(keyHash), ct).ConfigureAwait(false);
            return keys.Count == 1 ? keys[0] : null;
        }
        catch (Exception e) when (e is not OperationCanceledException) { throw PostgresErrors.Map(e); }
    }

    public Task<StoredKey> CreateKeyAsync(NewKey key, CancellationToken ct = default) =>
        Retrying(c => CreateKeyOnceAsync(key, c), read: false, ct);

    private async Task<StoredKey> CreateKeyOnceAsync(NewKey key, CancellationToken ct)
    {
        StoreValidation.Key(key);
        try
        {
            await using var cmd = dataSource.CreateCommand(
                "INSERT INTO api_keys (key_hash, key_prefix, name, active, rpm_limit, tpm_limit, allowed_models, expires_at) " +
                $"VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {KeyColumns}");
            cmd.Parameters.Add(Text(key.KeyHash));
            cmd.Parameters.Add(Text(key.KeyPrefix));
            cmd.Parameters.Add(Text(key.Name));
            cmd.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = key.Active });
            cmd.Parameters.Add(Bigint(key.RpmLimit));
            cmd.Parameters.Add(Bigint(key.TpmLimit));
            cmd.Parameters.Add(TextArray(key.AllowedModels));
            cmd.Parameters.Add(Timestamp(key.ExpiresAt));
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.ReadAsync(ct).ConfigureAwait(false);
            return ReadKey(reader);
        }
        catch (Exception e) when (e is not OperationCanceledException) { throw PostgresErrors.Map(e); }
    }

    public Task<StoredKey> UpdateKeyAsync(Guid id, KeyPatch patch, CancellationToken ct = default) =>
        Retrying(c => UpdateKeyOnceAsync(id, patch, c), read: false, ct);

    private async Task<StoredKey> UpdateKeyOnceAsync(Guid id, KeyPatch patch, CancellationToken ct)
    {
        StoreValidation.Patch(patch);
        try
        {
            // Nullable columns take a "set" flag next to the value, so "clear to null" differs from "leave alone".
            await using var cmd = dataSource.CreateCommand(
                "UPDATE api_keys SET name = COALESCE($2, name), active = COALESCE($3, active), " +
                "rpm_limit = CASE WHEN $4 THEN $5 ELSE rpm_limit END, tpm_limit = CASE WHEN $6 THEN $7 ELSE tpm_limit END, " +
                "allowed_models = COALESCE($8, allowed_models), expires_at = CASE WHEN $9 THEN $10 ELSE expires_at END, " +
                $"key_hash = COALESCE($11, key_hash), key_prefix = COALESCE($12, key_prefix) WHERE id = $1 RETURNING {KeyColumns}");
            cmd.Parameters.Add(Uuid(id));
            cmd.Parameters.Add(Text(patch.Name));
            cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Boolean, Value = patch.Active is { } a ? a : DBNull.Value });
            cmd.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = patch.RpmLimit is not null });
            cmd.Parameters.Add(Bigint(patch.RpmLimit?.Value));
            cmd.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = patch.TpmLimit is not null });
            cmd.Parameters.Add(Bigint(patch.TpmLimit?.Value));
            cmd.Parameters.Add(TextArray(patch.AllowedModels));
            cmd.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = patch.ExpiresAt is not null });
            cmd.Parameters.Add(Timestamp(patch.ExpiresAt?.Value));
            cmd.Parameters.Add(Text(patch.KeyHash));
            cmd.Parameters.Add(Text(patch.KeyPrefix));
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            return await reader.ReadAsync(ct).ConfigureAwait(false) ? ReadKey(reader) : throw StoreException.NotFound("key", id);
        }
        catch (Exception e) when (e is not OperationCanceledException) { throw PostgresErrors.Map(e); }
    }

    public Task<StoredKey> RevokeKeyAsync(Guid id, CancellationToken ct = default) => UpdateKeyAsync(id, new KeyPatch { Active = false }, ct);

    public Task RecordKeyUsageAsync(IReadOnlyList<KeyUsageReport> reports, CancellationToken ct = default) =>
        Retrying(c => RecordKeyUsageOnceAsync(reports, c), read: false, ct);

    private async Task RecordKeyUsageOnceAsync(IReadOnlyList<KeyUsageReport> reports, CancellationToken ct)
    {
        if (reports.Count == 0) return;
        try
        {
            // One statement per batch. Only a later use is written, whichever instance flushes last; a row that would not move is
            // left alone (no new row version, no lock held for it).
            await using var cmd = dataSource.CreateCommand(
                "UPDATE api_keys k SET last_used_at = u.used_at " +
                "FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, used_at) " +
                "WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.used_at)");
            cmd.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = reports.Select(r => r.KeyId).ToArray() });
            cmd.Parameters.Add(new NpgsqlParameter<DateTimeOffset[]> { TypedValue = reports.Select(r => r.LastUsedAt.ToUniversalTime()).ToArray() });
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException) { throw PostgresErrors.Map(e); }
    }

    private static async Task<List<StoredKey>> ReadKeysAsync(NpgsqlConnection conn, string? where, NpgsqlParameter? arg, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            where is null ? $"SELECT {KeyColumns} FROM api_keys ORDER BY created_at, id" : $"SELECT {KeyColumns} FROM api_keys WHERE {where}", conn);
        if (arg is not null) cmd.Parameters.Add(arg);
        var keys = new List<StoredKey>();
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false)) keys.Add(ReadKey(reader));
        return keys;
    }

    private static StoredKey ReadKey(NpgsqlDataReader r) => new(
        r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetBoolean(4),
        r.IsDBNull(5) ? null : r.GetInt64(5), r.IsDBNull(6) ? null : r.GetInt64(6), r.GetFieldValue<string[]>(7),
        r.IsDBNull(8) ? null : r.GetFieldValue<DateTimeOffset>(8), r.GetFieldValue<DateTimeOffset>(9),
        r.IsDBNull(10) ? null : r.GetFieldValue<DateTimeOffset>(10));

    private static NpgsqlParameter Bigint(long? value) => new() { NpgsqlDbType = NpgsqlDbType.Bigint, Value = value is { } v ? v : DBNull.Value };

    private static NpgsqlParameter TextArray(IReadOnlyList<string>? values) =>
        new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = values is null ? DBNull.Value : values.ToArray() };

    // timestamptz takes UTC only (Npgsql refuses other offsets rather than guess).
    private static NpgsqlParameter Timestamp(DateTimeOffset? value) =>
        new() { NpgsqlDbType = NpgsqlDbType.TimestampTz, Value = value is { } v ? v.ToUniversalTime() : DBNull.Value };
}
