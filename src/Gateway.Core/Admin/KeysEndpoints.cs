using Gateway.Auth;
using Gateway.Storage;

namespace Gateway.Admin;

/// <summary>
/// <c>/admin/v1/keys[/{id}]</c>: list, create (the plaintext is in that response only), get, partial update, revoke (DELETE; the row
/// stays, inactive). Never shows a hash. Keys listed in gateway.toml can be read but not changed (409 managed_by_config).
/// </summary>
internal sealed class KeysEndpoints(AdminServices services)
{
    private static readonly string[] CreateFields = ["name", "rpm_limit", "tpm_limit", "allowed_models", "expires_at"];
    private static readonly string[] UpdateFields = ["name", "active", "rpm_limit", "tpm_limit", "allowed_models", "expires_at"];

    public async Task<AdminResult> ListAsync(CancellationToken ct)
    {
        var keys = await services.Store.ListKeysAsync(ct).ConfigureAwait(false);
        return AdminResult.Ok(w =>
        {
            w.WriteStartArray();
            foreach (var k in keys) AdminJson.Key(w, k, services.Managed);
            w.WriteEndArray();
        });
    }

    public async Task<AdminResult> GetAsync(string id, CancellationToken ct)
    {
        var key = await services.Store.GetKeyAsync(StoreValidation.ParseId(id, "key"), ct).ConfigureAwait(false);
        return AdminResult.Ok(w => AdminJson.Key(w, key, services.Managed));
    }

    public async Task<AdminResult> CreateAsync(JsonFields body)
    {
        body.Allow(CreateFields);
        var key = new NewKey
        {
            KeyHash = "", KeyPrefix = "", // KeyIssuer generates the key and fills both in
            Name = body.RequiredString("name"),
            RpmLimit = body.NullableLong("rpm_limit", 1)?.Value,
            TpmLimit = body.NullableLong("tpm_limit", 1)?.Value,
            AllowedModels = body.StringArray("allowed_models") ?? [],
            ExpiresAt = body.NullableTimestamp("expires_at")?.Value,
        };
        var (plaintext, created) = await KeyIssuer.CreateAsync(services.Store, key).ConfigureAwait(false);
        await services.AfterWriteAsync().ConfigureAwait(false);
        return AdminResult.Created(w =>
        {
            w.WriteStartObject();
            w.WriteString("key"u8, plaintext);
            w.WritePropertyName("api_key"u8);
            AdminJson.Key(w, created, services.Managed);
            w.WriteEndObject();
        });
    }

    public async Task<AdminResult> UpdateAsync(string id, JsonFields body)
    {
        var keyId = StoreValidation.ParseId(id, "key");
        body.Allow(UpdateFields);
        var patch = new KeyPatch
        {
            Name = body.String("name"),
            Active = body.Bool("active"),
            RpmLimit = body.NullableLong("rpm_limit", 1),
            TpmLimit = body.NullableLong("tpm_limit", 1),
            AllowedModels = body.StringArray("allowed_models"),
            ExpiresAt = body.NullableTimestamp("expires_at"),
        };
        services.Managed.EnsureWritable(await services.Store.GetKeyAsync(keyId).ConfigureAwait(false));
        var updated = await services.Store.UpdateKeyAsync(keyId, patch).ConfigureAwait(false);
        await services.AfterWriteAsync().ConfigureAwait(false);
        return AdminResult.Ok(w => AdminJson.Key(w, updated, services.Managed));
    }

    public async Task<AdminResult> RevokeAsync(string id)
    {
        var keyId = StoreValidation.ParseId(id, "key");
        services.Managed.EnsureWritable(await services.Store.GetKeyAsync(keyId).ConfigureAwait(false));
        await services.Store.RevokeKeyAsync(keyId).ConfigureAwait(false);
        await services.AfterWriteAsync().ConfigureAwait(false);
        return AdminResult.NoContent;
    }
}
