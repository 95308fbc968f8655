using System.Globalization;
using System.Text.Json;
using Gateway.Auth;
using Tomlyn;
using Tomlyn.Model;

namespace Gateway.Config;

/// <summary>
/// Reads gateway.toml (or nothing), applies the seed's environment overrides, and validates every value. Any problem is a
/// <see cref="ConfigException"/> with one line naming the key, never a stack trace.
/// </summary>
public static partial class ConfigLoader
{
    public static GatewayOptions LoadFile(string path, IReadOnlyDictionary<string, string?>? env = null)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"{path}: cannot read the file: {e.Message}");
        }
        return Load(text, path, env);
    }

    /// <summary>Parses TOML text; <paramref name="source"/> names it in messages.</summary>
    public static GatewayOptions Load(string text, string source, IReadOnlyDictionary<string, string?>? env = null)
    {
        env ??= ReadEnvironment();
        TomlFile file;
        try
        {
            var table = (TomlTable?)TomlSerializer.Deserialize(text, typeof(TomlTable), GatewayTomlContext.Default) ?? new TomlTable();
            KnownKeys.Check(table, source);
            file = (TomlFile?)TomlSerializer.Deserialize(text, typeof(TomlFile), GatewayTomlContext.Default) ?? new TomlFile();
        }
        catch (TomlException e)
        {
            throw new ConfigException($"{source}: {Describe(e.Message, text)}");
        }
        return Validate(file, source, env);
    }

    public static IReadOnlyDictionary<string, string?> ReadEnvironment()
    {
        var names = new[] { "DATABASE_URL", "REDIS_URL", "ADMIN_API_KEY", "PORT", "LOG_LEVEL", "LOG_FORMAT" };
        var result = new Dictionary<string, string?>();
        foreach (var name in names) result[name] = Environment.GetEnvironmentVariable(name);
        return result;
    }

    // Tomlyn wraps "(line,col) : error : reason" inside converter messages, sometimes twice; keep the innermost and quote the line.
    private static string Describe(string message, string text)
    {
        var matches = TomlLocation().Matches(message);
        if (matches.Count == 0) return message.Split('\n')[0].Trim();
        var last = matches[^1];
        var line = int.Parse(last.Groups[1].ValueSpan, CultureInfo.InvariantCulture);
        var reason = last.Groups[2].Value.Trim().TrimEnd('.');
        var lines = text.Split('\n');
        var quoted = line >= 1 && line <= lines.Length ? lines[line - 1].Trim() : "";
        return $"line {line}: `{quoted}`: {reason}";
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"\((\d+),\d+\) : error : ([^\r\n]*?)(?=$|\r|\n| \(\d+,\d+\) : error)")]
    private static partial System.Text.RegularExpressions.Regex TomlLocation();

    private static GatewayOptions Validate(TomlFile f, string source, IReadOnlyDictionary<string, string?> env)
    {
        string Fail(string key, string problem) => throw new ConfigException($"{source}: {key}: {problem}");

        TimeSpan Duration(string? value, string key, TimeSpan fallback)
        {
            if (value is null) return fallback;
            if (!Durations.TryParse(value, out var d) || d < TimeSpan.Zero)
                Fail(key, $"'{value}' is not a duration (use forms like \"500ms\", \"30s\", \"5m\")");
            return d;
        }
        TimeSpan Limit(string? value, string key, TimeSpan fallback)
        {
            var d = Duration(value, key, fallback);
            if (d <= TimeSpan.Zero || d > TimeSpan.FromDays(1)) Fail(key, $"'{value}' must be longer than zero and at most a day");
            return d;
        }
        int Int(long? value, string key, int fallback, long min, long max)
        {
            if (value is null) return fallback;
            if (value < min || value > max) Fail(key, $"{value} is out of range ({min}..{max})");
            return (int)value.Value;
        }
        string? Env(string name) => env.TryGetValue(name, out var v) && !string.IsNullOrEmpty(v) ? v : null;

        var server = new ServerOptions();
        var s = f.Server;
        int port = Int(s?.Port, "server.port", server.Port, 0, 65535);
        if (Env("PORT") is { } envPort)
            port = int.TryParse(envPort, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p <= 65535
                ? p : throw new ConfigException($"environment: PORT: '{envPort}' is not a port number");
        long maxBody = s?.MaxBodyBytes ?? server.MaxBodyBytes;
        if (maxBody < 1024 || maxBody > 1L << 30) Fail("server.max_body_bytes", $"{maxBody} is out of range (1024..1073741824)");
        server = server with
        {
            Host = string.IsNullOrWhiteSpace(s?.Host) ? server.Host : s!.Host!,
            Port = port,
            ReadTimeout = Duration(s?.ReadTimeout, "server.read_timeout", server.ReadTimeout),
            WriteTimeout = Duration(s?.WriteTimeout, "server.write_timeout", server.WriteTimeout),
            IdleTimeout = Duration(s?.IdleTimeout, "server.idle_timeout", server.IdleTimeout),
            ShutdownTimeout = Duration(s?.ShutdownTimeout, "server.shutdown_timeout", server.ShutdownTimeout),
            MaxBodyBytes = maxBody,
            InlineIo = s?.InlineIo ?? server.InlineIo,
            IoThreads = Int(s?.IoThreads, "server.io_threads", server.IoThreads, 0, 1024),
            Transport = s?.Transport switch
            {
                null or "loop" => ServerTransport.Loop,
                "sockets" => ServerTransport.Sockets,
                var other => throw new ConfigException($"{source}: server.transport: '{other}' is not one of loop, sockets"),
            },
        };

        var health = new HealthCheckOptions();
        health = health with
        {
            Interval = Duration(f.HealthCheck?.Interval, "health_check.interval", health.Interval),
            Timeout = Duration(f.HealthCheck?.Timeout, "health_check.timeout", health.Timeout),
            HealthyThreshold = Int(f.HealthCheck?.HealthyThreshold, "health_check.healthy_threshold", health.HealthyThreshold, 1, 100),
            UnhealthyThreshold = Int(f.HealthCheck?.UnhealthyThreshold, "health_check.unhealthy_threshold", health.UnhealthyThreshold, 1, 100),
        };

        var proxy = new ProxyOptions();
        var px = f.Proxy;
        var upstreamClient = px?.UpstreamClient switch
        {
            "sockets" => UpstreamClientKind.Sockets,
            null or "http1" => UpstreamClientKind.Http1,
            var other => throw new ConfigException($"{source}: proxy.upstream_client: '{other}' is not one of sockets, http1"),
        };
        proxy = proxy with
        {
            ConnectTimeout = Limit(px?.ConnectTimeout, "proxy.connect_timeout", proxy.ConnectTimeout),
            FirstByteTimeout = Limit(px?.FirstByteTimeout, "proxy.first_byte_timeout", proxy.FirstByteTimeout),
            StreamIdleTimeout = Limit(px?.StreamIdleTimeout, "proxy.stream_idle_timeout", proxy.StreamIdleTimeout),
            PooledConnectionIdleTimeout = Duration(px?.PooledConnectionIdleTimeout, "proxy.pooled_connection_idle_timeout", proxy.PooledConnectionIdleTimeout),
            MaxResponseBytes = px?.MaxResponseBytes is { } mr ? (mr >= 1024 ? mr : throw new ConfigException($"{source}: proxy.max_response_bytes: {mr} is below 1024")) : proxy.MaxResponseBytes,
            MaxAttempts = Int(px?.MaxAttempts, "proxy.max_attempts", proxy.MaxAttempts, 1, 10),
            PassiveFailureThreshold = Int(px?.PassiveFailureThreshold, "proxy.passive_failure_threshold", proxy.PassiveFailureThreshold, 1, 1000),
            UpstreamClient = upstreamClient,
            PassThroughHeaders = PassThroughHeaders(px?.PassThroughHeaders, source),
        };

        var level = (Env("LOG_LEVEL") ?? f.Logging?.Level ?? "info").ToLowerInvariant();
        if (level is not ("debug" or "info" or "warn" or "error")) Fail("logging.level", $"'{level}' is not one of debug, info, warn, error");
        var format = (Env("LOG_FORMAT") ?? f.Logging?.Format ?? "json").ToLowerInvariant();
        if (format is not ("json" or "text")) Fail("logging.format", $"'{format}' is not one of json, text");

        long defaultRpm = f.RateLimits?.DefaultRpm ?? 60, defaultTpm = f.RateLimits?.DefaultTpm ?? 100_000;
        if (defaultRpm < 0) Fail("rate_limits.default_rpm", "must not be negative");
        if (defaultTpm < 0) Fail("rate_limits.default_tpm", "must not be negative");

        var models = ValidateModels(f.Models, Fail);
        var keys = ValidateKeys(f.Keys, Fail);

        return new GatewayOptions
        {
            Server = server,
            DatabaseUrl = Env("DATABASE_URL") ?? NullIfEmpty(f.Database?.Url),
            DatabaseMaxOpenConns = Int(f.Database?.MaxOpenConns, "database.max_open_conns", 25, 1, 10_000),
            DatabaseMaxIdleConns = Int(f.Database?.MaxIdleConns, "database.max_idle_conns", 10, 0, 10_000),
            RedisUrl = Env("REDIS_URL") ?? NullIfEmpty(f.Redis?.Url),
            RedisLimiterClient = f.Redis?.LimiterClient switch
            {
                null or "loop" => RedisLimiterClientKind.Loop,
                "stackexchange" => RedisLimiterClientKind.StackExchange,
                var other => throw new ConfigException($"{source}: redis.limiter_client: '{other}' is not one of loop, stackexchange"),
            },
            AdminKey = Env("ADMIN_API_KEY") ?? NullIfEmpty(f.Auth?.AdminKey),
            KeyLastUsedFlushInterval = Limit(f.Auth?.LastUsedFlushInterval, "auth.last_used_flush_interval", TimeSpan.FromSeconds(30)),
            DefaultRpm = defaultRpm,
            DefaultTpm = defaultTpm,
            RateLimitWindow = Duration(f.RateLimits?.Window, "rate_limits.window", TimeSpan.FromMinutes(1)) is { } w && w > TimeSpan.Zero
                ? w : throw new ConfigException($"{source}: rate_limits.window: must be longer than zero"),
            RateLimiterTimeout = Duration(f.RateLimits?.RedisTimeout, "rate_limits.redis_timeout", TimeSpan.FromMilliseconds(10)),
            HealthCheck = health,
            CacheRefreshInterval = Duration(f.Registry?.CacheRefreshInterval, "registry.cache_refresh_interval", TimeSpan.FromSeconds(30)),
            LogLevel = level,
            MetricsEnabled = f.Metrics?.Enabled ?? true,
            LogFormat = format,
            DataDir = string.IsNullOrWhiteSpace(f.Storage?.DataDir) ? ".data" : f.Storage!.DataDir!,
            Proxy = proxy,
            Models = models,
            Keys = keys,
        };
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    private static List<ModelConfig> ValidateModels(List<TomlModelEntry>? entries, Func<string, string, string> fail)
    {
        var result = new List<ModelConfig>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < (entries?.Count ?? 0); i++)
        {
            var m = entries![i];
            var at = $"models[{i}]";
            if (string.IsNullOrWhiteSpace(m.Name)) fail($"{at}.name", "is required");
            else if (m.Name.Any(char.IsControl)) fail($"{at}.name", "must not contain control characters");
            if (!names.Add(m.Name!)) fail($"{at}.name", $"'{m.Name}' is defined twice");
            if (string.IsNullOrWhiteSpace(m.ModelId)) fail($"{at}.model_id", "is required");

            var defaults = new List<KeyValuePair<string, string>>();
            if (m.DefaultParams is { } dp)
                foreach (var (key, value) in dp)
                {
                    if (ModelRules.IsReservedParam(key))
                        fail($"{at}.default_params.{key}", "cannot be defaulted");
                    defaults.Add(new(key, TomlJson.ToJson(value)));
                }

            bool? thinking = null;
            if (m.ReasoningConfig is { } rc)
                foreach (var (key, value) in rc)
                {
                    if (key is not ("enable_thinking" or "enabled")) fail($"{at}.reasoning_config.{key}", "unknown key (use enable_thinking or enabled)");
                    if (value is not bool b) { fail($"{at}.reasoning_config.{key}", "must be true or false"); b = false; }
                    thinking = b;
                }

            string? prefix = null;
            if (m.Transforms is { } tr)
                foreach (var (key, value) in tr)
                {
                    if (key != "system_prompt_prefix") fail($"{at}.transforms.{key}", "unknown key (supported: system_prompt_prefix)");
                    prefix = value as string ?? fail($"{at}.transforms.system_prompt_prefix", "must be a string");
                    if (prefix.Length == 0) prefix = null;
                }

            long? rpm = null, tpm = null;
            if (m.RateLimits is { } rl)
                foreach (var (key, value) in rl)
                {
                    if (key is not ("rpm" or "tpm")) fail($"{at}.rate_limits.{key}", "unknown key (use rpm and tpm)");
                    if (value is not long n || n < 0) { fail($"{at}.rate_limits.{key}", "must be a whole number ≥ 0"); n = 0; }
                    if (key == "rpm") rpm = n; else tpm = n;
                }

            var lb = m.Lb == "p2c" ? BalancerKind.LeastOutstanding : BalancerKind.RoundRobin;
            if (m.Lb is not (null or "wrr" or "p2c")) fail($"{at}.lb", $"'{m.Lb}' is not one of wrr, p2c");

            var backends = new List<BackendConfig>();
            var urls = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            for (int j = 0; j < (m.Backends?.Count ?? 0); j++)
            {
                var b = m.Backends![j];
                var bat = $"{at}.backends[{j}]";
                if (string.IsNullOrWhiteSpace(b.Url) || !Uri.TryCreate(b.Url, UriKind.Absolute, out var uri) ||
                    (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || string.IsNullOrEmpty(uri.Host))
                {
                    fail($"{bat}.url", $"'{b.Url}' is not an http(s) URL with a host");
                    continue;
                }
                if (!urls.Add(b.Url.TrimEnd('/'))) fail($"{bat}.url", $"'{b.Url}' is listed twice");
                if (b.Weight is { } w && (w <= 0 || w > ModelRules.MaxWeight)) fail($"{bat}.weight", $"{w} must be between 1 and {ModelRules.MaxWeight}");
                backends.Add(new BackendConfig { Url = b.Url.TrimEnd('/'), Weight = (int)(b.Weight ?? 1), Active = b.Active ?? true });
            }

            result.Add(new ModelConfig
            {
                Name = m.Name!, ModelId = m.ModelId!, Active = m.Active ?? true,
                DefaultParams = defaults, EnableThinking = thinking, SystemPromptPrefix = prefix, Backends = backends,
                RpmLimit = rpm, TpmLimit = tpm, Lb = lb,
            });
        }
        return result;
    }

    private static List<KeyConfig> ValidateKeys(List<TomlKeyEntry>? entries, Func<string, string, string> fail)
    {
        var result = new List<KeyConfig>();
        var hashes = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < (entries?.Count ?? 0); i++)
        {
            var k = entries![i];
            var at = $"keys[{i}]";
            if (string.IsNullOrWhiteSpace(k.Name)) fail($"{at}.name", "is required");
            else if (k.Name.Any(char.IsControl)) fail($"{at}.name", "must not contain control characters");
            string hash;
            string? prefix = null;
            if (k.Key is { } plain)
            {
                if (k.KeyHash is not null) fail(at, "set either key or key_hash, not both");
                if (!ApiKey.IsWellFormed(plain)) fail($"{at}.key", "must be 'ml-' followed by 64 lowercase hex characters");
                hash = ApiKey.HashHex(plain);
                prefix = ApiKey.DisplayPrefix(plain);
            }
            else if (k.KeyHash is { } h)
            {
                hash = h.ToLowerInvariant();
                if (!KeyHash.TryParseHex(hash, out _)) fail($"{at}.key_hash", "must be 64 hex characters (the SHA-256 of the ml- key)");
            }
            else { fail(at, "needs key or key_hash"); continue; }
            if (!hashes.Add(hash)) fail(at, "the same key is listed twice");

            DateTimeOffset? expires = null;
            if (k.ExpiresAt is { } e)
            {
                if (!DateTimeOffset.TryParse(e, CultureInfo.InvariantCulture, DateTimeStyles.None, out var parsed) || !e.Contains('T'))
                    fail($"{at}.expires_at", $"'{e}' is not an RFC 3339 timestamp");
                expires = parsed;
            }
            // As the store and the admin API have it: a key's own limit is positive; without one, rate_limits.default_* applies.
            if (k.RpmLimit <= 0) fail($"{at}.rpm_limit", "must be greater than 0 (leave it out for rate_limits.default_rpm)");
            if (k.TpmLimit <= 0) fail($"{at}.tpm_limit", "must be greater than 0 (leave it out for rate_limits.default_tpm)");
            result.Add(new KeyConfig
            {
                Name = k.Name!, KeyHashHex = hash, KeyPrefix = prefix, AllowedModels = k.AllowedModels ?? [],
                RpmLimit = k.RpmLimit, TpmLimit = k.TpmLimit, ExpiresAt = expires, Active = k.Active ?? true,
            });
        }
        return result;
    }

    /// <summary>Header names the gateway must never forward from a client, or sets itself.</summary>
    private static readonly string[] NotPassable =
    [
        "authorization", "proxy-authorization", "cookie", "host", "content-type", "content-length", "transfer-encoding", "connection",
        "keep-alive", "upgrade", "te", "trailer", "proxy-connection", "expect", "accept", "x-request-id", "accept-encoding",
    ];

    private static string[] PassThroughHeaders(List<string>? names, string source)
    {
        if (names is null || names.Count == 0) return [];
        var result = new List<string>(names.Count);
        foreach (var name in names)
        {
            if (name.Length == 0 || name.AsSpan().IndexOfAnyExcept(HeaderNameChars) >= 0)
                throw new ConfigException($"{source}: proxy.pass_through_headers: '{name}' is not a valid header name");
            // Content-* describe the body, which the gateway rewrites; Accept-Encoding would ask for a body it cannot read.
            if (NotPassable.Contains(name.ToLowerInvariant()) || name.StartsWith("content-", StringComparison.OrdinalIgnoreCase))
                throw new ConfigException($"{source}: proxy.pass_through_headers: '{name}' cannot be passed through (credentials, hop-by-hop, or set by the gateway)");
            if (!result.Contains(name, StringComparer.OrdinalIgnoreCase)) result.Add(name);
        }
        return [.. result];
    }

    /// <summary>RFC 9110 token characters.</summary>
    private static readonly System.Buffers.SearchValues<char> HeaderNameChars =
        System.Buffers.SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
}
