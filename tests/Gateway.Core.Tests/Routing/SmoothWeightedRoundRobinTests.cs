using Gateway.Routing;

namespace Gateway.Tests.Routing;

public sealed class SmoothWeightedRoundRobinTests
{
    [Fact]
    public void Three_to_one_over_forty_picks_is_exactly_thirty_and_ten()
    {
        var a = new Backend("http://a", 3, true);
        var b = new Backend("http://b", 1, true);
        var wrr = new SmoothWeightedRoundRobin([a, b]);
        var picks = Enumerable.Range(0, 40).Select(_ => wrr.Pick()).ToList();
        Assert.Equal(30, picks.Count(p => p == a));
        Assert.Equal(10, picks.Count(p => p == b));
    }

    [Fact]
    public void Five_to_one_is_smooth()
    {
        var a = new Backend("http://a", 5, true);
        var b = new Backend("http://b", 1, true);
        var wrr = new SmoothWeightedRoundRobin([a, b]);
        var first6 = Enumerable.Range(0, 6).Select(_ => wrr.Pick()).ToList();
        Assert.Contains(b, first6);
        Assert.NotEqual(b, first6[0]);
    }

    [Fact]
    public void Inactive_backends_and_none_left()
    {
        var a = new Backend("http://a", 1, false);
        var wrr = new SmoothWeightedRoundRobin([a]);
        Assert.Null(wrr.Pick());
        var b = new Backend("http://b", 1, true);
        var wrr2 = new SmoothWeightedRoundRobin([a, b]);
        Assert.All(Enumerable.Range(0, 5), _ => Assert.Same(b, wrr2.Pick()));
        Assert.Null(wrr2.Pick(exclude: b));
    }

    [Fact]
    public void Concurrent_picks_stay_within_the_weights()
    {
        var a = new Backend("http://a", 2, true);
        var b = new Backend("http://b", 1, true);
        var wrr = new SmoothWeightedRoundRobin([a, b]);
        int countA = 0;
        Parallel.For(0, 3000, _ => { if (wrr.Pick() == a) Interlocked.Increment(ref countA); });
        Assert.Equal(2000, countA);
    }

    [Fact]
    public void State_survives_a_snapshot_swap()
    {
        var a = new Backend("http://a", 1, true);
        var b = new Backend("http://b", 1, true);
        var wrr = new SmoothWeightedRoundRobin([a, b]);
        var first = wrr.Pick();
        var swapped = new SmoothWeightedRoundRobin([new Backend("http://a", 1, true), new Backend("http://b", 1, true)], wrr);
        Assert.NotEqual(first!.Url, swapped.Pick()!.Url); // continues the rotation instead of restarting it
    }
}
