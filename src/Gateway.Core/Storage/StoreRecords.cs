namespace Gateway.Storage;

/// <summary>A model row with its backends. JSON columns are kept as JSON object text: the store never interprets them.</summary>
public sealed record StoredModel(
    Guid Id,
    string Name,
    string ModelId,
    bool Active,
    string DefaultParams,
    string ReasoningConfig,
    string Transforms,
    string RateLimits,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    IReadOnlyList<StoredBackend> Backends);

public sealed record StoredBackend(
    Guid Id,
    Guid ModelId,
    string Url,
    int Weight,
    bool Active,
    bool Healthy,
    DateTimeOffset? LastHealthCheck,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt);

/// <summary>An API key's metadata. The plaintext is never stored; <see cref="KeyHash"/> is the SHA-256 hex of it.</summary>
public sealed record StoredKey(
    Guid Id,
    string KeyHash,
    string KeyPrefix,
    string Name,
    bool Active,
    long? RpmLimit,
    long? TpmLimit,
    IReadOnlyList<string> AllowedModels,
    DateTimeOffset? ExpiresAt,
    DateTimeOffset CreatedAt,
    DateTimeOffset? LastUsedAt);

/// <summary>Everything a snapshot is built from, read in one consistent pass.</summary>
public sealed record StoreContents(IReadOnlyList<StoredModel> Models, IReadOnlyList<StoredKey> Keys);

public sealed record NewModel
{
    public required string Name { get; init; }
    public required string ModelId { get; init; }
    public bool Active { get; init; } = true;
    public string DefaultParams { get; init; } = "{}";
    public string ReasoningConfig { get; init; } = "{}";
    public string Transforms { get; init; } = "{}";
    public string RateLimits { get; init; } = "{}";
}

/// <summary>A partial update: null = leave as is.</summary>
public sealed record ModelPatch
{
    public string? Name { get; init; }
    public string? ModelId { get; init; }
    public bool? Active { get; init; }
    public string? DefaultParams { get; init; }
    public string? ReasoningConfig { get; init; }
    public string? Transforms { get; init; }
    public string? RateLimits { get; init; }
}

public sealed record NewBackend
{
    public required string Url { get; init; }
    public int Weight { get; init; } = 1;
    public bool Active { get; init; } = true;
}

/// <summary>A partial update: null = leave as is.</summary>
public sealed record BackendPatch
{
    public string? Url { get; init; }
    public int? Weight { get; init; }
    public bool? Active { get; init; }
    public bool? Healthy { get; init; }
}

public sealed record NewKey
{
    /// <summary>SHA-256 of the full key, lowercase hex (64 characters).</summary>
    public required string KeyHash { get; init; }
    public required string KeyPrefix { get; init; }
    public required string Name { get; init; }
    public bool Active { get; init; } = true;
    public long? RpmLimit { get; init; }
    public long? TpmLimit { get; init; }
    public IReadOnlyList<string> AllowedModels { get; init; } = [];
    public DateTimeOffset? ExpiresAt { get; init; }
}

/// <summary>A partial update: null = leave as is; <see cref="Set{T}"/> wraps values that may themselves be cleared to null.</summary>
public sealed record KeyPatch
{
    public string? Name { get; init; }
    public bool? Active { get; init; }
    public Set<long?>? RpmLimit { get; init; }
    public Set<long?>? TpmLimit { get; init; }
    public IReadOnlyList<string>? AllowedModels { get; init; }
    public Set<DateTimeOffset?>? ExpiresAt { get; init; }
    /// <summary>Only the seeder replaces a key's hash (a config entry whose key changed).</summary>
    public string? KeyHash { get; init; }
    public string? KeyPrefix { get; init; }
}

/// <summary>"Set this field to <see cref="Value"/>", distinguishing "set to null" from "leave alone" (a null <c>Set?</c>).</summary>
public readonly record struct Set<T>(T Value);

/// <summary>One backend's health as an instance's checks see it. <see cref="ServedModelId"/> is the model's <c>model_id</c> (what vLLM serves).</summary>
public sealed record BackendHealthReport(string ServedModelId, string Url, bool Healthy, DateTimeOffset CheckedAt);

/// <summary>A key's last use as one instance saw it; the store keeps the latest of all reports (<c>api_keys.last_used_at</c>).</summary>
public sealed record KeyUsageReport(Guid KeyId, DateTimeOffset LastUsedAt);
