using System.Net;
using Gateway.Config;
using Gateway.Http;
using Gateway.IntegrationTests.Proxy;
using Gateway.Simulation;
using Gateway.Testing;
using Xunit.Abstractions;

namespace Gateway.IntegrationTests.Routing;

/// <summary>Health decides where traffic goes: unready backends get none, a dead one is failed over and then ejected.</summary>
public sealed class HealthRoutingTests(ITestOutputHelper output)
{
    private static Task<(GatewayHost, HttpClient)> Gateway(params VllmSimulator[] sims) => Gateway(new ProxyOptions().UpstreamClient, sims);

    private static async Task<(GatewayHost, HttpClient)> Gateway(UpstreamClientKind upstream, params VllmSimulator[] sims)
    {
        var options = GatewayFixture.BuildOptions(sims[0].BaseUrl) with
        {
            Proxy = new ProxyOptions { UpstreamClient = upstream },
            HealthCheck = new HealthCheckOptions { Interval = TimeSpan.FromMilliseconds(100), Timeout = TimeSpan.FromSeconds(3), HealthyThreshold = 2, UnhealthyThreshold = 1 },
            Models = [new ModelConfig { Name = "qwen", ModelId = GatewayFixture.ModelId, Backends = sims.Select(s => new BackendConfig { Url = s.BaseUrl }).ToList() }],
        };
        var gateway = new GatewayHost(options);
        await gateway.StartAsync();
        return (gateway, new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{gateway.Port}") });
    }

    private string? _firstError;

    private async Task<HttpStatusCode> Chat(HttpClient client)
    {
        using var response = await client.SendAsync(GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"messages\":[]}"));
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.OK) Interlocked.CompareExchange(ref _firstError, $"{(int)response.StatusCode} {body}", null);
        return response.StatusCode;
    }

    [Fact]
    public async Task A_backend_that_is_up_but_not_ready_gets_no_traffic()
    {
        await using var ready = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0 });
        await using var loading = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, NotReady = true });
        var (gateway, client) = await Gateway(ready, loading);
        await using var _ = gateway;
        using var __ = client;
        await Task.Delay(400); // a few check rounds
        for (int i = 0; i < 20; i++) Assert.Equal(HttpStatusCode.OK, await Chat(client));
        Assert.Equal(20, ready.RequestCount);
        Assert.Equal(0, loading.RequestCount);
    }

    [Fact]
    public async Task An_inactive_models_backend_reads_0_in_metrics_also_when_its_checks_turn_healthy()
    {
        var simulatorOptions = new SimulatorOptions { Port = 0, NotReady = true };
        await using var sim = await VllmSimulator.StartAsync(simulatorOptions);
        var options = GatewayFixture.BuildOptions(sim.BaseUrl) with
        {
            HealthCheck = new HealthCheckOptions { Interval = TimeSpan.FromMilliseconds(50), Timeout = TimeSpan.FromSeconds(3), HealthyThreshold = 1, UnhealthyThreshold = 1 },
            Models = [new ModelConfig { Name = "qwen", ModelId = GatewayFixture.ModelId, Active = false, Backends = [new BackendConfig { Url = sim.BaseUrl }] }],
        };
        await using var gateway = new GatewayHost(options);
        await gateway.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{gateway.Port}") };
        async Task Until(bool healthy)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (gateway.Health.For(GatewayFixture.ModelId, sim.BaseUrl).Healthy != healthy && DateTime.UtcNow < deadline) await Task.Delay(20);
            Assert.Equal(healthy, gateway.Health.For(GatewayFixture.ModelId, sim.BaseUrl).Healthy);
        }
        await Until(healthy: false); // the model is not served yet
        simulatorOptions.NotReady = false;
        await Until(healthy: true); // the checks flip back, for a model that is still inactive
        var text = await client.GetStringAsync("/metrics");
        Assert.Contains($"gateway_backend_health{{model=\"qwen\",backend_url=\"{sim.BaseUrl}\"}} 0", text);
    }

    [Fact]
    public async Task No_healthy_backend_is_a_503()
    {
        await using var loading = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, NotReady = true });
        var (gateway, client) = await Gateway(loading);
        await using var _ = gateway;
        using var __ = client;
        await Task.Delay(400);
        using var response = await client.SendAsync(GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"messages\":[]}"));
        await BadInputTests.AssertError(response, 503, "no_healthy_backend", null);
    }

    [Theory]
    [InlineData(UpstreamClientKind.Sockets)]
    [InlineData(UpstreamClientKind.Http1)]
    public async Task Killing_one_of_two_backends_under_load_costs_no_client_errors(UpstreamClientKind upstream)
    {
        await using var a = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0 });
        var b = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0 });
        var (gateway, client) = await Gateway(upstream, a, b);
        await using var _ = gateway;
        using var __ = client;
        int errors = 0, done = 0;
        var load = Task.WhenAll(Enumerable.Range(0, 10).Select(async _ =>
        {
            for (int i = 0; i < 50; i++)
            {
                if (await Chat(client) != HttpStatusCode.OK) Interlocked.Increment(ref errors);
                Interlocked.Increment(ref done);
            }
        }));
        while (Volatile.Read(ref done) < 100) await Task.Delay(5);
        await b.DisposeAsync(); // mid-load
        await load;
        output.WriteLine($"{done} requests, one of two backends killed after ~100: {errors} client errors; a served {a.RequestCount}, b served {b.RequestCount}; first error: {_firstError}");
        Assert.Equal(500, done);
        Assert.Equal(0, errors);
        Assert.False(gateway.Health.For(GatewayFixture.ModelId, b.BaseUrl).Healthy);
        using var scrape = await client.GetAsync("/metrics");
        var text = await scrape.Content.ReadAsStringAsync();
        Assert.Contains($"gateway_backend_health{{model=\"qwen\",backend_url=\"{b.BaseUrl}\"}} 0", text);
        Assert.Contains($"gateway_backend_health{{model=\"qwen\",backend_url=\"{a.BaseUrl}\"}} 1", text);
    }
}
