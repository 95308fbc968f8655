using Npgsql;
using NpgsqlTypes;

namespace Gateway.Storage;

/// <summary>
/// <see cref="IStore"/> on PostgreSQL (schema: <c>schema.sql</c> / <see cref="Migrator"/>). Every statement is a fixed, parameterized
/// text, auto-prepared by the data source; failures leave as <see cref="StoreException"/> via <see cref="PostgresErrors"/>.
/// </summary>
public sealed partial class PostgresStore(NpgsqlDataSource dataSource, bool ownsDataSource = false) : IStore
{
    private const string ModelColumns =
        "id, name, model_id, active, default_params::text, reasoning_config::text, transforms::text, rate_limits::text, created_at, updated_at";
    private const string BackendColumns = "id, model_id, url, weight, active, healthy, last_health_check, created_at, updated_at";

    public bool IsShared => true;

    public static PostgresStore Open(string databaseUrl, int maxPoolSize = 25) =>
        new(DatabaseUrl.CreateDataSource(databaseUrl, maxPoolSize), ownsDataSource: true);

    public Task<IReadOnlyList<StoredModel>> ListModelsAsync(CancellationToken ct = default) =>
        Retrying(c => ListModelsOnceAsync(c), read: true, ct);

    private async Task<IReadOnlyList<StoredModel>> ListModelsOnceAsync(CancellationToken ct)
    {
        try
        {
            await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
            return await ReadModelsAsync(conn, null, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException) { throw PostgresErrors.Map(e); }
    }

    public async Task<StoredModel> GetModelAsync(Guid id, CancellationToken ct = default) =>
        await FindModelAsync("id = $1", id, ct).ConfigureAwait(false) ?? throw StoreException.NotFound("model", id);

    public Task<StoredModel?> FindModelByNameAsync(string name, CancellationToken ct = default) => FindModelAsync("name = $1", name, ct);

    public Task<StoredModel> CreateModelAsync(NewModel model, CancellationToken ct = default) =>
        Retrying(c => CreateModelOnceAsync(model, c), read: false, ct);

    private async Task<StoredModel> CreateModelOnceAsync(NewModel model, CancellationToken ct)
    {
        StoreValidation.Model(model);
        try
        {
            await using var cmd = dataSource.CreateCommand(
                "INSERT INTO models (name, model_id, active, default_params, reasoning_config, transforms, rate_limits) " +
                $"VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {ModelColumns}");
            cmd.Parameters.Add(Text(model.Name));
            cmd.Parameters.Add(Text(model.ModelId));
            cmd.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = model.Active });
            cmd.Parameters.Add(Jsonb(model.DefaultParams));
            cmd.Parameters.Add(Jsonb(model.ReasoningConfig));
            cmd.Parameters.Add(Jsonb(model.Transforms));
            cmd.Parameters.Add(Jsonb(model.RateLimits));
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.ReadAsync(ct).ConfigureAwait(false);
            return ReadModel(reader, []);
        }
        catch (Exception e) when (e is not OperationCanceledException) { throw PostgresErrors.Map(e); }
    }

    public Task<StoredModel> UpdateModelAsync(Guid id, ModelPatch patch, CancellationToken ct = default) =>
        Retrying(c => UpdateModelOnceAsync(id, patch, c), read: false, ct);

    private async Task<StoredModel> UpdateModelOnceAsync(Guid id, ModelPatch patch, CancellationToken ct)
    {
        StoreValidation.Patch(patch);
        try
        {
            await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
            await using (var cmd = new NpgsqlCommand(
                "UPDATE models SET name = COALESCE($2, name), model_id = COALESCE($3, model_id), active = COALESCE($4, active), " +
                "default_params = COALESCE($5, default_params), reasoning_config = COALESCE($6, reasoning_config), " +
                "transforms = COALESCE($7, transforms), rate_limits = COALESCE($8, rate_limits), updated_at = now() WHERE id = $1", conn))
            {
                cmd.Parameters.Add(Uuid(id));
                cmd.Parameters.Add(Text(patch.Name));
                cmd.Parameters.Add(Text(patch.ModelId));
                cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Boolean, Value = patch.Active is { } a ? a : DBNull.Value });
                cmd.Parameters.Add(Jsonb(patch.DefaultParams));
                cmd.Parameters.Add(Jsonb(patch.ReasoningConfig));
                cmd.Parameters.Add(Jsonb(patch.Transforms));
                cmd.Parameters.Add(Jsonb(patch.RateLimits));
                if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 0) throw StoreException.NotFound("model", id);
            }
            var models = await ReadModelsAsync(conn, id, ct).ConfigureAwait(false);
            return models.Count == 1 ? models[0] : throw StoreException.NotFound("model", id);
        }
        catch (Exception e) when (e is not OperationCanceledException) { throw PostgresErrors.Map(e); }
    }

    public Task DeleteModelAsync(Guid id, CancellationToken ct = default) =>
        Retrying(c => DeleteModelOnceAsync(id, c), read: false, ct);

    private async Task DeleteModelOnceAsync(Guid id, CancellationToken ct)
    {
        try
        {
            await using var cmd = dataSource.CreateCommand("DELETE FROM models WHERE id = $1"); // backends go with it (ON DELETE CASCADE)
            cmd.Parameters.Add(Uuid(id));
            if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 0) throw StoreException.NotFound("model", id);
        }
        catch (Exception e) when (e is not OperationCanceledException) { throw PostgresErrors.Map(e); }
    }

    public Task<StoredBackend> AddBackendAsync(Guid modelId, NewBackend backend, CancellationToken ct = default) =>
        Retrying(c => AddBackendOnceAsync(modelId, backend, c), read: false, ct);

    private async Task<StoredBackend> AddBackendOnceAsync(Guid modelId, NewBackend backend, CancellationToken ct)
    {
        var url = StoreValidation.Url(backend.Url);
        StoreValidation.Weight(backend.Weight);
        try
        {
            await using var cmd = dataSource.CreateCommand(
                $"INSERT INTO model_backends (model_id, url, weight, active) VALUES ($1, $2, $3, $4) RETURNING {BackendColumns}");
            cmd.Parameters.Add(Uuid(modelId));
            cmd.Parameters.Add(Text(url));
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = backend.Weight });
            cmd.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = backend.Active });
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.ReadAsync(ct).ConfigureAwait(false);
            return ReadBackend(reader);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var mapped = PostgresErrors.Map(e);
            throw mapped.Kind == StoreErrorKind.NotFound ? StoreException.NotFound("model", modelId) : mapped;
        }
    }

    public Task<StoredBackend> UpdateBackendAsync(Guid modelId, Guid backendId, BackendPatch patch, CancellationToken ct = default) =>
        Retrying(c => UpdateBackendOnceAsync(modelId, backendId, patch, c), read: false, ct);

    private async Task<StoredBackend> UpdateBackendOnceAsync(Guid modelId, Guid backendId, BackendPatch patch, CancellationToken ct)
    {
        var url = patch.Url is null ? null : StoreValidation.Url(patch.Url);
        if (patch.Weight is { } w) StoreValidation.Weight(w);
        try
        {
            await using var cmd = dataSource.CreateCommand(
                "UPDATE model_backends SET url = COALESCE($3, url), weight = COALESCE($4, weight), active = COALESCE($5, active), " +
                "healthy = COALESCE($6, healthy), last_health_check = CASE WHEN $6 IS NULL THEN last_health_check ELSE now() END, " +
                $"updated_at = now() WHERE id = $2 AND model_id = $1 RETURNING {BackendColumns}");
            cmd.Parameters.Add(Uuid(modelId));
            cmd.Parameters.Add(Uuid(backendId));
            cmd.Parameters.Add(Text(url));
            cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Integer, Value = patch.Weight is { } pw ? pw : DBNull.Value });
            cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Boolean, Value = patch.Active is { } a ? a : DBNull.Value });
            cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Boolean, Value = patch.Healthy is { } h ? h : DBNull.Value });
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            return await reader.ReadAsync(ct).ConfigureAwait(false) ? ReadBackend(reader) : throw BackendNotFound(modelId, backendId);
        }
        catch (Exception e) when (e is not OperationCanceledException) { throw PostgresErrors.Map(e); }
    }

    public Task DeleteBackendAsync(Guid modelId, Guid backendId, CancellationToken ct = default) =>
        Retrying(c => DeleteBackendOnceAsync(modelId, backendId, c), read: false, ct);

    private async Task DeleteBackendOnceAsync(Guid modelId, Guid backendId, CancellationToken ct)
    {
        try
        {
            await using var cmd = dataSource.CreateCommand("DELETE FROM model_backends WHERE id = $2 AND model_id = $1");
            cmd.Parameters.Add(Uuid(modelId));
            cmd.Parameters.Add(Uuid(backendId));
            if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 0) throw BackendNotFound(modelId, backendId);
        }
        catch (Exception e) when (e is not OperationCanceledException) { throw PostgresErrors.Map(e); }
    }

    public Task RecordBackendHealthAsync(IReadOnlyList<BackendHealthReport> reports, CancellationToken ct = default) =>
        Retrying(c => RecordBackendHealthOnceAsync(reports, c), read: false, ct);

    private async Task RecordBackendHealthOnceAsync(IReadOnlyList<BackendHealthReport> reports, CancellationToken ct)
    {
        if (reports.Count == 0) return;
        try
        {
            // One statement for the whole batch: the writer calls this at most every few seconds per instance.
            await using var cmd = dataSource.CreateCommand(
                "UPDATE model_backends b SET healthy = r.healthy, last_health_check = r.checked_at " +
                "FROM models m, unnest($1::text[], $2::text[], $3::boolean[], $4::timestamptz[]) AS r(model_id, url, healthy, checked_at) " +
                "WHERE b.model_id = m.id AND m.model_id = r.model_id AND b.url = r.url");
            cmd.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = reports.Select(r => r.ServedModelId).ToArray() });
            cmd.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = reports.Select(r => r.Url).ToArray() });
            cmd.Parameters.Add(new NpgsqlParameter<bool[]> { TypedValue = reports.Select(r => r.Healthy).ToArray() });
            cmd.Parameters.Add(new NpgsqlParameter<DateTimeOffset[]> { TypedValue = reports.Select(r => r.CheckedAt.ToUniversalTime()).ToArray() });
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException) { throw PostgresErrors.Map(e); }
    }

    public Task<StoreContents> LoadAllAsync(CancellationToken ct = default) =>
        Retrying(c => LoadAllOnceAsync(c), read: true, ct);

    private async Task<StoreContents> LoadAllOnceAsync(CancellationToken ct)
    {
        try
        {
            await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
            // One snapshot of the database for models, backends and keys (no half-applied admin write).
            await using var tx = await conn.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct).ConfigureAwait(false);
            var models = await ReadModelsAsync(conn, null, ct).ConfigureAwait(false);
            var keys = await ReadKeysAsync(conn, null, null, ct).ConfigureAwait(false);
            await tx.CommitAsync(ct).ConfigureAwait(false);
            return new StoreContents(models, keys);
        }
        catch (Exception e) when (e is not OperationCanceledException) { throw PostgresErrors.Map(e); }
    }

    /// <summary>
    /// One store call, tried a second time when the first met a connection that died idle in the pool: after a PostgreSQL restart
    /// every pooled connection is dead, and the first call would fail (an admin call's 503, a new key's lookup refused and
    /// remembered as unknown). Npgsql empties the pool when it finds a connection broken, so the second try opens a new one. A
    /// write is tried again only when the server said it ended the connection (it ran nothing of ours); a read also after the
    /// connection just broke. Timeouts and refused connects are not retried: the server is hung or down, and a second wait would
    /// only double the first.
    /// </summary>
    private async Task<T> Retrying<T>(Func<CancellationToken, Task<T>> call, bool read, CancellationToken ct)
    {
        try { return await call(ct).ConfigureAwait(false); }
        catch (StoreException e) when (PostgresErrors.IsDeadConnection(e.InnerException, read))
        {
            return await call(ct).ConfigureAwait(false);
        }
    }

    private Task Retrying(Func<CancellationToken, Task> call, bool read, CancellationToken ct) =>
        Retrying(async c => { await call(c).ConfigureAwait(false); return true; }, read, ct);

    public async ValueTask DisposeAsync()
    {
        if (ownsDataSource) await dataSource.DisposeAsync().ConfigureAwait(false);
    }

    private Task<StoredModel?> FindModelAsync<T>(string where, T value, CancellationToken ct) =>
        Retrying(c => FindModelOnceAsync(where, value, c), read: true, ct);

    private async Task<StoredModel?> FindModelOnceAsync<T>(string where, T value, CancellationToken ct)
    {
        try
        {
            await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand($"SELECT {ModelColumns} FROM models WHERE {where}", conn);
            cmd.Parameters.Add(new NpgsqlParameter<T> { TypedValue = value });
            Guid id;
            await using (var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(ct).ConfigureAwait(false)) return null;
                id = reader.GetGuid(0);
            }
            var models = await ReadModelsAsync(conn, id, ct).ConfigureAwait(false);
            return models.Count == 1 ? models[0] : null;
        }
        catch (Exception e) when (e is not OperationCanceledException) { throw PostgresErrors.Map(e); }
    }

    /// <summary>All models (or one), with their backends, on an open connection.</summary>
    private static async Task<List<StoredModel>> ReadModelsAsync(NpgsqlConnection conn, Guid? only, CancellationToken ct)
    {
        var backends = new Dictionary<Guid, List<StoredBackend>>();
        await using (var cmd = new NpgsqlCommand(
            only is null ? $"SELECT {BackendColumns} FROM model_backends ORDER BY url, id"
                         : $"SELECT {BackendColumns} FROM model_backends WHERE model_id = $1 ORDER BY url, id", conn))
        {
            if (only is { } id) cmd.Parameters.Add(Uuid(id));
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                var b = ReadBackend(reader);
                if (!backends.TryGetValue(b.ModelId, out var list)) backends[b.ModelId] = list = [];
                list.Add(b);
            }
        }

        var models = new List<StoredModel>();
        await using (var cmd = new NpgsqlCommand(
            only is null ? $"SELECT {ModelColumns} FROM models ORDER BY name" : $"SELECT {ModelColumns} FROM models WHERE id = $1", conn))
        {
            if (only is { } id) cmd.Parameters.Add(Uuid(id));
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
                models.Add(ReadModel(reader, backends.TryGetValue(reader.GetGuid(0), out var list) ? list : []));
        }
        return models;
    }

    private static StoredModel ReadModel(NpgsqlDataReader r, IReadOnlyList<StoredBackend> backends) => new(
        r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetBoolean(3), r.GetString(4), r.GetString(5), r.GetString(6), r.GetString(7),
        r.GetFieldValue<DateTimeOffset>(8), r.GetFieldValue<DateTimeOffset>(9), backends);

    private static StoredBackend ReadBackend(NpgsqlDataReader r) => new(
        r.GetGuid(0), r.GetGuid(1), r.GetString(2), r.GetInt32(3), r.GetBoolean(4), r.GetBoolean(5),
        r.IsDBNull(6) ? null : r.GetFieldValue<DateTimeOffset>(6), r.GetFieldValue<DateTimeOffset>(7), r.GetFieldValue<DateTimeOffset>(8));

    private static StoreException BackendNotFound(Guid modelId, Guid backendId) =>
        new(StoreErrorKind.NotFound, $"backend {backendId} not found under model {modelId}");

    private static NpgsqlParameter Uuid(Guid id) => new NpgsqlParameter<Guid> { TypedValue = id };

    private static NpgsqlParameter Text(string? value) => new() { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)value ?? DBNull.Value };

    private static NpgsqlParameter Jsonb(string? json) => new() { NpgsqlDbType = NpgsqlDbType.Jsonb, Value = (object?)json ?? DBNull.Value };
}
