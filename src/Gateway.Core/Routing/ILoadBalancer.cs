using Gateway.Config;

namespace Gateway.Routing;

/// <summary>A model's balancing policy: one pick among its available (active, healthy) backends.</summary>
public interface ILoadBalancer
{
    /// <summary>Picks among available backends other than <paramref name="exclude"/> (one that just failed); null when there is none.</summary>
    Backend? Pick(Backend? exclude = null);
}

internal static class LoadBalancers
{
    /// <summary>The policy the model asks for, carrying over what the previous snapshot's policy learned when it is the same kind.</summary>
    public static ILoadBalancer Create(BalancerKind kind, Backend[] backends, ILoadBalancer? previous) => kind switch
    {
        BalancerKind.LeastOutstanding => new LeastOutstanding(backends),
        _ => new SmoothWeightedRoundRobin(backends, previous as SmoothWeightedRoundRobin),
    };
}
