using System.Text.Json;
using Gateway.Config;
using Gateway.Routing;
using Gateway.Storage;

namespace Gateway.Admin;

/// <summary>
/// The admin API's response bodies, snake_case as in the seed, written with <see cref="Utf8JsonWriter"/> (no reflection). Lists are
/// <c>[]</c>, never null; timestamps RFC 3339 UTC; a key's hash is never written.
/// </summary>
internal static class AdminJson
{
    public static void Model(Utf8JsonWriter w, StoredModel m, AdminServices services)
    {
        w.WriteStartObject();
        w.WriteString("id"u8, m.Id);
        w.WriteString("name"u8, m.Name);
        w.WriteString("model_id"u8, m.ModelId);
        w.WriteBoolean("active"u8, m.Active);
        Object(w, "default_params"u8, m.DefaultParams);
        Object(w, "reasoning_config"u8, m.ReasoningConfig);
        Object(w, "transforms"u8, m.Transforms);
        Object(w, "rate_limits"u8, m.RateLimits);
        w.WriteBoolean("managed_by_config"u8, services.Managed.Owns(m));
        Time(w, "created_at"u8, m.CreatedAt);
        Time(w, "updated_at"u8, m.UpdatedAt);
        w.WriteStartArray("backends"u8);
        foreach (var b in m.Backends) Backend(w, b, m.ModelId, services.Health);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <param name="servedModel">The model's vLLM model id: backend health is kept per (served model, url).</param>
    public static void Backend(Utf8JsonWriter w, StoredBackend b, string servedModel, BackendHealthRegistry health)
    {
        // Health is this instance's own view (its checks and passive marks), the one its routing uses.
        var live = health.For(servedModel, b.Url);
        w.WriteStartObject();
        w.WriteString("id"u8, b.Id);
        w.WriteString("model_id"u8, b.ModelId);
        w.WriteString("url"u8, b.Url);
        w.WriteNumber("weight"u8, b.Weight);
        w.WriteBoolean("active"u8, b.Active);
        w.WriteBoolean("healthy"u8, live.Healthy);
        Time(w, "last_health_check"u8, live.LastCheck);
        Time(w, "created_at"u8, b.CreatedAt);
        Time(w, "updated_at"u8, b.UpdatedAt);
        w.WriteEndObject();
    }

    public static void Key(Utf8JsonWriter w, StoredKey k, ConfigManaged managed)
    {
        w.WriteStartObject();
        w.WriteString("id"u8, k.Id);
        w.WriteString("name"u8, k.Name);
        w.WriteString("key_prefix"u8, k.KeyPrefix);
        w.WriteBoolean("active"u8, k.Active);
        Number(w, "rpm_limit"u8, k.RpmLimit);
        Number(w, "tpm_limit"u8, k.TpmLimit);
        w.WriteStartArray("allowed_models"u8);
        foreach (var name in k.AllowedModels) w.WriteStringValue(name);
        w.WriteEndArray();
        Time(w, "expires_at"u8, k.ExpiresAt);
        w.WriteBoolean("managed_by_config"u8, managed.Owns(k));
        Time(w, "created_at"u8, k.CreatedAt);
        Time(w, "last_used_at"u8, k.LastUsedAt);
        w.WriteEndObject();
    }

    /// <summary>Re-written rather than copied raw: PostgreSQL's jsonb text has its own spacing, and both stores should answer alike.</summary>
    private static void Object(Utf8JsonWriter w, ReadOnlySpan<byte> name, string json)
    {
        w.WritePropertyName(name);
        using var doc = JsonDocument.Parse(json);
        doc.RootElement.WriteTo(w);
    }

    private static void Time(Utf8JsonWriter w, ReadOnlySpan<byte> name, DateTimeOffset? value)
    {
        if (value is { } v) w.WriteString(name, Rfc3339.Format(v));
        else w.WriteNull(name);
    }

    private static void Number(Utf8JsonWriter w, ReadOnlySpan<byte> name, long? value)
    {
        if (value is { } v) w.WriteNumber(name, v);
        else w.WriteNull(name);
    }
}
