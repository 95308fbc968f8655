namespace Gateway.Load.Tests;

public sealed class KneeTests
{
    internal static TargetResult Target(string name, double p50, double p99, int errors = 0, int completed = 1000) => new()
    {
        Target = name, Seconds = 10, Completed = completed, Errors = errors,
        Latency = new Percentiles(completed, p50, p50 * 1.5, p99), Ttft = Percentiles.Empty, Itl = Percentiles.Empty,
    };

    /// <summary>A step whose gateway adds <paramref name="overheadP99"/> ms at p99 over a 10 ms direct p99.</summary>
    internal static StepResult Step(double load, double overheadP99, int gatewayErrors = 0) => new()
    {
        Load = load, LoadKind = "concurrency",
        Gateway = Target("gateway", 5.5, 10 + overheadP99, gatewayErrors),
        Direct = Target("direct", 5, 10),
    };

    [Fact]
    public void Knee_is_the_highest_step_under_the_slo()
    {
        var steps = new[] { Step(1, 0.5), Step(4, 1.2), Step(16, 4.9), Step(64, 12) };
        Assert.Equal(16, Knee.Find(steps, 5)!.Load);
    }

    [Fact]
    public void Every_step_under_the_slo_makes_the_last_one_the_knee() =>
        Assert.Equal(64, Knee.Find([Step(1, 0.1), Step(4, 0.2), Step(64, 0.3)], 5)!.Load);

    [Fact]
    public void Steps_are_taken_in_load_order_whatever_their_order_in_the_list() =>
        Assert.Equal(4, Knee.Find([Step(16, 9), Step(1, 1), Step(4, 2)], 5)!.Load);

    [Fact]
    public void A_quiet_step_above_a_breach_is_not_the_knee() =>
        Assert.Equal(4, Knee.Find([Step(1, 1), Step(4, 2), Step(16, 6), Step(64, 3)], 5)!.Load);

    [Fact]
    public void Breaching_at_the_lowest_step_means_no_knee() => Assert.Null(Knee.Find([Step(1, 5), Step(4, 1)], 5));

    [Fact]
    public void Exactly_at_the_slo_is_a_breach() => Assert.Null(Knee.Find([Step(1, 5)], 5));

    [Fact]
    public void More_than_one_percent_errors_disqualifies_a_step()
    {
        // 11 errors of 1011 attempts ≈ 1.09 %.
        var steps = new[] { Step(1, 1), Step(4, 1, gatewayErrors: 11), Step(16, 1) };
        Assert.Equal(1, Knee.Find(steps, 5)!.Load);
        Assert.True(Knee.TooManyErrors(steps[1]));
        Assert.False(Knee.TooManyErrors(Step(4, 1, gatewayErrors: 10))); // 10 / 1010 < 1 %
    }

    [Fact]
    public void No_baseline_means_no_knee()
    {
        var gatewayOnly = new StepResult { Load = 1, LoadKind = "concurrency", Gateway = Target("gateway", 1, 2) };
        Assert.True(double.IsNaN(gatewayOnly.OverheadP99));
        Assert.Null(Knee.Find([gatewayOnly], 5));
        Assert.Null(Knee.Find([], 5));
    }

    [Fact]
    public void Overhead_is_gateway_minus_direct_at_the_same_percentile()
    {
        var s = Step(1, 3);
        Assert.Equal(0.5, s.OverheadP50, 10);
        Assert.Equal(3, s.OverheadP99, 10);
    }
}
