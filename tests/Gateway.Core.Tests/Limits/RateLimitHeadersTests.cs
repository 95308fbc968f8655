using Gateway.Limits;
using Microsoft.AspNetCore.Http;

namespace Gateway.Tests.Limits;

public sealed class RateLimitHeadersTests
{
    [Theory]
    [InlineData(0, "0s")]
    [InlineData(300, "1s")]
    [InlineData(12_000, "12s")]
    [InlineData(12_001, "13s")]
    [InlineData(60_000, "1m")]
    [InlineData(64_000, "1m4s")]
    [InlineData(120_000, "2m")]
    [InlineData(120_500, "2m1s")]
    [InlineData(3_600_000, "60m")]
    public void Resets_read_like_the_seed(int ms, string expected) =>
        Assert.Equal(expected, RateLimitHeaders.Reset(TimeSpan.FromMilliseconds(ms)));

    [Theory]
    [InlineData(0, 1)]
    [InlineData(100, 1)]
    [InlineData(44_100, 45)]
    [InlineData(45_000, 45)]
    public void Retry_after_is_whole_seconds_rounded_up(int ms, long expected) =>
        Assert.Equal(expected, RateLimitHeaders.RetryAfterSeconds(TimeSpan.FromMilliseconds(ms)));

    [Fact]
    public void A_refusal_sets_all_headers_and_retry_after()
    {
        var headers = new HeaderDictionary();
        var d = new RateDecision(false, LimitViolation.KeyRequests, 60, 0, TimeSpan.FromSeconds(44.2), 100_000, 99_000, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(44.2));
        RateLimitHeaders.Apply(headers, d);
        Assert.Equal("60", headers["X-RateLimit-Limit-Requests"]);
        Assert.Equal("0", headers["X-RateLimit-Remaining-Requests"]);
        Assert.Equal("45s", headers["X-RateLimit-Reset-Requests"]);
        Assert.Equal("100000", headers["X-RateLimit-Limit-Tokens"]);
        Assert.Equal("99000", headers["X-RateLimit-Remaining-Tokens"]);
        Assert.Equal("30s", headers["X-RateLimit-Reset-Tokens"]);
        Assert.Equal("45", headers["Retry-After"]);
        var error = RateLimitHeaders.Refusal(d, 60);
        Assert.Equal(429, error.Status);
        Assert.Equal("rate_limit_error", error.Type);
        Assert.Equal("rate_limit_exceeded", error.Code);
        Assert.Contains("requests per minute on this API key", error.Message);
    }

    [Fact]
    public void Fail_open_sends_no_headers()
    {
        var headers = new HeaderDictionary();
        RateLimitHeaders.Apply(headers, RateDecision.FailOpen);
        Assert.Empty(headers);
    }
}
