using System.Text.Json.Serialization;
using Tomlyn.Model;
using Tomlyn.Serialization;

namespace Gateway.Config;

// The file as written: strings for durations, TOML tables for free-form JSON-like values. GatewayOptions is the validated form.
// Source-generated (TomlSerializerContext): no reflection, safe under Native AOT.

public sealed class TomlFile
{
    public TomlServer? Server { get; set; }
    public TomlDatabase? Database { get; set; }
    public TomlRedis? Redis { get; set; }
    public TomlAuth? Auth { get; set; }
    public TomlRateLimits? RateLimits { get; set; }
    public TomlHealthCheck? HealthCheck { get; set; }
    public TomlRegistry? Registry { get; set; }
    public TomlLogging? Logging { get; set; }
    public TomlStorage? Storage { get; set; }
    public TomlProxy? Proxy { get; set; }
    public TomlMetrics? Metrics { get; set; }
    public List<TomlModelEntry>? Models { get; set; }
    public List<TomlKeyEntry>? Keys { get; set; }
}

public sealed class TomlServer
{
    public string? Host { get; set; }
    public long? Port { get; set; }
    public string? ReadTimeout { get; set; }
    public string? WriteTimeout { get; set; }
    public string? IdleTimeout { get; set; }
    public string? ShutdownTimeout { get; set; }
    public long? MaxBodyBytes { get; set; }
    public bool? InlineIo { get; set; }
    public long? IoThreads { get; set; }
    public string? Transport { get; set; }
}

public sealed class TomlDatabase
{
    public string? Url { get; set; }
    public long? MaxOpenConns { get; set; }
    public long? MaxIdleConns { get; set; }
}

public sealed class TomlRedis
{
    public string? Url { get; set; }
    public string? LimiterClient { get; set; }
}

public sealed class TomlAuth
{
    public string? AdminKey { get; set; }
    public string? LastUsedFlushInterval { get; set; }
}

public sealed class TomlRateLimits
{
    public long? DefaultRpm { get; set; }
    public long? DefaultTpm { get; set; }
    public string? Window { get; set; }
    public string? RedisTimeout { get; set; }
}

public sealed class TomlHealthCheck
{
    public string? Interval { get; set; }
    public string? Timeout { get; set; }
    public long? HealthyThreshold { get; set; }
    public long? UnhealthyThreshold { get; set; }
}

public sealed class TomlRegistry { public string? CacheRefreshInterval { get; set; } }

public sealed class TomlLogging
{
    public string? Level { get; set; }
    public string? Format { get; set; }
}

public sealed class TomlMetrics { public bool? Enabled { get; set; } }

public sealed class TomlStorage { public string? DataDir { get; set; } }

public sealed class TomlProxy
{
    public string? ConnectTimeout { get; set; }
    public string? FirstByteTimeout { get; set; }
    public string? StreamIdleTimeout { get; set; }
    public string? PooledConnectionIdleTimeout { get; set; }
    public long? MaxResponseBytes { get; set; }
    public long? MaxAttempts { get; set; }
    public long? PassiveFailureThreshold { get; set; }
    public List<string>? PassThroughHeaders { get; set; }
    public string? UpstreamClient { get; set; }
}

public sealed class TomlModelEntry
{
    public string? Name { get; set; }
    public string? ModelId { get; set; }
    public bool? Active { get; set; }
    public TomlTable? DefaultParams { get; set; }
    public TomlTable? ReasoningConfig { get; set; }
    public TomlTable? Transforms { get; set; }
    public TomlTable? RateLimits { get; set; }
    public List<TomlBackendEntry>? Backends { get; set; }
    public string? Lb { get; set; }
}

public sealed class TomlBackendEntry
{
    public string? Url { get; set; }
    public long? Weight { get; set; }
    public bool? Active { get; set; }
}

public sealed class TomlKeyEntry
{
    public string? Name { get; set; }
    public string? Key { get; set; }
    public string? KeyHash { get; set; }
    public List<string>? AllowedModels { get; set; }
    public long? RpmLimit { get; set; }
    public long? TpmLimit { get; set; }
    public string? ExpiresAt { get; set; }
    public bool? Active { get; set; }
}

[TomlSerializable(typeof(TomlFile))]
[TomlSerializable(typeof(List<TomlModelEntry>))]
[TomlSerializable(typeof(List<TomlBackendEntry>))]
[TomlSerializable(typeof(List<TomlKeyEntry>))]
[TomlSerializable(typeof(List<string>))]
[TomlSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
public sealed partial class GatewayTomlContext : TomlSerializerContext;
