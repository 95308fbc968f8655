using Gateway.Config;
using Gateway.Routing;
using Gateway.Storage;

namespace Gateway.Tests.Routing;

public sealed class LeastOutstandingTests
{
    private static Backend Busy(string url, int weight, int outstanding, bool active = true)
    {
        var b = new Backend(url, weight, active);
        for (int i = 0; i < outstanding; i++) b.Load.Begin();
        return b;
    }

    [Fact]
    public void Takes_the_backend_with_fewer_requests_in_flight_per_weight()
    {
        var idle = Busy("http://a", 1, 0);
        var busy = Busy("http://b", 1, 5);
        var p2c = new LeastOutstanding([idle, busy]);
        Assert.All(Enumerable.Range(0, 100), _ => Assert.Same(idle, p2c.Pick()));

        var heavy = Busy("http://c", 4, 6); // 1.5 per unit of weight
        var light = Busy("http://d", 1, 2); // 2 per unit
        var weighted = new LeastOutstanding([heavy, light]);
        Assert.All(Enumerable.Range(0, 100), _ => Assert.Same(heavy, weighted.Pick()));
    }

    [Fact]
    public void Skips_excluded_and_unavailable_backends_and_reports_none()
    {
        var a = Busy("http://a", 1, 9);
        var b = Busy("http://b", 1, 0);
        var off = Busy("http://c", 1, 0, active: false);
        var p2c = new LeastOutstanding([a, b, off]);
        Assert.All(Enumerable.Range(0, 50), _ => Assert.Same(a, p2c.Pick(exclude: b)));
        Assert.Null(new LeastOutstanding([off]).Pick());
        Assert.Null(new LeastOutstanding([a]).Pick(exclude: a));
    }

    [Fact]
    public void Counts_survive_a_snapshot_swap_and_are_shared_by_url()
    {
        static GatewayOptions Options(int weight) => new()
        {
            Models =
            [
                new ModelConfig { Name = "m", ModelId = "x", Lb = BalancerKind.LeastOutstanding, Backends = [new BackendConfig { Url = "http://a:1/", Weight = weight }] },
                new ModelConfig { Name = "lora", ModelId = "y", Backends = [new BackendConfig { Url = "http://a:1" }] },
            ],
        };
        var registry = new BackendHealthRegistry();
        var first = Snapshot.FromConfig(Options(1), health: registry);
        first.FindModel("m")!.Backends[0].Load.Begin();
        first.FindModel("lora")!.Backends[0].Load.Begin(); // another model on the same server loads the same GPU

        var second = Snapshot.FromConfig(Options(2), first, registry);
        Assert.IsType<LeastOutstanding>(second.FindModel("m")!.Balancer);
        Assert.IsType<SmoothWeightedRoundRobin>(second.FindModel("lora")!.Balancer);
        Assert.Equal(2, second.FindModel("m")!.Backends[0].Load.Outstanding);

        // Without a registry (tools, the store path in tests) the alias's previous snapshot carries them.
        var alone = Snapshot.FromConfig(Options(1));
        alone.FindModel("m")!.Backends[0].Load.Begin();
        Assert.Equal(1, Snapshot.FromConfig(Options(3), alone).FindModel("m")!.Backends[0].Load.Outstanding);
    }

    [Fact]
    public void Concurrent_begin_and_end_leave_no_count_behind()
    {
        var b = new Backend("http://a", 1, true);
        var p2c = new LeastOutstanding([b, new Backend("http://b", 1, true)]);
        Parallel.For(0, 10_000, _ =>
        {
            var picked = p2c.Pick()!;
            picked.Load.Begin();
            picked.Load.End();
        });
        Assert.Equal(0, b.Load.Outstanding);
    }

    [Theory]
    [InlineData("""{"lb":"p2c"}""", BalancerKind.LeastOutstanding)]
    [InlineData("""{"lb":"wrr","system_prompt_prefix":"x"}""", BalancerKind.RoundRobin)]
    [InlineData("{}", BalancerKind.RoundRobin)]
    [InlineData("""{"lb":"fastest"}""", BalancerKind.RoundRobin)] // an old row the validation would now refuse: the default, not a failed snapshot
    public void Stored_transforms_carry_the_policy(string transforms, BalancerKind expected)
    {
        var stored = new StoredModel(Guid.NewGuid(), "m", "x", true, "{}", "{}", transforms, "{}", DateTimeOffset.UtcNow, DateTimeOffset.UtcNow, []);
        Assert.Equal(expected, SnapshotBuilder.ToConfig(stored).Lb);
    }

    [Theory]
    [InlineData("""{"lb":"p2c"}""", true)]
    [InlineData("""{"lb":"wrr"}""", true)]
    [InlineData("""{"lb":null}""", true)]
    [InlineData("""{"lb":"P2C"}""", false)]
    [InlineData("""{"lb":"least"}""", false)]
    [InlineData("""{"lb":2}""", false)]
    public void Stored_lb_must_name_a_policy(string transforms, bool valid)
    {
        var model = new NewModel { Name = "m", ModelId = "x", Transforms = transforms };
        if (valid) { StoreValidation.Model(model); return; }
        var e = Assert.Throws<StoreException>(() => StoreValidation.Model(model));
        Assert.Equal((StoreErrorKind.Validation, "transforms.lb"), (e.Kind, e.Param));
    }
}
