namespace Gateway.Storage;

/// <summary>
/// The control plane's state: models with their backends, and API keys. Two implementations with the same semantics
/// (<see cref="PostgresStore"/>, <see cref="EmbeddedStore"/>), checked by one shared test suite. Every failure a caller can cause or
/// meet is a <see cref="StoreException"/>: NotFound, Conflict (duplicate name, (model, url) or key hash), Validation, Unavailable.
/// </summary>
public interface IStore : IAsyncDisposable
{
    /// <summary>True when other gateway instances may write to it too (PostgreSQL): snapshots then need invalidations and refreshes.</summary>
    bool IsShared { get; }

    /// <summary>Models ordered by name, each with its backends ordered by URL.</summary>
    Task<IReadOnlyList<StoredModel>> ListModelsAsync(CancellationToken ct = default);
    Task<StoredModel> GetModelAsync(Guid id, CancellationToken ct = default);
    Task<StoredModel?> FindModelByNameAsync(string name, CancellationToken ct = default);
    Task<StoredModel> CreateModelAsync(NewModel model, CancellationToken ct = default);
    Task<StoredModel> UpdateModelAsync(Guid id, ModelPatch patch, CancellationToken ct = default);
    /// <summary>Deletes the model and, with it, its backends.</summary>
    Task DeleteModelAsync(Guid id, CancellationToken ct = default);

    /// <summary>Backends are scoped to their model: a backend id under another model is NotFound.</summary>
    Task<StoredBackend> AddBackendAsync(Guid modelId, NewBackend backend, CancellationToken ct = default);
    Task<StoredBackend> UpdateBackendAsync(Guid modelId, Guid backendId, BackendPatch patch, CancellationToken ct = default);
    Task DeleteBackendAsync(Guid modelId, Guid backendId, CancellationToken ct = default);

    /// <summary>Keys ordered by creation time, then id.</summary>
    Task<IReadOnlyList<StoredKey>> ListKeysAsync(CancellationToken ct = default);
    Task<StoredKey> GetKeyAsync(Guid id, CancellationToken ct = default);
    Task<StoredKey?> FindKeyByHashAsync(string keyHash, CancellationToken ct = default);
    Task<StoredKey> CreateKeyAsync(NewKey key, CancellationToken ct = default);
    Task<StoredKey> UpdateKeyAsync(Guid id, KeyPatch patch, CancellationToken ct = default);
    /// <summary>Soft revoke: the row stays (for audit) with active = false.</summary>
    Task<StoredKey> RevokeKeyAsync(Guid id, CancellationToken ct = default);

    /// <summary>
    /// Writes health as this instance's checks see it (<c>healthy</c>, <c>last_health_check</c>) for every backend matched by the
    /// served model id and URL; unmatched reports are ignored. Not an admin change: <c>updated_at</c> stays, no snapshot rebuild.
    /// </summary>
    Task RecordBackendHealthAsync(IReadOnlyList<BackendHealthReport> reports, CancellationToken ct = default);

    /// <summary>
    /// Moves each reported key's <c>last_used_at</c> forward to the reported time, never backwards (instances flush in any order);
    /// ids the store does not hold are ignored. Not an admin change: no snapshot rebuild.
    /// </summary>
    Task RecordKeyUsageAsync(IReadOnlyList<KeyUsageReport> reports, CancellationToken ct = default);

    /// <summary>Everything a <see cref="Routing.Snapshot"/> is built from.</summary>
    Task<StoreContents> LoadAllAsync(CancellationToken ct = default);
}
