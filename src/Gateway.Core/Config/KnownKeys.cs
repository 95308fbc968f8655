using Tomlyn.Model;

namespace Gateway.Config;

/// <summary>Rejects unknown keys so a typo ("max_body_byte") fails at start instead of silently taking the default.</summary>
internal static class KnownKeys
{
    private static readonly Dictionary<string, string[]> Sections = new()
    {
        [""] = ["server", "database", "redis", "auth", "rate_limits", "health_check", "registry", "logging", "storage", "proxy", "metrics", "models", "keys"],
        ["metrics"] = ["enabled"],
        ["server"] = ["host", "port", "read_timeout", "write_timeout", "idle_timeout", "shutdown_timeout", "max_body_bytes", "inline_io", "io_threads", "transport"],
        ["database"] = ["url", "max_open_conns", "max_idle_conns"],
        ["redis"] = ["url", "limiter_client"],
        ["auth"] = ["admin_key", "last_used_flush_interval"],
        ["rate_limits"] = ["default_rpm", "default_tpm", "window", "redis_timeout"],
        ["health_check"] = ["interval", "timeout", "healthy_threshold", "unhealthy_threshold"],
        ["registry"] = ["cache_refresh_interval"],
        ["logging"] = ["level", "format"],
        ["storage"] = ["data_dir"],
        ["proxy"] = ["connect_timeout", "first_byte_timeout", "stream_idle_timeout", "pooled_connection_idle_timeout", "max_response_bytes", "max_attempts", "passive_failure_threshold", "upstream_client", "pass_through_headers"],
        ["models"] = ["name", "model_id", "active", "default_params", "reasoning_config", "transforms", "rate_limits", "backends", "lb"],
        ["models.backends"] = ["url", "weight", "active"],
        ["keys"] = ["name", "key", "key_hash", "allowed_models", "rpm_limit", "tpm_limit", "expires_at", "active"],
    };

    public static void Check(TomlTable root, string source) => CheckTable(root, "", "", source);

    private static void CheckTable(TomlTable table, string section, string display, string source)
    {
        var allowed = Sections[section];
        foreach (var (key, value) in table)
        {
            var path = display.Length == 0 ? key : $"{display}.{key}";
            if (Array.IndexOf(allowed, key) < 0)
                throw new ConfigException($"{source}: {path}: unknown key (expected one of: {string.Join(", ", allowed)})");
            var child = section.Length == 0 ? key : $"{section}.{key}";
            if (!Sections.ContainsKey(child)) continue; // a leaf or a free-form table (default_params, …)
            switch (value)
            {
                case TomlTable t: CheckTable(t, child, path, source); break;
                case TomlTableArray arr:
                    for (int i = 0; i < arr.Count; i++) CheckTable(arr[i], child, $"{path}[{i}]", source);
                    break;
                default: throw new ConfigException($"{source}: {path}: must be a table");
            }
        }
    }
}
