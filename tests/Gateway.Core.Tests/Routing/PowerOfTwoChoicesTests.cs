using Gateway.Routing;

namespace Gateway.Tests.Routing;

public sealed class PowerOfTwoChoicesTests
{
    [Fact]
    public void Prefers_the_less_loaded_backend()
    {
        int[] outstanding = [10, 0];
        int[] weights = [1, 1];
        bool[] eligible = [true, true];
        for (int i = 0; i < 100; i++) Assert.Equal(1, PowerOfTwoChoices.Pick(outstanding, weights, eligible));
    }

    [Fact]
    public void Weighs_load_by_weight()
    {
        int[] outstanding = [6, 2]; // 6/4 = 1.5 per unit vs 2/1 = 2
        int[] weights = [4, 1];
        bool[] eligible = [true, true];
        for (int i = 0; i < 100; i++) Assert.Equal(0, PowerOfTwoChoices.Pick(outstanding, weights, eligible));
    }

    [Fact]
    public void Never_picks_an_ineligible_backend_and_reports_none()
    {
        int[] outstanding = [0, 0, 0];
        int[] weights = [1, 1, 1];
        bool[] eligible = [false, true, false];
        for (int i = 0; i < 50; i++) Assert.Equal(1, PowerOfTwoChoices.Pick(outstanding, weights, eligible));
        Assert.Equal(-1, PowerOfTwoChoices.Pick(outstanding, weights, [false, false, false]));
    }

    [Fact]
    public void Equal_load_spreads_over_all_backends()
    {
        int[] outstanding = [0, 0, 0, 0];
        int[] weights = [1, 1, 1, 1];
        bool[] eligible = [true, true, true, true];
        var seen = new HashSet<int>();
        for (int i = 0; i < 200; i++) seen.Add(PowerOfTwoChoices.Pick(outstanding, weights, eligible));
        Assert.Equal(4, seen.Count);
    }
}

public sealed class BackendHealthTests
{
    [Fact]
    public void Thresholds_flip_the_state_and_passive_successes_do_not_heal()
    {
        var h = new BackendHealth();
        Assert.True(h.Healthy);
        Assert.False(h.Record(false, 3, 2, isActiveCheck: false));
        Assert.True(h.Record(false, 3, 2, isActiveCheck: false)); // second failure: unhealthy
        Assert.False(h.Healthy);
        Assert.False(h.Record(true, 3, 2, isActiveCheck: false));
        Assert.False(h.Healthy);
        Assert.False(h.Record(true, 3, 2, isActiveCheck: true));
        Assert.False(h.Record(true, 3, 2, isActiveCheck: true));
        Assert.True(h.Record(true, 3, 2, isActiveCheck: true)); // third active success: healthy
        Assert.True(h.Healthy);
    }

    [Fact]
    public void A_success_resets_the_failure_count()
    {
        var h = new BackendHealth();
        h.Record(false, 1, 2, isActiveCheck: true);
        h.Record(true, 1, 2, isActiveCheck: true);
        h.Record(false, 1, 2, isActiveCheck: true);
        Assert.True(h.Healthy);
    }
}
