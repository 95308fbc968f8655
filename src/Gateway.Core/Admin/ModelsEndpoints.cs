using Gateway.Storage;

namespace Gateway.Admin;

/// <summary>
/// <c>/admin/v1/models[/{id}]</c>: list, create, get, partial update (PUT: only the fields sent change), delete (its backends go too).
/// Models named in gateway.toml can be read but not changed (409 managed_by_config).
/// </summary>
internal sealed class ModelsEndpoints(AdminServices services)
{
    private static readonly string[] Fields = ["name", "model_id", "active", "default_params", "reasoning_config", "transforms", "rate_limits"];

    public async Task<AdminResult> ListAsync(CancellationToken ct)
    {
        var models = await services.Store.ListModelsAsync(ct).ConfigureAwait(false);
        return AdminResult.Ok(w =>
        {
            w.WriteStartArray();
            foreach (var m in models) AdminJson.Model(w, m, services);
            w.WriteEndArray();
        });
    }

    public async Task<AdminResult> GetAsync(string id, CancellationToken ct)
    {
        var model = await services.Store.GetModelAsync(StoreValidation.ParseId(id, "model"), ct).ConfigureAwait(false);
        return AdminResult.Ok(w => AdminJson.Model(w, model, services));
    }

    public async Task<AdminResult> CreateAsync(JsonFields body)
    {
        body.Allow(Fields);
        var model = new NewModel
        {
            Name = body.RequiredString("name"),
            ModelId = body.RequiredString("model_id"),
            Active = body.Bool("active") ?? true,
            DefaultParams = ModelSettings.DefaultParams(body) ?? "{}",
            ReasoningConfig = ModelSettings.ReasoningConfig(body) ?? "{}",
            Transforms = ModelSettings.Transforms(body) ?? "{}",
            RateLimits = ModelSettings.RateLimits(body) ?? "{}",
        };
        var created = await services.Store.CreateModelAsync(model).ConfigureAwait(false);
        await services.AfterWriteAsync().ConfigureAwait(false);
        return AdminResult.Created(w => AdminJson.Model(w, created, services));
    }

    public async Task<AdminResult> UpdateAsync(string id, JsonFields body)
    {
        var modelId = StoreValidation.ParseId(id, "model");
        body.Allow(Fields);
        var patch = new ModelPatch
        {
            Name = body.String("name"),
            ModelId = body.String("model_id"),
            Active = body.Bool("active"),
            DefaultParams = ModelSettings.DefaultParams(body),
            ReasoningConfig = ModelSettings.ReasoningConfig(body),
            Transforms = ModelSettings.Transforms(body),
            RateLimits = ModelSettings.RateLimits(body),
        };
        services.Managed.EnsureWritable(await services.Store.GetModelAsync(modelId).ConfigureAwait(false));
        var updated = await services.Store.UpdateModelAsync(modelId, patch).ConfigureAwait(false);
        await services.AfterWriteAsync().ConfigureAwait(false);
        return AdminResult.Ok(w => AdminJson.Model(w, updated, services));
    }

    public async Task<AdminResult> DeleteAsync(string id)
    {
        var modelId = StoreValidation.ParseId(id, "model");
        services.Managed.EnsureWritable(await services.Store.GetModelAsync(modelId).ConfigureAwait(false));
        await services.Store.DeleteModelAsync(modelId).ConfigureAwait(false);
        await services.AfterWriteAsync().ConfigureAwait(false);
        return AdminResult.NoContent;
    }
}
