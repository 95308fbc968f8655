using System.Collections.Frozen;
using System.Text;
using System.Text.Json;
using Gateway.Auth;
using Gateway.Config;

namespace Gateway.Routing;

/// <summary>
/// Everything the data plane reads, immutable: models by alias and keys by hash. The control plane builds a new one and swaps it
/// in; a request keeps the snapshot it started with.
/// </summary>
public sealed class Snapshot
{
    private readonly FrozenDictionary<string, ModelEntry> _models;
    private readonly FrozenDictionary<string, ModelEntry>.AlternateLookup<ReadOnlySpan<char>> _modelsBySpan;
    private readonly FrozenDictionary<KeyHash, KeyEntry> _keys;

    public Snapshot(IEnumerable<ModelEntry> models, IEnumerable<KeyEntry> keys, long version)
    {
        _models = models.ToFrozenDictionary(m => m.Alias, StringComparer.Ordinal);
        _modelsBySpan = _models.GetAlternateLookup<ReadOnlySpan<char>>();
        _keys = keys.ToFrozenDictionary(k => k.Hash);
        Models = _models.Values.OrderBy(m => m.Alias, StringComparer.Ordinal).ToArray();
        Version = version;
    }

    public long Version { get; }
    public IReadOnlyList<ModelEntry> Models { get; }

    public ModelEntry? FindModel(ReadOnlySpan<char> alias) => _modelsBySpan.TryGetValue(alias, out var m) ? m : null;
    public KeyEntry? FindKey(in KeyHash hash) => _keys.TryGetValue(hash, out var k) ? k : null;

    /// <summary>
    /// Builds a snapshot from static configuration, reusing balancer state from <paramref name="previous"/> by backend URL and
    /// backend health from <paramref name="health"/> (both outlive snapshots).
    /// </summary>
    public static Snapshot FromConfig(GatewayOptions options, Snapshot? previous = null, BackendHealthRegistry? health = null)
    {
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var models = options.Models.Select(m => ModelEntry.Create(m, created, previous?.FindModel(m.Name), health));
        var keys = options.Keys.Select(k => KeyEntry.Create(k, options.DefaultRpm, options.DefaultTpm));
        return new Snapshot(models, keys, (previous?.Version ?? 0) + 1);
    }
}

/// <summary>A model as the request path needs it, with every wire form pre-encoded.</summary>
public sealed class ModelEntry
{
    public required string Alias { get; init; }
    public required string ModelId { get; init; }
    public bool Active { get; init; } = true;
    public long Created { get; init; }
    /// <summary>The alias as a JSON string token, quotes included, ready to splice into responses.</summary>
    public required byte[] AliasJson { get; init; }
    /// <summary>The backend model id as a JSON string token, quotes included, ready to splice into requests.</summary>
    public required byte[] ModelIdJson { get; init; }
    public required DefaultParam[] DefaultParams { get; init; }
    public bool? EnableThinking { get; init; }
    /// <summary>System prompt prefix JSON-escaped without quotes; null when the model has none.</summary>
    public byte[]? SystemPrefixEscaped { get; init; }
    public required Backend[] Backends { get; init; }
    public required ILoadBalancer Balancer { get; init; }
    /// <summary>The model's own limits, a second scope per key; unlimited when the model has none.</summary>
    public Limits.RateLimits Limits { get; init; }
    /// <summary>The model's resolved metric children (Observability.ModelMetrics), cached here so a request finds them without a lookup.</summary>
    internal object? MetricsSlot { get; set; }

    /// <param name="previous">The same alias in the previous snapshot: its balancer state and, without a registry, its backends' load.</param>
    /// <param name="health">Health and load that outlive snapshots; null (tests, tools) keeps load only across this alias's swaps.</param>
    public static ModelEntry Create(ModelConfig config, long created, ModelEntry? previous, BackendHealthRegistry? health = null)
    {
        var backends = config.Backends.Select(b => new Backend(b.Url, b.Weight, b.Active, health?.For(config.ModelId, b.Url),
            health?.LoadFor(b.Url) ?? previous?.FindBackend(b.Url)?.Load)).ToArray();
        return new ModelEntry
        {
            Alias = config.Name,
            ModelId = config.ModelId,
            Active = config.Active,
            Created = previous?.Created ?? created,
            AliasJson = JsonString(config.Name),
            ModelIdJson = JsonString(config.ModelId),
            DefaultParams = config.DefaultParams.Select(p => new DefaultParam(p.Key, p.Value)).ToArray(),
            EnableThinking = config.EnableThinking,
            SystemPrefixEscaped = config.SystemPromptPrefix is { } prefix ? EscapedContent(prefix) : null,
            Backends = backends,
            Balancer = LoadBalancers.Create(config.Lb, backends, previous?.Balancer),
            Limits = new Limits.RateLimits(config.RpmLimit ?? 0, config.TpmLimit ?? 0),
        };
    }

    public Backend? FindBackend(string url)
    {
        url = url.TrimEnd('/');
        foreach (var b in Backends)
            if (string.Equals(b.Url, url, StringComparison.OrdinalIgnoreCase)) return b;
        return null;
    }

    internal static byte[] JsonString(string value) => JsonSerializerHelpers.EncodeString(value);

    private static byte[] EscapedContent(string value)
    {
        var quoted = JsonSerializerHelpers.EncodeString(value);
        return quoted.AsSpan(1, quoted.Length - 2).ToArray();
    }
}

/// <summary>A default parameter: its name (UTF-8, for comparison with request keys) and its JSON value.</summary>
public sealed class DefaultParam(string name, string json)
{
    public string Name { get; } = name;
    public byte[] NameUtf8 { get; } = Encoding.UTF8.GetBytes(name);
    /// <summary><c>"name":value</c> ready to splice.</summary>
    public byte[] Member { get; } = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(JsonSerializerHelpers.EncodeString(name)) + ":" + json);
}

/// <summary>One upstream vLLM server.</summary>
public sealed class Backend
{
    public Backend(string url, int weight, bool active, BackendHealth? health = null, BackendLoad? load = null)
    {
        Url = url.TrimEnd('/');
        Weight = weight;
        Active = active;
        Health = health ?? new BackendHealth();
        Load = load ?? new BackendLoad();
        ChatCompletions = new Uri(Url + "/v1/chat/completions");
        Completions = new Uri(Url + "/v1/completions");
        Embeddings = new Uri(Url + "/v1/embeddings");
    }

    public string Url { get; }
    public int Weight { get; }
    public bool Active { get; }
    /// <summary>Shared with the health checker; outlives this snapshot.</summary>
    public BackendHealth Health { get; }
    /// <summary>Requests in flight to this URL; shared with every model on it and outlives this snapshot.</summary>
    public BackendLoad Load { get; }
    public bool IsAvailable => Active && Health.Healthy;
    public Uri ChatCompletions { get; }
    public Uri Completions { get; }
    public Uri Embeddings { get; }
    /// <summary>The backend's resolved metric children (Observability.BackendMetrics).</summary>
    internal object? MetricsSlot { get; set; }
    /// <summary>The backend's resolved upstream routes (Proxy.UpstreamClient), set when the snapshot is built.</summary>
    internal object? UpstreamSlot { get; set; }
}

/// <summary>An API key as the request path needs it. The plaintext is never here.</summary>
public sealed class KeyEntry
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required KeyHash Hash { get; init; }
    public string KeyPrefix { get; init; } = "";
    /// <summary>Empty = every model.</summary>
    public required FrozenSet<string> AllowedModels { get; init; }
    public long? RpmLimit { get; init; }
    public long? TpmLimit { get; init; }
    public DateTimeOffset? ExpiresAt { get; init; }
    public bool Active { get; init; } = true;
    /// <summary>The key's limits with the configured defaults applied (a key's null or 0 means "the default").</summary>
    public Limits.RateLimits Limits { get; init; }

    /// <summary>When the key was last used; a stored key's slot is shared across snapshots (see <see cref="KeyUsageRegistry"/>).</summary>
    public KeyUsage Usage { get; init; } = new(Guid.Empty);

    /// <summary>The in-process limiter's cached windows for this key (see <see cref="Limits.LimiterSlot"/>).</summary>
    public Limits.LimiterSlot LimiterSlot { get; } = new();

    /// <summary>The key's resolved rate-limit metric children (Observability.KeyMetrics).</summary>
    internal object? MetricsSlot { get; set; }

    public bool Allows(string alias) => AllowedModels.Count == 0 || AllowedModels.Contains(alias);

    public static KeyEntry Create(KeyConfig config, long defaultRpm = 0, long defaultTpm = 0)
    {
        KeyHash.TryParseHex(config.KeyHashHex, out var hash);
        return new KeyEntry
        {
            Id = "cfg-" + config.KeyHashHex[..12],
            Name = config.Name,
            Hash = hash,
            KeyPrefix = config.KeyPrefix ?? "",
            AllowedModels = config.AllowedModels.ToFrozenSet(StringComparer.Ordinal),
            RpmLimit = config.RpmLimit,
            TpmLimit = config.TpmLimit,
            ExpiresAt = config.ExpiresAt,
            Active = config.Active,
            Limits = Gateway.Limits.RateLimits.ForKey(config.RpmLimit, config.TpmLimit, defaultRpm, defaultTpm),
        };
    }
}

internal static class JsonSerializerHelpers
{

    public static byte[] EncodeString(string value)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(value.Length + 8);
        using (var w = new Utf8JsonWriter(buffer, Json.JsonText.Relaxed)) w.WriteStringValue(value);
        return buffer.WrittenSpan.ToArray();
    }
}
