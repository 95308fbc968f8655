using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Gateway.Config;
using Gateway.Http;
using Gateway.IntegrationTests.Fixtures;
using Gateway.Simulation;
using Gateway.Storage;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Admin;

/// <summary>
/// Two instances on one PostgreSQL and one Redis: a write through one instance's admin API reaches the other through the Redis
/// invalidation, long before its periodic refresh (set to ten minutes here, so only the invalidation can explain it).
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class AdminScaledOutTests(PostgresFixture pg, RedisFixture redis) : IClassFixture<RedisFixture>, IAsyncLifetime
{
    private const string AdminKey = "scaled-out-admin-key";
    private VllmSimulator _sim = null!;
    private GatewayHost _a = null!, _b = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        await redis.FlushAsync();
        _sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0 });
        var database = await pg.CreateDatabaseAsync();
        await using (var ds = DatabaseUrl.CreateDataSource(database, 2)) await new Migrator(ds).UpAsync();
        var options = new GatewayOptions
        {
            Server = new ServerOptions { Host = "127.0.0.1", Port = 0 },
            HealthCheck = new HealthCheckOptions { Interval = TimeSpan.Zero },
            DefaultRpm = 0,
            DefaultTpm = 0,
            AdminKey = AdminKey,
            DatabaseUrl = database,
            RedisUrl = $"redis://{redis.ConnectionString}/0",
            CacheRefreshInterval = TimeSpan.FromMinutes(10),
        };
        _a = new GatewayHost(options, Stream.Null, PostgresStore.Open(database, 4));
        _b = new GatewayHost(options, Stream.Null, PostgresStore.Open(database, 4));
        await _a.StartAsync();
        await _b.StartAsync();
        _client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(30) };
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _a.DisposeAsync();
        await _b.DisposeAsync();
        await _sim.DisposeAsync();
    }

    private async Task<JsonElement> AdminOnA(HttpMethod method, string path, string? body = null)
    {
        using var request = new HttpRequestMessage(method, $"http://127.0.0.1:{_a.Port}{path}");
        if (body is not null) request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        request.Headers.Add("X-Admin-Key", AdminKey);
        using var response = await _client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{method} {path}: {(int)response.StatusCode} {text}");
        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    private async Task<int> ChatOn(GatewayHost gateway, string key)
    {
        using var request = GatewayFixture.CreatePost($"http://127.0.0.1:{gateway.Port}/v1/chat/completions",
            """{"model":"qwen","messages":[{"role":"user","content":"hi"}]}""", key);
        using var response = await _client.SendAsync(request);
        await response.Content.ReadAsStringAsync();
        return (int)response.StatusCode;
    }

    [Fact]
    public async Task A_write_on_one_instance_reaches_the_other_through_redis()
    {
        var model = await AdminOnA(HttpMethod.Post, "/admin/v1/models", $$"""{"name":"qwen","model_id":"{{GatewayFixture.ModelId}}"}""");
        var modelId = model.GetProperty("id").GetString()!;
        await AdminOnA(HttpMethod.Post, $"/admin/v1/models/{modelId}/backends", $$"""{"url":"{{_sim.BaseUrl}}"}""");
        var key = (await AdminOnA(HttpMethod.Post, "/admin/v1/keys", """{"name":"shared"}""")).GetProperty("key").GetString()!;
        var keyId = (await AdminOnA(HttpMethod.Get, "/admin/v1/keys"))[0].GetProperty("id").GetString()!;

        // The model reaches B by invalidation; the key would also be found by B's single-flight lookup.
        await Eventually(async () => await ChatOn(_b, key) == 200, "B serves the model created on A");
        Assert.Equal(200, await ChatOn(_a, key));

        // A revoke on A: B already holds the key in its snapshot, so only a reload can make it refuse.
        await AdminOnA(HttpMethod.Delete, $"/admin/v1/keys/{keyId}");
        Assert.Equal(401, await ChatOn(_a, key)); // read-your-writes on A
        await Eventually(async () => await ChatOn(_b, key) == 401, "B refuses the key revoked on A");
    }

    private static async Task Eventually(Func<Task<bool>> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"not within 10 s (the refresh interval is 10 min): {what}");
            await Task.Delay(50);
        }
    }
}
