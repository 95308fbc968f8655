using System.Diagnostics;
using Gateway.Limits;

namespace Gateway.Tests.Limits;

public sealed class InProcessRateLimiterTests
{
    private static readonly long Second = Stopwatch.Frequency;
    private readonly InProcessRateLimiter _limiter = new(TimeSpan.FromSeconds(60));
    private long _now = 1_000_000 * Stopwatch.Frequency;

    private RateDecision Check(RateRequest r) => _limiter.Check(r, _now);
    private static RateRequest Key(long rpm, long tpm, string id = "k1") => new(id, new RateLimits(rpm, tpm), null, default);

    [Fact]
    public void The_third_request_at_rpm_2_is_refused_until_the_first_leaves_the_window()
    {
        var r = Key(2, 0);
        var first = Check(r);
        Assert.True(first.Allowed);
        Assert.Equal(1, first.RequestsRemaining);
        Assert.Equal(TimeSpan.FromSeconds(60), first.RequestsReset);
        _now += 10 * Second;
        var second = Check(r);
        Assert.True(second.Allowed);
        Assert.Equal(0, second.RequestsRemaining);
        Assert.Equal(TimeSpan.FromSeconds(50), second.RequestsReset); // the first entry is the oldest
        _now += 5 * Second;
        var third = Check(r);
        Assert.False(third.Allowed);
        Assert.Equal(LimitViolation.KeyRequests, third.Violation);
        Assert.Equal(TimeSpan.FromSeconds(45), third.RetryAfter);
        _now += 45 * Second;
        Assert.True(Check(r).Allowed); // the first left the window
        Assert.False(Check(r).Allowed);
    }

    [Fact]
    public void A_peek_reports_the_window_without_recording_or_refusing()
    {
        var r = Key(2, 100);
        Assert.True(Check(r).Allowed);
        _limiter.ChargeTokens(r, 100, _now);
        var peek = _limiter.Check(r, _now, peek: true);
        Assert.True(peek.Allowed); // the window is full of tokens, yet a peek refuses nothing
        Assert.Equal(LimitViolation.None, peek.Violation);
        Assert.Equal(1, peek.RequestsRemaining);
        Assert.Equal(0, peek.TokensRemaining);
        Assert.Equal(1, _limiter.Check(r, _now, peek: true).RequestsRemaining); // and records nothing
    }

    [Fact]
    public void Refused_requests_are_not_counted()
    {
        var r = Key(1, 0);
        Assert.True(Check(r).Allowed);
        for (int i = 0; i < 10; i++) Assert.False(Check(r).Allowed);
        _now += 60 * Second;
        Assert.True(Check(r).Allowed);
    }

    [Fact]
    public void Tokens_in_the_window_block_the_next_request_once_the_limit_is_reached()
    {
        var r = Key(0, 100);
        Assert.True(Check(r).Allowed);
        _limiter.ChargeTokens(r, 60, _now);
        var d = Check(r);
        Assert.True(d.Allowed);
        Assert.Equal(40, d.TokensRemaining);
        _limiter.ChargeTokens(r, 40, _now);
        _now += 20 * Second;
        var refused = Check(r);
        Assert.False(refused.Allowed);
        Assert.Equal(LimitViolation.KeyTokens, refused.Violation);
        Assert.InRange(refused.RetryAfter.TotalSeconds, 39.4, 40); // the charge leaves with its 600 ms bucket
        _now += 41 * Second;
        Assert.True(Check(r).Allowed);
    }

    [Fact]
    public void A_model_limit_is_a_second_scope_and_a_refusal_there_costs_the_key_nothing()
    {
        var r = new RateRequest("k1", new RateLimits(10, 0), "qwen", new RateLimits(1, 0));
        var first = Check(r);
        Assert.True(first.Allowed);
        Assert.Equal(9, first.RequestsRemaining); // headers speak of the key scope
        var second = Check(r);
        Assert.False(second.Allowed);
        Assert.Equal(LimitViolation.ModelRequests, second.Violation);
        Assert.True(second.RetryAfter > TimeSpan.Zero);
        var other = Check(r with { Model = "other" });
        Assert.True(other.Allowed);
        Assert.Equal(8, other.RequestsRemaining); // the refused request was not recorded against the key
    }

    [Fact]
    public void Keys_do_not_share_windows()
    {
        Assert.True(Check(Key(1, 0, "a")).Allowed);
        Assert.True(Check(Key(1, 0, "b")).Allowed);
        Assert.False(Check(Key(1, 0, "a")).Allowed);
    }

    [Fact]
    public void Unlimited_keys_are_always_allowed_and_carry_no_headers()
    {
        var d = Check(Key(0, 0));
        Assert.True(d.Allowed);
        Assert.False(d.HasHeaders);
    }

    [Fact]
    public async Task Exactly_the_limit_passes_under_concurrency()
    {
        var limiter = new InProcessRateLimiter(TimeSpan.FromMinutes(1));
        var r = Key(100, 0);
        int allowed = 0;
        await Task.WhenAll(Enumerable.Range(0, 1000).Select(_ => Task.Run(async () =>
        {
            if ((await limiter.CheckAsync(r)).Allowed) Interlocked.Increment(ref allowed);
        })));
        Assert.Equal(100, allowed);
    }

    [Fact]
    public void Large_request_limits_count_exactly_in_buckets()
    {
        var r = Key(20_000, 0);
        for (int i = 0; i < 20_000; i++) Assert.True(Check(r).Allowed);
        Assert.False(Check(r).Allowed);
        _now += 61 * Second;
        Assert.True(Check(r).Allowed);
    }

    [Fact]
    public void Raising_or_lowering_a_limit_keeps_the_window()
    {
        Assert.True(Check(Key(2, 0)).Allowed);
        Assert.True(Check(Key(2, 0)).Allowed);
        Assert.True(Check(Key(3, 0)).Allowed);   // raised: one more fits
        Assert.False(Check(Key(3, 0)).Allowed);
        Assert.False(Check(Key(1, 0)).Allowed);  // lowered below what is in the window
    }

    [Fact]
    public void A_keys_slot_finds_the_same_windows_as_the_dictionary_whatever_model_or_limiter()
    {
        var slot = new LimiterSlot();
        var perModel = new RateLimits(2, 0);
        RateRequest With(string? model, bool useSlot) =>
            new("k1", new RateLimits(7, 0), model, model is null ? default : perModel) { Slot = useSlot ? slot : null };

        // Slot and no slot share the key's window: 7 in all, whichever way they come.
        Assert.True(Check(With(null, true)).Allowed);
        Assert.True(Check(With(null, false)).Allowed);
        // Alternating models through one slot: each model's own scope still holds 2.
        Assert.True(Check(With("a", true)).Allowed);
        Assert.True(Check(With("b", true)).Allowed);
        Assert.True(Check(With("a", false)).Allowed);
        Assert.Equal(LimitViolation.ModelRequests, Check(With("a", true)).Violation);
        Assert.True(Check(With("b", true)).Allowed); // the key's sixth (a refusal costs nothing)
        Assert.True(Check(With(null, true)).Allowed);
        Assert.Equal(LimitViolation.KeyRequests, Check(With(null, false)).Violation);

        // A slot filled by another limiter is not trusted: a fresh limiter starts from an empty window.
        var other = new InProcessRateLimiter(TimeSpan.FromSeconds(60));
        Assert.Equal(6, other.Check(With(null, true), _now).RequestsRemaining);
        Assert.Equal(5, other.Check(With(null, false), _now).RequestsRemaining);
    }
}
