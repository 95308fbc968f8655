namespace Gateway.Load.Tests;

public sealed class StatsTests
{
    [Fact]
    public void Empty_input_has_no_percentile()
    {
        Assert.True(double.IsNaN(Stats.Percentile([], 50)));
        var summary = Stats.Summarize([]);
        Assert.Equal(0, summary.Count);
        Assert.True(double.IsNaN(summary.P99));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(50)]
    [InlineData(99)]
    [InlineData(100)]
    public void One_value_is_every_percentile(double p) => Assert.Equal(7.5, Stats.Percentile([7.5], p));

    [Theory]
    // Type 7 (linear between closest ranks): h = (n − 1)·p/100 over 1..5 → h = 4p/100.
    [InlineData(0, 1)]
    [InlineData(25, 2)]
    [InlineData(50, 3)]
    [InlineData(90, 4.6)]
    [InlineData(99, 4.96)]
    [InlineData(100, 5)]
    public void Interpolates_linearly_between_closest_ranks(double p, double expected) =>
        Assert.Equal(expected, Stats.Percentile([5, 3, 1, 4, 2], p), 10);

    [Fact]
    public void Two_values_interpolate_between_them() => Assert.Equal(12.5, Stats.Percentile([20, 10], 25), 10);

    [Fact]
    public void One_to_a_hundred_matches_numpy()
    {
        var values = Enumerable.Range(1, 100).Select(i => (double)i).ToArray();
        // numpy.percentile(range(1, 101), [50, 90, 99]) = 50.5, 90.1, 99.01
        var s = Stats.Summarize(values);
        Assert.Equal(50.5, s.P50, 10);
        Assert.Equal(90.1, s.P90, 10);
        Assert.Equal(99.01, s.P99, 10);
        Assert.Equal(100, s.Count);
    }

    [Fact]
    public void Ties_and_constant_data()
    {
        Assert.Equal(4, Stats.Percentile([4, 4, 4, 4], 99));
        Assert.Equal(1, Stats.Percentile([1, 1, 1, 9], 50));
    }

    [Fact]
    public void The_input_is_not_reordered()
    {
        double[] values = [3, 1, 2];
        Stats.Percentile(values, 50);
        Assert.Equal([3, 1, 2], values);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(100.5)]
    [InlineData(double.NaN)]
    public void Percentile_outside_0_to_100_is_rejected(double p) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Stats.Percentile([1, 2], p));
}
