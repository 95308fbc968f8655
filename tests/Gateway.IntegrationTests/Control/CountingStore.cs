using Gateway.Storage;

namespace Gateway.IntegrationTests.Control;

/// <summary>A pass-through over a real store that counts the reads the data plane may cause, so a test can bound them.</summary>
internal sealed class CountingStore(IStore inner) : IStore
{
    private int _keyLookups, _loads;
    public int KeyLookups => Volatile.Read(ref _keyLookups);
    public int Loads => Volatile.Read(ref _loads);
    public int Queries => KeyLookups + Loads;
    public bool IsShared => inner.IsShared;

    public Task<StoredKey?> FindKeyByHashAsync(string keyHash, CancellationToken ct = default)
    {
        Interlocked.Increment(ref _keyLookups);
        return inner.FindKeyByHashAsync(keyHash, ct);
    }

    public Task<StoreContents> LoadAllAsync(CancellationToken ct = default)
    {
        Interlocked.Increment(ref _loads);
        return inner.LoadAllAsync(ct);
    }

    public Task<IReadOnlyList<StoredModel>> ListModelsAsync(CancellationToken ct = default) => inner.ListModelsAsync(ct);
    public Task<StoredModel> GetModelAsync(Guid id, CancellationToken ct = default) => inner.GetModelAsync(id, ct);
    public Task<StoredModel?> FindModelByNameAsync(string name, CancellationToken ct = default) => inner.FindModelByNameAsync(name, ct);
    public Task<StoredModel> CreateModelAsync(NewModel model, CancellationToken ct = default) => inner.CreateModelAsync(model, ct);
    public Task<StoredModel> UpdateModelAsync(Guid id, ModelPatch patch, CancellationToken ct = default) => inner.UpdateModelAsync(id, patch, ct);
    public Task DeleteModelAsync(Guid id, CancellationToken ct = default) => inner.DeleteModelAsync(id, ct);
    public Task<StoredBackend> AddBackendAsync(Guid modelId, NewBackend backend, CancellationToken ct = default) => inner.AddBackendAsync(modelId, backend, ct);
    public Task<StoredBackend> UpdateBackendAsync(Guid modelId, Guid backendId, BackendPatch patch, CancellationToken ct = default) =>
        inner.UpdateBackendAsync(modelId, backendId, patch, ct);
    public Task DeleteBackendAsync(Guid modelId, Guid backendId, CancellationToken ct = default) => inner.DeleteBackendAsync(modelId, backendId, ct);
    public Task<IReadOnlyList<StoredKey>> ListKeysAsync(CancellationToken ct = default) => inner.ListKeysAsync(ct);
    public Task<StoredKey> GetKeyAsync(Guid id, CancellationToken ct = default) => inner.GetKeyAsync(id, ct);
    public Task<StoredKey> CreateKeyAsync(NewKey key, CancellationToken ct = default) => inner.CreateKeyAsync(key, ct);
    public Task<StoredKey> UpdateKeyAsync(Guid id, KeyPatch patch, CancellationToken ct = default) => inner.UpdateKeyAsync(id, patch, ct);
    public Task<StoredKey> RevokeKeyAsync(Guid id, CancellationToken ct = default) => inner.RevokeKeyAsync(id, ct);
    public Task RecordBackendHealthAsync(IReadOnlyList<BackendHealthReport> reports, CancellationToken ct = default) =>
        inner.RecordBackendHealthAsync(reports, ct);
    public Task RecordKeyUsageAsync(IReadOnlyList<KeyUsageReport> reports, CancellationToken ct = default) =>
        inner.RecordKeyUsageAsync(reports, ct);
    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
