using System.Text.Json;
using Gateway.Config;

namespace Gateway.Admin;

/// <summary>
/// The four JSON settings of a model, checked with gateway.toml's rules (ConfigLoader) so a setting means the same from either
/// source: a misspelt key would otherwise be stored and silently do nothing. Returned as compact JSON text for the store.
/// </summary>
internal static class ModelSettings
{
    /// <summary>Any members but the request's identity (model, messages, …); values are inserted into requests as they are.</summary>
    public static string? DefaultParams(JsonFields body) => Check(body, "default_params", static (name, value, param) =>
    {
        if (ModelRules.IsReservedParam(name)) throw AdminErrors.Validation(param, $"{param} cannot be defaulted");
    });

    /// <summary><c>{"enable_thinking": bool}</c> or the seed's <c>{"enabled": bool}</c>.</summary>
    public static string? ReasoningConfig(JsonFields body) => Check(body, "reasoning_config", static (name, value, param) =>
    {
        if (name is not ("enable_thinking" or "enabled")) throw AdminErrors.Validation(param, $"unknown key {param} (use enable_thinking or enabled)");
        if (value.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) throw AdminErrors.Validation(param, $"{param} must be true or false");
    });

    public static string? Transforms(JsonFields body) => Check(body, "transforms", static (name, value, param) =>
    {
        if (name is not ("system_prompt_prefix" or "lb")) throw AdminErrors.Validation(param, $"unknown key {param} (supported: system_prompt_prefix, lb)");
        if (value.ValueKind != JsonValueKind.String) throw AdminErrors.Validation(param, $"{param} must be a string");
        // The model's balancer: smooth weighted round robin (default) or weighted power-of-two-choices on in-flight requests.
        if (name == "lb" && value.GetString() is not ("wrr" or "p2c")) throw AdminErrors.Validation(param, $"{param} must be \"wrr\" or \"p2c\"");
    });

    /// <summary><c>{"rpm": n, "tpm": n}</c>, whole numbers ≥ 0 (0 = no limit), applied per key as a second scope.</summary>
    public static string? RateLimits(JsonFields body) => Check(body, "rate_limits", static (name, value, param) =>
    {
        if (name is not ("rpm" or "tpm")) throw AdminErrors.Validation(param, $"unknown key {param} (use rpm and tpm)");
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var n) || n < 0)
            throw AdminErrors.Validation(param, $"{param} must be a whole number ≥ 0");
    });

    private static string? Check(JsonFields body, string field, Action<string, JsonElement, string> member)
    {
        if (body.Object(field) is not { } obj) return null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in obj.EnumerateObject())
        {
            var param = $"{field}.{p.Name}";
            if (!seen.Add(p.Name)) throw AdminErrors.Validation(param, $"{param} appears more than once");
            member(p.Name, p.Value, param);
        }
        return JsonFields.Compact(obj);
    }
}
