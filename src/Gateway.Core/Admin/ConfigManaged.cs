using System.Collections.Frozen;
using Gateway.Config;
using Gateway.Storage;

namespace Gateway.Admin;

/// <summary>
/// Which stored entries gateway.toml owns. StoreSeeder overwrites them at every start (models matched by name, keys by hash), so the
/// admin API reads them but refuses to change them: an edit that a restart silently undoes — a revoked key coming back — is worse
/// than a clear 409.
/// </summary>
internal sealed class ConfigManaged(GatewayOptions options)
{
    private readonly FrozenSet<string> _models = options.Models.Select(m => m.Name).ToFrozenSet(StringComparer.Ordinal);
    private readonly FrozenSet<string> _keyHashes = options.Keys.Select(k => k.KeyHashHex).ToFrozenSet(StringComparer.Ordinal);

    public bool Owns(StoredModel model) => _models.Contains(model.Name);
    public bool Owns(StoredKey key) => _keyHashes.Contains(key.KeyHash);

    public void EnsureWritable(StoredModel model)
    {
        if (Owns(model)) throw AdminErrors.ManagedByConfig("model", model.Name);
    }

    public void EnsureWritable(StoredKey key)
    {
        if (Owns(key)) throw AdminErrors.ManagedByConfig("key", key.Name);
    }
}
