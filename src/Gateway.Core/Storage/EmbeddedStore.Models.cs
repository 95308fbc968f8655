namespace Gateway.Storage;

public sealed partial class EmbeddedStore
{
    public Task<IReadOnlyList<StoredModel>> ListModelsAsync(CancellationToken ct = default) => Task.FromResult(State.Models);

    public Task<StoredModel> GetModelAsync(Guid id, CancellationToken ct = default) =>
        Task.FromResult(State.Models.FirstOrDefault(m => m.Id == id) ?? throw StoreException.NotFound("model", id));

    public Task<StoredModel?> FindModelByNameAsync(string name, CancellationToken ct = default) =>
        Task.FromResult(State.Models.FirstOrDefault(m => m.Name == name));

    public Task<StoredModel> CreateModelAsync(NewModel model, CancellationToken ct = default)
    {
        StoreValidation.Model(model);
        return WriteAsync(s =>
        {
            EnsureNameFree(s, model.Name, null);
            var now = Now();
            var created = new StoredModel(Guid.NewGuid(), model.Name, model.ModelId, model.Active, model.DefaultParams, model.ReasoningConfig,
                model.Transforms, model.RateLimits, now, now, []);
            return (s with { Models = SortModels(s.Models.Append(created)) }, created);
        }, ct);
    }

    public Task<StoredModel> UpdateModelAsync(Guid id, ModelPatch patch, CancellationToken ct = default)
    {
        StoreValidation.Patch(patch);
        return WriteAsync(s =>
        {
            var old = s.Models.FirstOrDefault(m => m.Id == id) ?? throw StoreException.NotFound("model", id);
            if (patch.Name is not null) EnsureNameFree(s, patch.Name, id);
            var updated = old with
            {
                Name = patch.Name ?? old.Name,
                ModelId = patch.ModelId ?? old.ModelId,
                Active = patch.Active ?? old.Active,
                DefaultParams = patch.DefaultParams ?? old.DefaultParams,
                ReasoningConfig = patch.ReasoningConfig ?? old.ReasoningConfig,
                Transforms = patch.Transforms ?? old.Transforms,
                RateLimits = patch.RateLimits ?? old.RateLimits,
                UpdatedAt = Now(),
            };
            return (s with { Models = SortModels(s.Models.Select(m => m.Id == id ? updated : m)) }, updated);
        }, ct);
    }

    public Task DeleteModelAsync(Guid id, CancellationToken ct = default) => WriteAsync(s =>
    {
        if (s.Models.All(m => m.Id != id)) throw StoreException.NotFound("model", id);
        return (s with { Models = s.Models.Where(m => m.Id != id).ToArray() }, true); // its backends live inside it and go too
    }, ct);

    public Task<StoredBackend> AddBackendAsync(Guid modelId, NewBackend backend, CancellationToken ct = default)
    {
        var url = StoreValidation.Url(backend.Url);
        StoreValidation.Weight(backend.Weight);
        return WriteAsync(s =>
        {
            var model = s.Models.FirstOrDefault(m => m.Id == modelId) ?? throw StoreException.NotFound("model", modelId);
            EnsureUrlFree(model, url, null);
            var now = Now();
            var created = new StoredBackend(Guid.NewGuid(), modelId, url, backend.Weight, backend.Active, true, null, now, now);
            return (ReplaceBackends(s, model, model.Backends.Append(created)), created);
        }, ct);
    }

    public Task<StoredBackend> UpdateBackendAsync(Guid modelId, Guid backendId, BackendPatch patch, CancellationToken ct = default)
    {
        var url = patch.Url is null ? null : StoreValidation.Url(patch.Url);
        if (patch.Weight is { } w) StoreValidation.Weight(w);
        return WriteAsync(s =>
        {
            var (model, old) = FindBackend(s, modelId, backendId);
            if (url is not null) EnsureUrlFree(model, url, backendId);
            var now = Now();
            var updated = old with
            {
                Url = url ?? old.Url,
                Weight = patch.Weight ?? old.Weight,
                Active = patch.Active ?? old.Active,
                Healthy = patch.Healthy ?? old.Healthy,
                LastHealthCheck = patch.Healthy is null ? old.LastHealthCheck : now,
                UpdatedAt = now,
            };
            return (ReplaceBackends(s, model, model.Backends.Select(b => b.Id == backendId ? updated : b)), updated);
        }, ct);
    }

    public Task DeleteBackendAsync(Guid modelId, Guid backendId, CancellationToken ct = default) => WriteAsync(s =>
    {
        var (model, _) = FindBackend(s, modelId, backendId);
        return (ReplaceBackends(s, model, model.Backends.Where(b => b.Id != backendId)), true);
    }, ct);

    public Task RecordBackendHealthAsync(IReadOnlyList<BackendHealthReport> reports, CancellationToken ct = default)
    {
        if (reports.Count == 0) return Task.CompletedTask;
        var byKey = reports.GroupBy(r => (r.ServedModelId, r.Url)).ToDictionary(g => g.Key, g => g.Last());
        return WriteAsync(s => (s with
        {
            Models = s.Models.Select(m => m with
            {
                Backends = m.Backends.Select(b => byKey.TryGetValue((m.ModelId, b.Url), out var r)
                    ? b with { Healthy = r.Healthy, LastHealthCheck = Truncate(r.CheckedAt) }
                    : b).ToArray(),
            }).ToArray(),
        }, true), ct);
    }

    private static (StoredModel Model, StoredBackend Backend) FindBackend(EmbeddedStateFile s, Guid modelId, Guid backendId)
    {
        var model = s.Models.FirstOrDefault(m => m.Id == modelId);
        var backend = model?.Backends.FirstOrDefault(b => b.Id == backendId);
        return backend is null
            ? throw new StoreException(StoreErrorKind.NotFound, $"backend {backendId} not found under model {modelId}")
            : (model!, backend);
    }

    private static EmbeddedStateFile ReplaceBackends(EmbeddedStateFile s, StoredModel model, IEnumerable<StoredBackend> backends)
    {
        // Same order as PostgresStore: by url (ordinal, as the C collation compares), then id.
        var sorted = backends.OrderBy(b => b.Url, StringComparer.Ordinal).ThenBy(b => b.Id.ToString(), StringComparer.Ordinal).ToArray();
        var updated = model with { Backends = sorted };
        return s with { Models = s.Models.Select(m => m.Id == model.Id ? updated : m).ToArray() };
    }

    private static StoredModel[] SortModels(IEnumerable<StoredModel> models) => models.OrderBy(m => m.Name, StringComparer.Ordinal).ToArray();

    private static void EnsureNameFree(EmbeddedStateFile s, string name, Guid? self)
    {
        if (s.Models.Any(m => m.Name == name && m.Id != self))
            throw new StoreException(StoreErrorKind.Conflict, "a model with this name already exists", "name");
    }

    private static void EnsureUrlFree(StoredModel model, string url, Guid? self)
    {
        if (model.Backends.Any(b => b.Url == url && b.Id != self))
            throw new StoreException(StoreErrorKind.Conflict, "this model already has a backend with this url", "url");
    }
}
