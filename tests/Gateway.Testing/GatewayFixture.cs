using System.Net.Http.Headers;
using Gateway.Auth;
using Gateway.Config;
using Gateway.Http;
using Gateway.Simulation;
using Xunit;

namespace Gateway.Testing;

/// <summary>
/// The built-in vLLM simulator plus an in-process gateway on port 0 in front of it, in embedded mode, with three keys:
/// one for every model, one for "other" only, one revoked. Shared per test collection; tests reset the simulator's knobs.
/// </summary>
public class GatewayFixture : IAsyncLifetime
{
    public const string Alias = "qwen";
    public const string ModelId = "Qwen/Qwen2.5-7B-Instruct";
    public static readonly string Key = ApiKey.Generate();
    public static readonly string OtherModelKey = ApiKey.Generate();
    public static readonly string RevokedKey = ApiKey.Generate();
    public static readonly string ExpiredKey = ApiKey.Generate();

    public VllmSimulator Simulator { get; private set; } = null!;
    public GatewayHost Gateway { get; private set; } = null!;
    public HttpClient Client { get; private set; } = null!;
    public string BaseUrl => $"http://127.0.0.1:{Gateway.Port}";

    /// <summary>Lets a derived fixture change the configuration (transforms, limits) before the gateway starts.</summary>
    protected virtual GatewayOptions Configure(GatewayOptions options) => options;

    public virtual async Task InitializeAsync()
    {
        Simulator = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Models = [ModelId, "other/model"] });
        var options = Configure(BuildOptions(Simulator.BaseUrl));
        Gateway = new GatewayHost(options, logSink: Stream.Null); // request lines would drown the test output; RequestLogTests captures them
        await Gateway.StartAsync();
        Client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = new Uri(BaseUrl), Timeout = TimeSpan.FromSeconds(60) };
    }

    public static GatewayOptions BuildOptions(string simulatorUrl) => new()
    {
        Server = new ServerOptions { Host = "127.0.0.1", Port = 0, MaxBodyBytes = 64 * 1024 },
        // Tests here exercise the proxy path against fixed backends; health checks and limits have their own tests and hosts.
        HealthCheck = new HealthCheckOptions { Interval = TimeSpan.Zero },
        DefaultRpm = 0,
        DefaultTpm = 0,
        Models =
        [
            new ModelConfig
            {
                Name = Alias, ModelId = ModelId, EnableThinking = false, SystemPromptPrefix = "You are terse.",
                DefaultParams = [new("temperature", "0.7")],
                Backends = [new BackendConfig { Url = simulatorUrl }],
            },
            new ModelConfig { Name = "other", ModelId = "other/model", Backends = [new BackendConfig { Url = simulatorUrl }] },
            new ModelConfig { Name = "ghost", ModelId = "ghost/model", Backends = [new BackendConfig { Url = simulatorUrl }] },
            new ModelConfig { Name = "retired", ModelId = ModelId, Active = false, Backends = [new BackendConfig { Url = simulatorUrl }] },
            new ModelConfig { Name = "down", ModelId = ModelId, Backends = [new BackendConfig { Url = "http://127.0.0.1:9" }] },
        ],
        Keys =
        [
            new KeyConfig { Name = "all", KeyHashHex = ApiKey.HashHex(Key), KeyPrefix = ApiKey.DisplayPrefix(Key) },
            new KeyConfig { Name = "other-only", KeyHashHex = ApiKey.HashHex(OtherModelKey), AllowedModels = ["other"] },
            new KeyConfig { Name = "revoked", KeyHashHex = ApiKey.HashHex(RevokedKey), Active = false },
            new KeyConfig { Name = "expired", KeyHashHex = ApiKey.HashHex(ExpiredKey), ExpiresAt = DateTimeOffset.UtcNow.AddDays(-1) },
        ],
    };

    /// <summary>Puts the simulator back to its defaults and forgets what it captured.</summary>
    public void ResetSimulator()
    {
        var o = Simulator.Options;
        o.TtftMs = 0; o.ItlMs = 0; o.Tokens = 16; o.FailRate = 0; o.DieAfterEvents = 0; o.StallAfterTokens = 0;
        o.HealthDelayMs = 0; o.HealthFails = false; o.NotReady = false;
        Simulator.ClearCaptured();
    }

    public HttpRequestMessage Post(string path, string body, string? key = null, string contentType = "application/json") =>
        CreatePost(path, body, key, contentType);

    /// <summary>A client for a gateway a test started itself (30 s timeout: a hung request fails the test, not the run).</summary>
    public static HttpClient ClientFor(GatewayHost gateway) =>
        new() { BaseAddress = new Uri($"http://127.0.0.1:{gateway.Port}"), Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>A JSON POST with the all-models key (or <paramref name="key"/>; "" = no Authorization header).</summary>
    public static HttpRequestMessage CreatePost(string path, string body, string? key = null, string contentType = "application/json")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if ((key ?? Key) is { Length: > 0 } k) request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + k);
        return request;
    }

    public virtual async Task DisposeAsync()
    {
        Client.Dispose();
        await Gateway.DisposeAsync();
        await Simulator.DisposeAsync();
    }
}
