namespace Gateway.Config;

/// <summary>The validated configuration: every value typed, every default applied. Built only by <see cref="ConfigLoader"/>.</summary>
public sealed record GatewayOptions
{
    public ServerOptions Server { get; init; } = new();
    public string? DatabaseUrl { get; init; }
    public int DatabaseMaxOpenConns { get; init; } = 25;
    public int DatabaseMaxIdleConns { get; init; } = 10;
    public string? RedisUrl { get; init; }
    /// <summary><c>redis.limiter_client</c>: what carries the rate limiter's scripts to Redis (see <see cref="RedisLimiterClientKind"/>).</summary>
    public RedisLimiterClientKind RedisLimiterClient { get; init; } = RedisLimiterClientKind.Loop;
    public string? AdminKey { get; init; }
    /// <summary>
    /// <c>auth.last_used_flush_interval</c>: how often keys' last-use times go to the store (and so how late the admin API's
    /// <c>last_used_at</c> may be). The request path only stores a timestamp in memory.
    /// </summary>
    public TimeSpan KeyLastUsedFlushInterval { get; init; } = TimeSpan.FromSeconds(30);
    public long DefaultRpm { get; init; } = 60;
    public long DefaultTpm { get; init; } = 100_000;
    /// <summary>The sliding window of every limit; a minute in production, shorter in tests.</summary>
    public TimeSpan RateLimitWindow { get; init; } = TimeSpan.FromMinutes(1);
    /// <summary>How long a request waits for Redis before it is allowed without a decision (fail-open).</summary>
    public TimeSpan RateLimiterTimeout { get; init; } = TimeSpan.FromMilliseconds(10);
    public HealthCheckOptions HealthCheck { get; init; } = new();
    public TimeSpan CacheRefreshInterval { get; init; } = TimeSpan.FromSeconds(30);
    public string LogLevel { get; init; } = "info";
    public string LogFormat { get; init; } = "json";
    /// <summary><c>[metrics] enabled</c>: off skips per-request recording and serves no /metrics (for measuring what metrics cost).</summary>
    public bool MetricsEnabled { get; init; } = true;
    public string DataDir { get; init; } = ".data";
    public ProxyOptions Proxy { get; init; } = new();
    public IReadOnlyList<ModelConfig> Models { get; init; } = [];
    public IReadOnlyList<KeyConfig> Keys { get; init; } = [];
}

public sealed record ServerOptions
{
    public string Host { get; init; } = "0.0.0.0";
    public int Port { get; init; } = 8080;
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan WriteTimeout { get; init; } = TimeSpan.FromSeconds(300);
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(120);
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);
    public long MaxBodyBytes { get; init; } = 8 * 1024 * 1024;
    /// <summary>
    /// Event-loop style I/O: socket completions and Kestrel's pipes run the request path on the epoll threads, as nginx does, instead
    /// of hopping to the thread pool. Measured under wrk on 2 cores: 0.2–0.7 context switches per request instead of ~1.7, and
    /// 15–20% less CPU per request. The request path never blocks, so nothing stalls the loop but CPU work (a 100 KB body scans in ~70 µs).
    /// </summary>
    public bool InlineIo { get; init; } = true;
    /// <summary>
    /// Socket event-loop threads (0 = one per core, .NET's default with inline I/O). Fewer loops than cores leave the rest to
    /// whatever shares the machine: on 2 cores shared with the load generator and the upstream, 1 loop was measured at 0.4
    /// involuntary context switches per request instead of 1.3, and 20% less CPU per request (bench/load/compare.sh).
    /// A process-wide setting: <c>gateway serve</c> applies it before the first socket exists; an in-process GatewayHost cannot.
    /// </summary>
    public int IoThreads { get; init; }
    /// <summary>
    /// Kestrel's transport. <c>loop</c> (default): the gateway's own edge-triggered epoll loops, shared with the http1 upstream
    /// client, reading a socket only when epoll reported bytes. <c>sockets</c>: Kestrel's own socket transport on .NET's engine.
    /// </summary>
    public ServerTransport Transport { get; init; } = ServerTransport.Loop;
}

public enum ServerTransport : byte
{
    Loop,
    Sockets,
}

public sealed record HealthCheckOptions
{
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);
    public int HealthyThreshold { get; init; } = 3;
    public int UnhealthyThreshold { get; init; } = 1;
}

public sealed record ProxyOptions
{
    /// <summary>TCP connect to a backend; a timeout here is retried on another backend like a refused connection.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>
    /// From sending the request to the upstream's first byte: its response headers and, for a stream, its first event (vLLM sends a
    /// stream's headers at once, then queues and prefills). Long by default because vLLM queues requests. Not retried.
    /// </summary>
    public TimeSpan FirstByteTimeout { get; init; } = TimeSpan.FromSeconds(300);
    /// <summary>The longest gap between upstream reads once bytes flow (stream chunks, or a JSON body arriving in pieces).</summary>
    public TimeSpan StreamIdleTimeout { get; init; } = TimeSpan.FromSeconds(120);
    /// <summary>Below vLLM's 5 s keep-alive so we never reuse a socket the server is about to close.</summary>
    public TimeSpan PooledConnectionIdleTimeout { get; init; } = TimeSpan.FromSeconds(4);
    public long MaxResponseBytes { get; init; } = 64 * 1024 * 1024;
    public int MaxAttempts { get; init; } = 2;
    /// <summary>Consecutive backend-caused failures (connect errors, 5xx before the first byte) that eject a backend until active checks bring it back.</summary>
    public int PassiveFailureThreshold { get; init; } = 5;
    /// <summary><c>upstream_client</c>: what carries requests to http:// backends (https ones always use SocketsHttpHandler).</summary>
    public UpstreamClientKind UpstreamClient { get; init; } = UpstreamClientKind.Http1;
    /// <summary>
    /// <c>pass_through_headers</c>: client request headers forwarded upstream as they are, beyond Content-Type, Accept and
    /// X-Request-ID (e.g. <c>traceparent</c>). Never credentials, hop-by-hop headers or ones the gateway sets itself.
    /// </summary>
    public string[] PassThroughHeaders { get; init; } = [];
}

public enum RedisLimiterClientKind : byte
{
    /// <summary>
    /// <c>"loop"</c>: the gateway's own RESP client on its epoll loops (Limits/Resp) for a plain-TCP REDIS_URL: a check is one
    /// send and one recv, its reply completes the request on the loop thread. rediss:// and option strings use StackExchange.Redis.
    /// </summary>
    Loop,
    /// <summary><c>"stackexchange"</c>: StackExchange.Redis, as for everything else the gateway asks of Redis.</summary>
    StackExchange,
}

public enum UpstreamClientKind : byte
{
    /// <summary><c>"sockets"</c>: .NET's SocketsHttpHandler for every backend.</summary>
    Sockets,
    /// <summary>
    /// <c>"http1"</c>: the gateway's own HTTP/1.1 client (Proxy/Upstream) for http:// backends: ~10 KB less managed heap per open
    /// stream and a few µs less CPU per request.
    /// </summary>
    Http1,
}

public sealed record ModelConfig
{
    public required string Name { get; init; }
    public required string ModelId { get; init; }
    public bool Active { get; init; } = true;
    /// <summary>Default parameters as (name, JSON value) pairs, inserted only where the client sent no such key.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> DefaultParams { get; init; } = [];
    /// <summary>From <c>reasoning_config</c>: <c>enable_thinking</c> or the seed's <c>enabled</c>; null = leave the request alone.</summary>
    public bool? EnableThinking { get; init; }
    public string? SystemPromptPrefix { get; init; }
    /// <summary>The model's own limits (<c>rate_limits = { rpm = N, tpm = N }</c>), applied per key as a second scope; null = none.</summary>
    public long? RpmLimit { get; init; }
    public long? TpmLimit { get; init; }
    public IReadOnlyList<BackendConfig> Backends { get; init; } = [];
    /// <summary><c>lb</c>: how requests are spread over the backends.</summary>
    public BalancerKind Lb { get; init; } = BalancerKind.RoundRobin;
}

public enum BalancerKind : byte
{
    /// <summary><c>"wrr"</c>: smooth weighted round robin; shares follow the weights whatever the backends' speed.</summary>
    RoundRobin,
    /// <summary><c>"p2c"</c>: weighted least-outstanding by power of two choices; a slow or busy backend gets fewer requests.</summary>
    LeastOutstanding,
}

public sealed record BackendConfig
{
    public required string Url { get; init; }
    public int Weight { get; init; } = 1;
    public bool Active { get; init; } = true;
}

public sealed record KeyConfig
{
    public required string Name { get; init; }
    /// <summary>SHA-256 of the full <c>ml-…</c> key, lowercase hex. The plaintext is never kept.</summary>
    public required string KeyHashHex { get; init; }
    /// <summary>The first characters of the key when the plaintext was given (for logs); null when only the hash is known.</summary>
    public string? KeyPrefix { get; init; }
    public IReadOnlyList<string> AllowedModels { get; init; } = [];
    public long? RpmLimit { get; init; }
    public long? TpmLimit { get; init; }
    public DateTimeOffset? ExpiresAt { get; init; }
    public bool Active { get; init; } = true;
}

/// <summary>A configuration problem, reported as one line naming the key.</summary>
public sealed class ConfigException(string message) : Exception(message);
