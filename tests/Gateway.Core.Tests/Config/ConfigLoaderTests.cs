using Gateway.Config;

namespace Gateway.Tests.Config;

public sealed class ConfigLoaderTests
{
    private static readonly Dictionary<string, string?> NoEnv = new();

    private static GatewayOptions Load(string toml, Dictionary<string, string?>? env = null) => ConfigLoader.Load(toml, "gateway.toml", env ?? NoEnv);

    private static string Error(string toml, Dictionary<string, string?>? env = null) =>
        Assert.Throws<ConfigException>(() => Load(toml, env)).Message;

    [Fact]
    public void The_shipped_gateway_toml_is_valid()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "../../../../../gateway.toml");
        var options = ConfigLoader.LoadFile(path, NoEnv);
        Assert.Equal(8080, options.Server.Port);
        var model = Assert.Single(options.Models);
        Assert.Equal("qwen", model.Name);
        Assert.Equal(false, model.EnableThinking);
        Assert.Equal("You are terse.", model.SystemPromptPrefix);
        Assert.Equal(new KeyValuePair<string, string>("temperature", "0.7"), Assert.Single(model.DefaultParams));
        Assert.Single(options.Keys);
    }

    [Fact]
    public void Io_threads_is_read()
    {
        Assert.Equal(1, Load("[server]\nio_threads = 1").Server.IoThreads);
        Assert.False(Load("[server]\ninline_io = false").Server.InlineIo);
    }

    [Fact]
    public void Transport_is_read_and_defaults_to_the_loop()
    {
        Assert.Equal(ServerTransport.Loop, Load("").Server.Transport);
        Assert.Equal(ServerTransport.Loop, Load("[server]\ntransport = \"loop\"").Server.Transport);
        Assert.Equal(ServerTransport.Sockets, Load("[server]\ntransport = \"sockets\"").Server.Transport);
    }

    [Fact]
    public void An_empty_file_gives_the_seed_defaults()
    {
        var o = Load("");
        Assert.Equal(8080, o.Server.Port);
        Assert.Equal(TimeSpan.FromSeconds(30), o.Server.ReadTimeout);
        Assert.Equal(TimeSpan.FromSeconds(300), o.Server.WriteTimeout);
        Assert.Equal(60, o.DefaultRpm);
        Assert.Equal(100_000, o.DefaultTpm);
        Assert.Equal(TimeSpan.FromSeconds(10), o.HealthCheck.Interval);
        Assert.Equal(3, o.HealthCheck.HealthyThreshold);
        Assert.Equal(1, o.HealthCheck.UnhealthyThreshold);
        Assert.Equal(TimeSpan.FromSeconds(30), o.CacheRefreshInterval);
        Assert.Equal(TimeSpan.FromSeconds(30), o.KeyLastUsedFlushInterval);
        Assert.Equal(0, o.Server.IoThreads);
        Assert.Equal("info", o.LogLevel);
        Assert.Equal("json", o.LogFormat);
        Assert.Null(o.DatabaseUrl);
        Assert.Null(o.RedisUrl);
        Assert.True(o.Proxy.PooledConnectionIdleTimeout < TimeSpan.FromSeconds(5));
        Assert.Equal(TimeSpan.FromSeconds(5), o.Proxy.ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(300), o.Proxy.FirstByteTimeout);
        Assert.Equal(TimeSpan.FromSeconds(120), o.Proxy.StreamIdleTimeout);
        Assert.Equal(UpstreamClientKind.Http1, o.Proxy.UpstreamClient);
    }

    [Fact]
    public void Last_used_flush_interval_is_read_from_auth() =>
        Assert.Equal(TimeSpan.FromMinutes(1), Load("[auth]\nlast_used_flush_interval = \"1m\"").KeyLastUsedFlushInterval);

    [Fact]
    public void Upstream_timeouts_are_read_from_proxy()
    {
        var o = Load("[proxy]\nconnect_timeout = \"2s\"\nfirst_byte_timeout = \"90s\"\nstream_idle_timeout = \"1m30s\"\n");
        Assert.Equal(TimeSpan.FromSeconds(2), o.Proxy.ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(90), o.Proxy.FirstByteTimeout);
        Assert.Equal(TimeSpan.FromSeconds(90), o.Proxy.StreamIdleTimeout);
    }

    [Fact]
    public void Environment_overrides_win()
    {
        var env = new Dictionary<string, string?>
        {
            ["DATABASE_URL"] = "Host=db", ["REDIS_URL"] = "redis:6379", ["ADMIN_API_KEY"] = "secret",
            ["PORT"] = "9999", ["LOG_LEVEL"] = "DEBUG", ["LOG_FORMAT"] = "text",
        };
        var o = Load("[server]\nport = 1\n[database]\nurl = \"x\"\n[logging]\nlevel = \"error\"\n", env);
        Assert.Equal(9999, o.Server.Port);
        Assert.Equal("Host=db", o.DatabaseUrl);
        Assert.Equal("redis:6379", o.RedisUrl);
        Assert.Equal("secret", o.AdminKey);
        Assert.Equal("debug", o.LogLevel);
        Assert.Equal("text", o.LogFormat);
    }

    [Theory]
    [InlineData("[server]\nport = \"x\"", "line 2: `port = \"x\"`")]
    [InlineData("[server]\nport = 70000", "server.port: 70000 is out of range")]
    [InlineData("[server]\nio_threads = -1", "server.io_threads: -1 is out of range (0..1024)")]
    [InlineData("[server]\nio_threads = \"two\"", "line 2")]
    [InlineData("[server]\ntransport = \"epoll\"", "server.transport: 'epoll' is not one of loop, sockets")]
    [InlineData("[server]\nread_timeout = \"soon\"", "server.read_timeout: 'soon' is not a duration")]
    [InlineData("[server]\nmax_body_byte = 5", "server.max_body_byte: unknown key")]
    [InlineData("[servr]\nport = 1", "servr: unknown key")]
    [InlineData("[server\nport = 1", "line 1")]
    [InlineData("[logging]\nlevel = \"loud\"", "logging.level: 'loud' is not one of")]
    [InlineData("[[models]]\nmodel_id = \"x\"", "models[0].name: is required")]
    [InlineData("[[models]]\nname = \"a\"", "models[0].model_id: is required")]
    [InlineData("[[models]]\nname = \"a\"\nmodel_id = \"x\"\n[[models]]\nname = \"a\"\nmodel_id = \"y\"", "models[1].name: 'a' is defined twice")]
    [InlineData("[[models]]\nname = \"a\"\nmodel_id = \"x\"\n[[models.backends]]\nurl = \"ftp://h\"", "models[0].backends[0].url: 'ftp://h' is not an http(s) URL")]
    [InlineData("[[models]]\nname = \"a\"\nmodel_id = \"x\"\n[[models.backends]]\nurl = \"localhost:8000\"", "is not an http(s) URL")]
    [InlineData("[[models]]\nname = \"a\"\nmodel_id = \"x\"\n[[models.backends]]\nurl = \"http://h\"\nweight = 0", "models[0].backends[0].weight: 0 must be between")]
    [InlineData("[[models]]\nname = \"a\"\nmodel_id = \"x\"\n[[models.backends]]\nurl = \"http://h\"\nwieght = 2", "models[0].backends[0].wieght: unknown key")]
    [InlineData("[[models]]\nname = \"a\"\nmodel_id = \"x\"\nreasoning_config = { enable_thinking = \"no\" }", "reasoning_config.enable_thinking: must be true or false")]
    [InlineData("[[models]]\nname = \"a\"\nmodel_id = \"x\"\ndefault_params = { model = \"z\" }", "default_params.model: cannot be defaulted")]
    [InlineData("[[models]]\nname = \"a\"\nmodel_id = \"x\"\ntransforms = { prefix = \"z\" }", "transforms.prefix: unknown key")]
    [InlineData("[[models]]\nname = \"a\"\nmodel_id = \"x\"\nlb = \"round_robin\"", "models[0].lb: 'round_robin' is not one of wrr, p2c")]
    [InlineData("[[models]]\nname = \"a\"\nmodel_id = \"x\"\nlb = 2", "line 4")]
    [InlineData("[proxy]\nstream_idle_timeout = \"0s\"", "proxy.stream_idle_timeout: '0s' must be longer than zero")]
    [InlineData("[auth]\nlast_used_flush_interval = \"0s\"", "auth.last_used_flush_interval: '0s' must be longer than zero")]
    [InlineData("[proxy]\nfirst_byte_timeout = \"soon\"", "proxy.first_byte_timeout: 'soon' is not a duration")]
    [InlineData("[proxy]\nresponse_headers_timeout = \"5s\"", "proxy.response_headers_timeout: unknown key")]
    [InlineData("[proxy]\nupstream_client = \"h2\"", "proxy.upstream_client: 'h2' is not one of sockets, http1")]
    [InlineData("[proxy]\nupstream_client = \"HTTP1\"", "proxy.upstream_client: 'HTTP1' is not one of sockets, http1")]
    [InlineData("[proxy]\nupstream_client = 1", "line 2")]
    [InlineData("[redis]\nlimiter_client = \"se\"", "redis.limiter_client: 'se' is not one of loop, stackexchange")]
    [InlineData("[[keys]]\nname = \"k\"", "keys[0]: needs key or key_hash")]
    [InlineData("[[keys]]\nname = \"k\"\nkey = \"sk-123\"", "keys[0].key: must be 'ml-'")]
    [InlineData("[[keys]]\nname = \"k\"\nkey_hash = \"abc\"", "keys[0].key_hash: must be 64 hex")]
    [InlineData("[[keys]]\nname = \"k\"\nkey_hash = \"0000000000000000000000000000000000000000000000000000000000000000\"\nexpires_at = \"tomorrow\"", "keys[0].expires_at")]
    [InlineData("[[keys]]\nname = \"k\"\nkey_hash = \"0000000000000000000000000000000000000000000000000000000000000000\"\nrpm_limit = 0", "keys[0].rpm_limit: must be greater than 0")]
    [InlineData("[[keys]]\nname = \"k\"\nkey_hash = \"0000000000000000000000000000000000000000000000000000000000000000\"\ntpm_limit = -5", "keys[0].tpm_limit: must be greater than 0")]
    [InlineData("[[models]]\nname = \"a\\nb\"\nmodel_id = \"x\"", "models[0].name: must not contain control characters")]
    [InlineData("[[keys]]\nname = \"k\\u001b[31m\"\nkey_hash = \"0000000000000000000000000000000000000000000000000000000000000000\"", "keys[0].name: must not contain control characters")]
    public void Bad_values_fail_with_one_line_naming_the_key(string toml, string expected)
    {
        var message = Error(toml);
        Assert.Contains(expected, message);
        Assert.StartsWith("gateway.toml: ", message);
        Assert.DoesNotContain("\n", message.TrimEnd());
        Assert.DoesNotContain("   at ", message);
    }

    [Theory]
    [InlineData("", BalancerKind.RoundRobin)]
    [InlineData("lb = \"wrr\"", BalancerKind.RoundRobin)]
    [InlineData("lb = \"p2c\"", BalancerKind.LeastOutstanding)]
    public void Lb_picks_the_balancing_policy(string line, BalancerKind expected) =>
        Assert.Equal(expected, Assert.Single(Load($"[[models]]\nname = \"a\"\nmodel_id = \"x\"\n{line}").Models).Lb);

    [Theory]
    [InlineData("", UpstreamClientKind.Http1)]
    [InlineData("upstream_client = \"sockets\"", UpstreamClientKind.Sockets)]
    [InlineData("upstream_client = \"http1\"", UpstreamClientKind.Http1)]
    public void Upstream_client_picks_what_carries_requests_to_http_backends(string line, UpstreamClientKind expected) =>
        Assert.Equal(expected, Load($"[proxy]\n{line}").Proxy.UpstreamClient);

    [Theory]
    [InlineData("", RedisLimiterClientKind.Loop)]
    [InlineData("limiter_client = \"loop\"", RedisLimiterClientKind.Loop)]
    [InlineData("limiter_client = \"stackexchange\"", RedisLimiterClientKind.StackExchange)]
    public void Redis_limiter_client_picks_what_carries_the_limiter_scripts(string line, RedisLimiterClientKind expected) =>
        Assert.Equal(expected, Load($"[redis]\n{line}").RedisLimiterClient);

    [Fact]
    public void Pass_through_headers_are_read_and_deduplicated()
    {
        Assert.Empty(Load("").Proxy.PassThroughHeaders);
        Assert.Equal(["X-Tenant", "traceparent"], Load("[proxy]\npass_through_headers = [\"X-Tenant\", \"traceparent\", \"x-tenant\"]").Proxy.PassThroughHeaders);
    }

    [Theory]
    [InlineData("Authorization", "cannot be passed through")]
    [InlineData("proxy-authorization", "cannot be passed through")]
    [InlineData("Host", "cannot be passed through")]
    [InlineData("Transfer-Encoding", "cannot be passed through")]
    [InlineData("X-Request-ID", "cannot be passed through")]
    [InlineData("Content-Encoding", "cannot be passed through")]
    [InlineData("accept-encoding", "cannot be passed through")]
    [InlineData("Bad Header", "not a valid header name")]
    [InlineData("", "not a valid header name")]
    [InlineData("X-Café", "not a valid header name")]
    public void Bad_pass_through_headers_are_named(string name, string problem)
    {
        var error = Error($"[proxy]\npass_through_headers = [\"{name}\"]");
        Assert.Contains("proxy.pass_through_headers", error);
        Assert.Contains(problem, error);
    }

    [Fact]
    public void A_bad_port_in_the_environment_is_named()
    {
        Assert.Contains("PORT", Error("", new() { ["PORT"] = "eighty" }));
    }

    [Theory]
    [InlineData("30s", 30_000)]
    [InlineData("500ms", 500)]
    [InlineData("5m", 300_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("1m30s", 90_000)]
    [InlineData("0", 0)]
    public void Durations_parse_like_go(string text, int ms)
    {
        Assert.True(Durations.TryParse(text, out var value));
        Assert.Equal(TimeSpan.FromMilliseconds(ms), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("30")]
    [InlineData("s")]
    [InlineData("3 days")]
    [InlineData("1x")]
    public void Bad_durations_do_not_parse(string text) => Assert.False(Durations.TryParse(text, out _));

    [Fact]
    public void Plain_keys_are_stored_only_as_hashes()
    {
        var o = Load("[[keys]]\nname = \"k\"\nkey = \"ml-" + new string('a', 64) + "\"");
        var key = Assert.Single(o.Keys);
        Assert.Equal(Gateway.Auth.ApiKey.HashHex("ml-" + new string('a', 64)), key.KeyHashHex);
        Assert.Equal("ml-aaaaaaaa", key.KeyPrefix);
    }
}
