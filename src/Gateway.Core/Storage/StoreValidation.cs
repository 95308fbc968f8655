using System.Text.Json;

namespace Gateway.Storage;

/// <summary>
/// Input rules shared by both stores, checked before any write so PostgreSQL and the embedded file reject the same things with the
/// same messages. The database constraints stay as a second line of defence.
/// </summary>
public static class StoreValidation
{
    public const int MaxNameLength = 200;

    /// <summary>Parses an id from a URL segment; a malformed one is "not found" (there is no such row), never a server error.</summary>
    public static Guid ParseId(string text, string what) =>
        Guid.TryParseExact(text, "D", out var id) ? id : throw new StoreException(StoreErrorKind.NotFound, $"{what} '{Truncate(text)}' not found (not a UUID)");

    public static void Model(NewModel m)
    {
        Name(m.Name, "name");
        NonEmpty(m.ModelId, "model_id");
        JsonObject(m.DefaultParams, "default_params");
        JsonObject(m.ReasoningConfig, "reasoning_config");
        Transforms(m.Transforms);
        JsonObject(m.RateLimits, "rate_limits");
    }

    public static void Patch(ModelPatch p)
    {
        if (p.Name is not null) Name(p.Name, "name");
        if (p.ModelId is not null) NonEmpty(p.ModelId, "model_id");
        if (p.DefaultParams is not null) JsonObject(p.DefaultParams, "default_params");
        if (p.ReasoningConfig is not null) JsonObject(p.ReasoningConfig, "reasoning_config");
        if (p.Transforms is not null) Transforms(p.Transforms);
        if (p.RateLimits is not null) JsonObject(p.RateLimits, "rate_limits");
    }

    /// <summary>Validates and normalizes a backend URL (no trailing slash, so "http://h:8000/" and "http://h:8000" are one backend).</summary>
    public static string Url(string? url)
    {
        if (string.IsNullOrWhiteSpace(url)) throw StoreException.Validation("url", "url is required");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            throw StoreException.Validation("url", "url must be an absolute http:// or https:// URL");
        if (string.IsNullOrEmpty(uri.Host)) throw StoreException.Validation("url", "url must name a host");
        if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment) || !string.IsNullOrEmpty(uri.UserInfo))
            throw StoreException.Validation("url", "url must not carry a query, fragment or credentials");
        return url.TrimEnd('/');
    }

    public static void Weight(int weight)
    {
        if (weight <= 0) throw StoreException.Validation("weight", "weight must be greater than 0");
    }

    public static void Key(NewKey k)
    {
        KeyHash(k.KeyHash);
        Name(k.Name, "name");
        Limit(k.RpmLimit, "rpm_limit");
        Limit(k.TpmLimit, "tpm_limit");
        AllowedModels(k.AllowedModels);
    }

    public static void Patch(KeyPatch p)
    {
        if (p.Name is not null) Name(p.Name, "name");
        if (p.RpmLimit is { } rpm) Limit(rpm.Value, "rpm_limit");
        if (p.TpmLimit is { } tpm) Limit(tpm.Value, "tpm_limit");
        if (p.AllowedModels is not null) AllowedModels(p.AllowedModels);
        if (p.KeyHash is not null) KeyHash(p.KeyHash);
    }

    private static void KeyHash(string hash)
    {
        if (hash is null || hash.Length != 64 || !hash.All(c => char.IsAsciiDigit(c) || char.IsAsciiHexDigitLower(c)))
            throw StoreException.Validation("key_hash", "key_hash must be 64 lowercase hex characters (SHA-256)");
    }

    private static void Name(string? name, string param)
    {
        NonEmpty(name, param);
        if (name!.Length > MaxNameLength) throw StoreException.Validation(param, $"{param} must be at most {MaxNameLength} characters");
        if (name.Trim().Length != name.Length) throw StoreException.Validation(param, $"{param} must not start or end with whitespace");
        // A name is echoed in error messages, logs and metric labels: a line break or an escape sequence there would forge output.
        if (name.Any(char.IsControl)) throw StoreException.Validation(param, $"{param} must not contain control characters");
    }

    private static void NonEmpty(string? value, string param)
    {
        if (string.IsNullOrWhiteSpace(value)) throw StoreException.Validation(param, $"{param} is required and must not be empty");
    }

    private static void Limit(long? value, string param)
    {
        if (value is <= 0) throw StoreException.Validation(param, $"{param} must be greater than 0");
    }

    private static void AllowedModels(IReadOnlyList<string> models)
    {
        if (models.Any(string.IsNullOrWhiteSpace)) throw StoreException.Validation("allowed_models", "allowed_models must not contain empty names");
    }

    /// <summary>A JSON object whose <c>lb</c>, when present, names a policy the gateway has, so a typo cannot silently mean round robin.</summary>
    private static void Transforms(string? json)
    {
        JsonObject(json, "transforms");
        using var doc = JsonDocument.Parse(json!);
        if (doc.RootElement.TryGetProperty("lb", out var lb) && lb.ValueKind != JsonValueKind.Null &&
            !(lb.ValueKind == JsonValueKind.String && lb.GetString() is "wrr" or "p2c"))
            throw StoreException.Validation("transforms.lb", "transforms.lb must be \"wrr\" or \"p2c\"");
    }

    private static void JsonObject(string? json, string param)
    {
        try
        {
            using var doc = JsonDocument.Parse(json ?? "");
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw StoreException.Validation(param, $"{param} must be a JSON object");
        }
        catch (JsonException)
        {
            throw StoreException.Validation(param, $"{param} must be a JSON object");
        }
    }

    private static string Truncate(string s) => s.Length <= 64 ? s : s[..64] + "…";
}
