namespace Gateway.Storage;

public sealed partial class EmbeddedStore
{
    public Task<IReadOnlyList<StoredKey>> ListKeysAsync(CancellationToken ct = default) => Task.FromResult(State.Keys);

    public Task<StoredKey> GetKeyAsync(Guid id, CancellationToken ct = default) =>
        Task.FromResult(State.Keys.FirstOrDefault(k => k.Id == id) ?? throw StoreException.NotFound("key", id));

    public Task<StoredKey?> FindKeyByHashAsync(string keyHash, CancellationToken ct = default) =>
        Task.FromResult(State.Keys.FirstOrDefault(k => k.KeyHash == keyHash));

    public Task<StoredKey> CreateKeyAsync(NewKey key, CancellationToken ct = default)
    {
        StoreValidation.Key(key);
        return WriteAsync(s =>
        {
            EnsureHashFree(s, key.KeyHash, null);
            var created = new StoredKey(Guid.NewGuid(), key.KeyHash, key.KeyPrefix, key.Name, key.Active, key.RpmLimit, key.TpmLimit,
                key.AllowedModels.ToArray(), key.ExpiresAt?.ToUniversalTime(), Now(), null);
            return (s with { Keys = SortKeys(s.Keys.Append(created)) }, created);
        }, ct);
    }

    public Task<StoredKey> UpdateKeyAsync(Guid id, KeyPatch patch, CancellationToken ct = default)
    {
        StoreValidation.Patch(patch);
        return WriteAsync(s =>
        {
            var old = s.Keys.FirstOrDefault(k => k.Id == id) ?? throw StoreException.NotFound("key", id);
            if (patch.KeyHash is not null) EnsureHashFree(s, patch.KeyHash, id);
            var updated = old with
            {
                Name = patch.Name ?? old.Name,
                Active = patch.Active ?? old.Active,
                RpmLimit = patch.RpmLimit is { } rpm ? rpm.Value : old.RpmLimit,
                TpmLimit = patch.TpmLimit is { } tpm ? tpm.Value : old.TpmLimit,
                AllowedModels = patch.AllowedModels?.ToArray() ?? old.AllowedModels,
                ExpiresAt = patch.ExpiresAt is { } exp ? exp.Value?.ToUniversalTime() : old.ExpiresAt,
                KeyHash = patch.KeyHash ?? old.KeyHash,
                KeyPrefix = patch.KeyPrefix ?? old.KeyPrefix,
            };
            return (s with { Keys = s.Keys.Select(k => k.Id == id ? updated : k).ToArray() }, updated);
        }, ct);
    }

    public Task<StoredKey> RevokeKeyAsync(Guid id, CancellationToken ct = default) => UpdateKeyAsync(id, new KeyPatch { Active = false }, ct);

    public Task RecordKeyUsageAsync(IReadOnlyList<KeyUsageReport> reports, CancellationToken ct = default)
    {
        if (reports.Count == 0) return Task.CompletedTask;
        var latest = new Dictionary<Guid, DateTimeOffset>(reports.Count);
        foreach (var r in reports)
        {
            var at = Truncate(r.LastUsedAt);
            if (!latest.TryGetValue(r.KeyId, out var known) || at > known) latest[r.KeyId] = at;
        }
        return WriteAsync(s =>
        {
            bool changed = false;
            var keys = new StoredKey[s.Keys.Count];
            for (int i = 0; i < keys.Length; i++)
            {
                var k = s.Keys[i];
                bool later = latest.TryGetValue(k.Id, out var at) && (k.LastUsedAt is not { } old || at > old);
                keys[i] = later ? k with { LastUsedAt = at } : k;
                changed |= later;
            }
            // Nothing moved forward (unknown ids, older reports): the same state, and no file write.
            return (changed ? s with { Keys = keys } : s, true);
        }, ct);
    }

    private static StoredKey[] SortKeys(IEnumerable<StoredKey> keys) =>
        keys.OrderBy(k => k.CreatedAt).ThenBy(k => k.Id.ToString(), StringComparer.Ordinal).ToArray();

    private static void EnsureHashFree(EmbeddedStateFile s, string hash, Guid? self)
    {
        if (s.Keys.Any(k => k.KeyHash == hash && k.Id != self))
            throw new StoreException(StoreErrorKind.Conflict, "a key with this hash already exists", "key_hash");
    }
}
