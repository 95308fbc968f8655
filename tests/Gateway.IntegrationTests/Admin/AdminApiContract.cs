using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Gateway.Auth;
using Gateway.Config;
using Gateway.Http;
using Gateway.Simulation;
using Gateway.Storage;

namespace Gateway.IntegrationTests.Admin;

/// <summary>
/// The admin API over HTTP against a real gateway (port 0, a simulator upstream) on a real store; every test runs once per store
/// (<see cref="EmbeddedAdminApiTests"/>, <see cref="PostgresAdminApiTests"/>). gateway.toml's part is played by one config model
/// ("cfg-model") and one config key, so the managed-by-config rules are always in play.
/// </summary>
public abstract partial class AdminApiContract : IAsyncLifetime
{
    protected const string AdminKey = "test-admin-key-7f3a9c";
    protected const string ConfigModel = "cfg-model";
    protected const string ConfigModelId = "cfg/served-model";
    protected const string SeedModelId = "meta-llama/Llama-3.1-70B-Instruct";
    protected static readonly string ConfigKey = ApiKey.Generate();

    private GatewayHost? _gateway;
    private HttpClient? _client;

    protected VllmSimulator Sim { get; private set; } = null!;
    protected GatewayHost Gateway => _gateway ?? throw new InvalidOperationException("the gateway is not running");
    protected HttpClient Client => _client ?? throw new InvalidOperationException("the gateway is not running");

    /// <summary>Opens this test's store: the same state every time it is called within one test (a restart reopens it).</summary>
    protected abstract Task<IStore> OpenStoreAsync();

    /// <summary>Replaces this test's store with an empty one (the gateway must be stopped).</summary>
    protected abstract Task ResetStoreAsync();

    /// <summary>Makes the running gateway's store fail from now on, as a database or disk that went away.</summary>
    protected abstract Task BreakStoreAsync();

    /// <summary>Makes the running gateway's key writes fail until <see cref="ResumeStoreAsync"/>, as a store away for a while.</summary>
    protected abstract Task InterruptStoreAsync();

    protected abstract Task ResumeStoreAsync();

    public async Task InitializeAsync()
    {
        Sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Models = [SeedModelId, ConfigModelId], Tokens = 5 });
        await StartGatewayAsync();
    }

    public async Task DisposeAsync()
    {
        await StopGatewayAsync();
        await Sim.DisposeAsync();
    }

    protected GatewayOptions BaseOptions() => new()
    {
        Server = new ServerOptions { Host = "127.0.0.1", Port = 0 },
        HealthCheck = new HealthCheckOptions { Interval = TimeSpan.Zero }, // backends stay as the admin API sets them
        DefaultRpm = 0,
        DefaultTpm = 0,
        AdminKey = AdminKey,
        KeyLastUsedFlushInterval = TimeSpan.FromHours(1), // tests flush (Gateway.KeyUsageWriter) or stop when they mean to
        Models = [new ModelConfig { Name = ConfigModel, ModelId = ConfigModelId, Backends = [new BackendConfig { Url = Sim.BaseUrl }] }],
        Keys = [new KeyConfig { Name = "cfg-key", KeyHashHex = ApiKey.HashHex(ConfigKey), KeyPrefix = ApiKey.DisplayPrefix(ConfigKey) }],
    };

    /// <param name="logSink">Captures the gateway's log (flushed when it stops); discarded when null.</param>
    protected async Task StartGatewayAsync(Func<GatewayOptions, GatewayOptions>? configure = null, Stream? logSink = null)
    {
        await StopGatewayAsync();
        var options = configure is null ? BaseOptions() : configure(BaseOptions());
        _gateway = new GatewayHost(options, logSink ?? Stream.Null, await OpenStoreAsync());
        await _gateway.StartAsync();
        _client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = new Uri($"http://127.0.0.1:{_gateway.Port}"), Timeout = TimeSpan.FromSeconds(60) };
    }

    /// <summary>Stops the gateway (which closes its store and flushes its log).</summary>
    protected async Task StopGatewayAsync()
    {
        _client?.Dispose();
        _client = null;
        if (_gateway is not null) await _gateway.DisposeAsync();
        _gateway = null;
    }

    protected sealed record Reply(int Status, string Text, HttpResponseMessage Response)
    {
        public JsonElement Json => JsonDocument.Parse(Text).RootElement.Clone();
        public override string ToString() => $"{Status} {Text}";
    }

    /// <summary>An admin call; <paramref name="adminKey"/> null = no X-Admin-Key header.</summary>
    protected async Task<Reply> Admin(HttpMethod method, string path, string? body = null, string? adminKey = AdminKey, string contentType = "application/json")
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8);
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }
        if (adminKey is not null) request.Headers.TryAddWithoutValidation("X-Admin-Key", adminKey);
        var response = await Client.SendAsync(request);
        return new Reply((int)response.StatusCode, await response.Content.ReadAsStringAsync(), response);
    }

    protected Task<Reply> Get(string path) => Admin(HttpMethod.Get, path);
    protected Task<Reply> Post(string path, string body) => Admin(HttpMethod.Post, path, body);
    protected Task<Reply> Put(string path, string body) => Admin(HttpMethod.Put, path, body);
    protected Task<Reply> Delete(string path) => Admin(HttpMethod.Delete, path);

    /// <summary>Asserts the status, then returns the body (which must be JSON).</summary>
    protected static JsonElement Expect(int status, Reply reply)
    {
        Assert.True(status == reply.Status, $"expected {status}, got {reply}");
        return reply.Json;
    }

    /// <summary>An OpenAI-shaped error: exactly <c>{"error":{"message","type","param","code"}}</c> with these values.</summary>
    protected static JsonElement ExpectError(Reply reply, int status, string code, string? param = null, string type = "invalid_request_error")
    {
        Assert.True(status == reply.Status, $"expected {status} {code}, got {reply}");
        Assert.Equal("application/json", reply.Response.Content.Headers.ContentType?.MediaType);
        var root = reply.Json;
        Assert.Single(root.EnumerateObject());
        var error = root.GetProperty("error");
        Assert.Equal(["message", "type", "param", "code"], error.EnumerateObject().Select(p => p.Name));
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.Equal(code, error.GetProperty("code").GetString());
        var p = error.GetProperty("param");
        Assert.True(param == (p.ValueKind == JsonValueKind.Null ? null : p.GetString()), $"param: expected {param ?? "null"}, got {reply}");
        return error;
    }

    protected async Task<JsonElement> CreateModel(string name = "llama-3", string modelId = SeedModelId, string extra = "") =>
        Expect(201, await Post("/admin/v1/models", $$"""{"name":"{{name}}","model_id":"{{modelId}}"{{extra}}}"""));

    protected async Task<JsonElement> AddBackend(string modelId, string? url = null, int weight = 1) =>
        Expect(201, await Post($"/admin/v1/models/{modelId}/backends", $$"""{"url":"{{url ?? Sim.BaseUrl}}","weight":{{weight}}}"""));

    /// <summary>A model served by the simulator, ready for /v1 calls; returns its id.</summary>
    protected async Task<string> ServedModel(string name = "llama-3")
    {
        var id = (await CreateModel(name)).GetProperty("id").GetString()!;
        await AddBackend(id);
        return id;
    }

    /// <summary>Creates a key; returns (plaintext, id).</summary>
    protected async Task<(string Key, string Id)> CreateKey(string body = """{"name":"dev-key"}""")
    {
        var created = Expect(201, await Post("/admin/v1/keys", body));
        return (created.GetProperty("key").GetString()!, created.GetProperty("api_key").GetProperty("id").GetString()!);
    }

    protected async Task<Reply> Chat(string key, string model = "llama-3", bool stream = false)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent($$"""{"model":"{{model}}","stream":{{(stream ? "true" : "false")}},"messages":[{"role":"user","content":"Hello!"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + key);
        var response = await Client.SendAsync(request);
        return new Reply((int)response.StatusCode, await response.Content.ReadAsStringAsync(), response);
    }

    protected async Task<Reply> V1Models(string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + key);
        var response = await Client.SendAsync(request);
        return new Reply((int)response.StatusCode, await response.Content.ReadAsStringAsync(), response);
    }

    protected static void AssertRfc3339(JsonElement value)
    {
        var text = value.GetString()!;
        Assert.True(Rfc3339.TryParse(text, out _), $"not RFC 3339: {text}");
        Assert.EndsWith("Z", text, StringComparison.Ordinal);
    }
}
