using Gateway.Config;
using Gateway.Storage;

namespace Gateway.Admin;

/// <summary>
/// <c>/admin/v1/models/{id}/backends[/{bid}]</c>: add, partial update, remove. A backend is addressed through its model: an id that
/// belongs to another model is a 404. The backends of a model named in gateway.toml follow the file (409 managed_by_config).
/// </summary>
internal sealed class BackendsEndpoints(AdminServices services)
{
    private static readonly string[] Fields = ["url", "weight", "active"];

    public async Task<AdminResult> AddAsync(string id, JsonFields body)
    {
        var modelId = StoreValidation.ParseId(id, "model");
        body.Allow(Fields);
        var backend = new NewBackend
        {
            Url = body.RequiredString("url"),
            Weight = body.Int("weight", 1, ModelRules.MaxWeight) ?? 1,
            Active = body.Bool("active") ?? true,
        };
        var model = await WritableModelAsync(modelId).ConfigureAwait(false);
        var added = await services.Store.AddBackendAsync(modelId, backend).ConfigureAwait(false);
        await services.AfterWriteAsync().ConfigureAwait(false);
        return AdminResult.Created(w => AdminJson.Backend(w, added, model.ModelId, services.Health));
    }

    public async Task<AdminResult> UpdateAsync(string id, string backendId, JsonFields body)
    {
        var modelId = StoreValidation.ParseId(id, "model");
        var bid = StoreValidation.ParseId(backendId, "backend");
        body.Allow(Fields);
        var patch = new BackendPatch
        {
            Url = body.String("url"),
            Weight = body.Int("weight", 1, ModelRules.MaxWeight),
            Active = body.Bool("active"),
        };
        var model = await WritableModelAsync(modelId).ConfigureAwait(false);
        var updated = await services.Store.UpdateBackendAsync(modelId, bid, patch).ConfigureAwait(false);
        await services.AfterWriteAsync().ConfigureAwait(false);
        return AdminResult.Ok(w => AdminJson.Backend(w, updated, model.ModelId, services.Health));
    }

    public async Task<AdminResult> DeleteAsync(string id, string backendId)
    {
        var modelId = StoreValidation.ParseId(id, "model");
        var bid = StoreValidation.ParseId(backendId, "backend");
        await WritableModelAsync(modelId).ConfigureAwait(false);
        await services.Store.DeleteBackendAsync(modelId, bid).ConfigureAwait(false);
        await services.AfterWriteAsync().ConfigureAwait(false);
        return AdminResult.NoContent;
    }

    private async Task<StoredModel> WritableModelAsync(Guid modelId)
    {
        var model = await services.Store.GetModelAsync(modelId).ConfigureAwait(false);
        services.Managed.EnsureWritable(model);
        return model;
    }
}
