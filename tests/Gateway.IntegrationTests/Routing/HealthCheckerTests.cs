using Gateway.Config;
using Gateway.Routing;
using Gateway.Simulation;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Routing;

/// <summary>Active health checks against real simulators: down, failing health, not ready, serving another model, and back.</summary>
public sealed class HealthCheckerTests
{
    private static readonly HealthCheckOptions Fast = new()
    {
        // A 3 s probe timeout: with 1.5 s the healthy case failed once on a heavily loaded machine (a fresh simulator's first requests).
        Interval = TimeSpan.FromMilliseconds(100), Timeout = TimeSpan.FromSeconds(3), HealthyThreshold = 2, UnhealthyThreshold = 1,
    };

    private static (HealthChecker, BackendHealthRegistry) Checker(params string[] urls)
    {
        var options = GatewayFixture.BuildOptions(urls[0]) with
        {
            Models = [new ModelConfig { Name = "qwen", ModelId = GatewayFixture.ModelId, Backends = urls.Select(u => new BackendConfig { Url = u }).ToList() }],
        };
        var holder = new SnapshotHolder();
        holder.Swap(Snapshot.FromConfig(options));
        var registry = new BackendHealthRegistry();
        return (new HealthChecker(holder, registry, Fast), registry);
    }

    [Fact]
    public async Task Healthy_and_ready_backends_stay_healthy()
    {
        await using var sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0 });
        var (checker, registry) = Checker(sim.BaseUrl);
        await using var _ = checker;
        await checker.CheckAllAsync();
        var state = registry.For(GatewayFixture.ModelId, sim.BaseUrl);
        Assert.True(state.Healthy);
        Assert.NotNull(state.LastCheck);
    }

    [Theory]
    [InlineData(300, true)]   // a model list of ~0.6 MB (the simulator lists each id twice, as vLLM does: id and root): read
    [InlineData(1000, false)] // ~1.9 MB: over HealthChecker.MaxModelListBytes, the probe fails instead of holding it
    public async Task A_model_list_over_the_cap_fails_the_probe(int otherModels, bool healthy)
    {
        var padding = new string('x', 700);
        await using var sim = await VllmSimulator.StartAsync(new SimulatorOptions
        {
            Port = 0,
            Models = [GatewayFixture.ModelId, .. Enumerable.Range(0, otherModels).Select(i => $"org/{padding}-{i}")],
        });
        var (checker, registry) = Checker(sim.BaseUrl);
        await using var _ = checker;
        await checker.CheckAllAsync();
        Assert.Equal(healthy, registry.For(GatewayFixture.ModelId, sim.BaseUrl).Healthy);
    }

    [Theory]
    [InlineData("health-fails")]
    [InlineData("not-ready")]
    [InlineData("other-model")]
    [InlineData("slow-health")]
    public async Task Unhealthy_or_unready_backends_are_marked_unhealthy(string fault)
    {
        await using var sim = await VllmSimulator.StartAsync(new SimulatorOptions
        {
            Port = 0,
            HealthFails = fault == "health-fails",
            NotReady = fault == "not-ready",
            Models = fault == "other-model" ? ["some/other-model"] : [GatewayFixture.ModelId],
            HealthDelayMs = fault == "slow-health" ? 6000 : 0,
        });
        var (checker, registry) = Checker(sim.BaseUrl);
        await using var _ = checker;
        await checker.CheckAllAsync();
        Assert.False(registry.For(GatewayFixture.ModelId, sim.BaseUrl).Healthy);
    }

    [Fact]
    public async Task A_dead_backend_is_marked_down_within_one_interval_and_back_after_the_healthy_threshold()
    {
        var sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0 });
        int port = sim.Port;
        var (checker, registry) = Checker(sim.BaseUrl);
        await using var _ = checker;
        var flips = new List<bool>();
        checker.StateChanged += (_, _, healthy) => { lock (flips) flips.Add(healthy); };
        var state = registry.For(GatewayFixture.ModelId, sim.BaseUrl);
        checker.Start();
        await sim.DisposeAsync();
        await WaitFor(() => !state.Healthy, TimeSpan.FromSeconds(3));

        await using var restarted = await VllmSimulator.StartAsync(new SimulatorOptions { Port = port });
        await WaitFor(() => state.Healthy, TimeSpan.FromSeconds(3));
        lock (flips) Assert.Equal([false, true], flips);
    }

    private static async Task WaitFor(Func<bool> condition, TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(20);
        }
    }
}
