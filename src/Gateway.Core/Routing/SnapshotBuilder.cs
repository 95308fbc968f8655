using System.Collections.Frozen;
using System.Text.Json;
using Gateway.Auth;
using Gateway.Config;
using Gateway.Storage;

namespace Gateway.Routing;

/// <summary>
/// Builds the data plane's <see cref="Snapshot"/> from the store (the control-plane path); <see cref="Snapshot.FromConfig"/> stays
/// for the static-config path. Models go through <see cref="ModelConfig"/> so both paths share one <see cref="ModelEntry.Create"/>.
/// </summary>
public static class SnapshotBuilder
{
    public static async Task<Snapshot> BuildAsync(IStore store, Snapshot? previous = null, BackendHealthRegistry? health = null,
        long defaultRpm = 0, long defaultTpm = 0, KeyUsageRegistry? usage = null, CancellationToken ct = default) =>
        FromStore(await store.LoadAllAsync(ct).ConfigureAwait(false), previous, health, defaultRpm, defaultTpm, usage);

    /// <param name="previous">Balancer state carries over from it, matched by alias and backend URL.</param>
    /// <param name="health">Backend health outlives snapshots; null gives every backend fresh (healthy) state.</param>
    /// <param name="defaultRpm">Applied to keys whose own limit is null or 0, as for config keys.</param>
    /// <param name="usage">Last-use slots that outlive snapshots; null leaves each key a slot nobody persists.</param>
    public static Snapshot FromStore(StoreContents contents, Snapshot? previous = null, BackendHealthRegistry? health = null,
        long defaultRpm = 0, long defaultTpm = 0, KeyUsageRegistry? usage = null)
    {
        var models = contents.Models.Select(m =>
            ModelEntry.Create(ToConfig(m), m.CreatedAt.ToUnixTimeSeconds(), previous?.FindModel(m.Name), health));
        // A row whose hash does not parse can never match a request; leave it out rather than fail the whole snapshot.
        var keys = contents.Keys.Where(k => KeyHash.TryParseHex(k.KeyHash, out _)).Select(k => ToEntry(k, defaultRpm, defaultTpm, usage));
        return new Snapshot(models, keys, (previous?.Version ?? 0) + 1);
    }

    /// <summary>The stored JSON columns as the typed config the request path is built from. Shapes it does not know are ignored.</summary>
    internal static ModelConfig ToConfig(StoredModel m)
    {
        var transforms = Members(m.Transforms);
        return new()
        {
            Name = m.Name,
            ModelId = m.ModelId,
            Active = m.Active,
            DefaultParams = Members(m.DefaultParams).Select(p => new KeyValuePair<string, string>(p.Name, p.Value.GetRawText())).ToArray(),
            EnableThinking = ReasoningFlag(m.ReasoningConfig),
            SystemPromptPrefix = StringMember(transforms, "system_prompt_prefix") is { Length: > 0 } prefix ? prefix : null, // "" = none, as in gateway.toml
            RpmLimit = Limit(m.RateLimits, "rpm"),
            TpmLimit = Limit(m.RateLimits, "tpm"),
            // Writes are validated (StoreValidation); an older row with another value gets the default rather than failing the snapshot.
            Lb = StringMember(transforms, "lb") == "p2c" ? BalancerKind.LeastOutstanding : BalancerKind.RoundRobin,
            // Backend health in the table is per instance (written by whoever checked last); routing uses this instance's own checks.
            Backends = m.Backends.Select(b => new BackendConfig { Url = b.Url, Weight = b.Weight, Active = b.Active }).ToArray(),
        };
    }

    private static string? StringMember(List<JsonProperty> members, string name) =>
        members.FirstOrDefault(p => p.Name == name && p.Value.ValueKind == JsonValueKind.String).Value is { ValueKind: JsonValueKind.String } s
            ? s.GetString() : null;

    /// <summary><c>rate_limits = {"rpm":N,"tpm":N}</c>; anything but a positive integer means "no limit".</summary>
    private static long? Limit(string json, string name)
    {
        foreach (var p in Members(json))
            if (p.Name == name && p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt64(out var n) && n > 0) return n;
        return null;
    }

    internal static KeyEntry ToEntry(StoredKey k, long defaultRpm, long defaultTpm, KeyUsageRegistry? usage = null)
    {
        KeyHash.TryParseHex(k.KeyHash, out var hash);
        return new KeyEntry
        {
            Id = k.Id.ToString("D"),
            Name = k.Name,
            Hash = hash,
            KeyPrefix = k.KeyPrefix,
            AllowedModels = k.AllowedModels.ToFrozenSet(StringComparer.Ordinal),
            RpmLimit = k.RpmLimit,
            TpmLimit = k.TpmLimit,
            ExpiresAt = k.ExpiresAt,
            Active = k.Active,
            Limits = Limits.RateLimits.ForKey(k.RpmLimit, k.TpmLimit, defaultRpm, defaultTpm),
            Usage = usage?.For(k.Id) ?? new KeyUsage(Guid.Empty),
        };
    }

    private static bool? ReasoningFlag(string json)
    {
        foreach (var p in Members(json))
            if (p.Name is "enable_thinking" or "enabled" && p.Value.ValueKind is JsonValueKind.True or JsonValueKind.False)
                return p.Value.GetBoolean();
        return null;
    }

    private static List<JsonProperty> Members(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            // Clone: the properties must outlive the document.
            return doc.RootElement.ValueKind == JsonValueKind.Object ? doc.RootElement.Clone().EnumerateObject().ToList() : [];
        }
        catch (JsonException)
        {
            return [];
        }
    }
}
