using BenchmarkDotNet.Attributes;
using Gateway.Limits;

namespace Gateway.Benchmarks;

/// <summary>Step 6 in embedded mode: one check-and-record of the in-process limiter (target &lt; 100 ns, 0 B).</summary>
[MemoryDiagnoser]
public class RateLimiterBenchmarks
{
    private readonly InProcessRateLimiter _limiter = new(TimeSpan.FromMinutes(1));
    // Key ids are UUIDs in the store, as here: hashing one is most of a dictionary lookup, which the key's slot avoids.
    private readonly RateRequest _exact = new("6f1c2b1e-1111-4000-8000-000000000001", new RateLimits(600, 100_000), null, default) { Slot = new() };
    private readonly RateRequest _large = new("6f1c2b1e-1111-4000-8000-000000000002", new RateLimits(1_000_000_000, 1_000_000_000), null, default) { Slot = new() };
    private readonly RateRequest _withModel = new("6f1c2b1e-1111-4000-8000-000000000003", new RateLimits(1_000_000_000, 0), "qwen", new RateLimits(1_000_000_000, 0)) { Slot = new() };
    private readonly RateRequest _withModelNoSlot = new("6f1c2b1e-1111-4000-8000-000000000004", new RateLimits(1_000_000_000, 0), "qwen", new RateLimits(1_000_000_000, 0));

    /// <summary>An exact 600-entry log: after the first 600 calls every check is a refusal, the common case under attack.</summary>
    [Benchmark]
    public bool ExactLog() => _limiter.CheckAsync(_exact).Result.Allowed;

    /// <summary>A limit too large for an exact log: bucketed count, always allowed and recorded.</summary>
    [Benchmark]
    public bool Bucketed() => _limiter.CheckAsync(_large).Result.Allowed;

    /// <summary>Key scope plus a per-model scope: two locks, two windows.</summary>
    [Benchmark]
    public bool KeyAndModel() => _limiter.CheckAsync(_withModel).Result.Allowed;

    /// <summary>The same without the key's slot: two dictionary lookups by (UUID, model) per call.</summary>
    [Benchmark]
    public bool KeyAndModelWithoutSlot() => _limiter.CheckAsync(_withModelNoSlot).Result.Allowed;

    [Benchmark]
    public void ChargeTokens() => _limiter.ChargeTokens(_large, 17);
}
