using System.Globalization;
using Gateway.Config;
using Gateway.Http;
using Microsoft.AspNetCore.Http;

namespace Gateway.Limits;

/// <summary>The seed's X-RateLimit-* headers and the 429 that goes with a refusal.</summary>
public static class RateLimitHeaders
{
    public const string LimitRequests = "X-RateLimit-Limit-Requests";
    public const string RemainingRequests = "X-RateLimit-Remaining-Requests";
    public const string ResetRequests = "X-RateLimit-Reset-Requests";
    public const string LimitTokens = "X-RateLimit-Limit-Tokens";
    public const string RemainingTokens = "X-RateLimit-Remaining-Tokens";
    public const string ResetTokens = "X-RateLimit-Reset-Tokens";

    /// <summary>Sets the headers of every scope that has a limit; a fail-open decision has none.</summary>
    public static void Apply(IHeaderDictionary headers, in RateDecision decision)
    {
        if (decision.RequestLimit > 0)
        {
            headers[LimitRequests] = Limit(decision.RequestLimit, ref _lastRequestLimit);
            headers[RemainingRequests] = Number(decision.RequestsRemaining);
            headers[ResetRequests] = Reset(decision.RequestsReset);
        }
        if (decision.TokenLimit > 0)
        {
            headers[LimitTokens] = Limit(decision.TokenLimit, ref _lastTokenLimit);
            headers[RemainingTokens] = Number(decision.TokensRemaining);
            headers[ResetTokens] = Reset(decision.TokensReset);
        }
        if (!decision.Allowed) headers.RetryAfter = RetryAfterSeconds(decision.RetryAfter).ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Whole seconds, rounded up, at least 1: a client that waits this long finds room.</summary>
    public static long RetryAfterSeconds(TimeSpan retryAfter) => Math.Max(1, (long)Math.Ceiling(retryAfter.TotalSeconds));

    /// <summary>"45s", "1m4s"; rounded up to the second so a client never retries too early.</summary>
    public static string Reset(TimeSpan reset)
    {
        if (reset <= TimeSpan.Zero) return "0s";
        double seconds = Math.Ceiling(reset.TotalSeconds);
        return seconds < ResetStrings.Length ? ResetStrings[(int)seconds] : Durations.Format(TimeSpan.FromSeconds(seconds));
    }

    // Windows are a minute: every reset is a whole number of seconds under 61, so its text is made once, not per response.
    private static readonly string[] ResetStrings =
        Enumerable.Range(0, 121).Select(i => i == 0 ? "0s" : Durations.Format(TimeSpan.FromSeconds(i))).ToArray();

    public static OpenAiError Refusal(in RateDecision decision, long limit)
    {
        var (what, scope) = decision.Violation switch
        {
            LimitViolation.KeyRequests => ("requests per minute", "this API key"),
            LimitViolation.KeyTokens => ("tokens per minute", "this API key"),
            LimitViolation.ModelRequests => ("requests per minute", "this model for this API key"),
            _ => ("tokens per minute", "this model for this API key"),
        };
        return new OpenAiError(429, "rate_limit_error", "rate_limit_exceeded",
            $"Rate limit reached for {what} on {scope} (limit {limit}). Retry after {RetryAfterSeconds(decision.RetryAfter)}s.");
    }

    // Small numbers repeat on every response; keep their strings.
    private static readonly string[] SmallNumbers = Enumerable.Range(0, 1024).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();

    private static string Number(long value) =>
        value is >= 0 and < 1024 ? SmallNumbers[value] : value.ToString(CultureInfo.InvariantCulture);

    /// <summary>A key's limits are the same on each of its responses: the last text made is reused while the value matches.</summary>
    private static string Limit(long value, ref LimitText? last)
    {
        if (value is >= 0 and < 1024) return SmallNumbers[value];
        var cached = Volatile.Read(ref last);
        if (cached is not null && cached.Value == value) return cached.Text;
        var text = Number(value);
        Volatile.Write(ref last, new LimitText(value, text));
        return text;
    }

    private sealed record LimitText(long Value, string Text);
    private static LimitText? _lastRequestLimit, _lastTokenLimit;
}
