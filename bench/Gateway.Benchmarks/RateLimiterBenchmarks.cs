using BenchmarkDotNet.Attributes;
using Gateway.Limits;

namespace Gateway.Benchmarks;

/// <summary>Step 6 in embedded mode: one check-and-record of the in-process limiter (target &lt; 100 ns, 0 B).</summary>
[MemoryDiagnoser]
public class RateLimiterBenchmarks
{
    private readonly InProcessRateLimiter _limiter = new(TimeSpan.FromMinutes(1));
    private readonly RateRequest _exact = new("key-exact", new RateLimits(600, 100_000), null, default);
    private readonly RateRequest _large = new("key-large", new RateLimits(1_000_000_000, 1_000_000_000), null, default);
    private readonly RateRequest _withModel = new("key-model", new RateLimits(1_000_000_000, 0), "qwen", new RateLimits(1_000_000_000, 0));

    /// <summary>An exact 600-entry log: after the first 600 calls every check is a refusal, the common case under attack.</summary>
    [Benchmark]
    public bool ExactLog() => _limiter.CheckAsync(_exact).Result.Allowed;

    /// <summary>A limit too large for an exact log: bucketed count, always allowed and recorded.</summary>
    [Benchmark]
    public bool Bucketed() => _limiter.CheckAsync(_large).Result.Allowed;

    /// <summary>Key scope plus a per-model scope: two locks, two windows.</summary>
    [Benchmark]
    public bool KeyAndModel() => _limiter.CheckAsync(_withModel).Result.Allowed;

    [Benchmark]
    public void ChargeTokens() => _limiter.ChargeTokens(_large, 17);
}
