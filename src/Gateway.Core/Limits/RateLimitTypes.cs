namespace Gateway.Limits;

/// <summary>Requests and tokens per window; 0 = unlimited.</summary>
public readonly record struct RateLimits(long RequestsPerWindow, long TokensPerWindow)
{
    public bool IsUnlimited => RequestsPerWindow <= 0 && TokensPerWindow <= 0;

    /// <summary>A key's limits: its own where set above 0, else the configured defaults (a key's null or 0 means "the default").</summary>
    public static RateLimits ForKey(long? rpm, long? tpm, long defaultRpm, long defaultTpm) =>
        new(rpm is > 0 ? rpm.Value : defaultRpm, tpm is > 0 ? tpm.Value : defaultTpm);
}

/// <summary>What one request is checked against: the key's limits, and the model's limits as a second scope (per key).</summary>
public readonly record struct RateRequest(string KeyId, RateLimits KeyLimits, string? Model, RateLimits ModelLimits)
{
    /// <summary>Where a limiter may keep its state for this key between requests (the key's snapshot entry owns one); null = none.</summary>
    public LimiterSlot? Slot { get; init; }
}

/// <summary>
/// A per-key cache for a limiter's state, so a check finds its windows without hashing the key id (a 36-character UUID) into a
/// dictionary on every request and every streamed charge. Opaque to everything but the limiter that fills it.
/// </summary>
public sealed class LimiterSlot
{
    internal object? Value;
}

public enum LimitViolation : byte { None, KeyRequests, KeyTokens, ModelRequests, ModelTokens }

/// <summary>
/// The outcome of one check, with what the X-RateLimit-* headers need for the key scope. Remaining counts include this request;
/// Reset is the time until the oldest entry leaves the window (zero when the window is empty).
/// </summary>
public readonly record struct RateDecision(
    bool Allowed,
    LimitViolation Violation,
    long RequestLimit, long RequestsRemaining, TimeSpan RequestsReset,
    long TokenLimit, long TokensRemaining, TimeSpan TokensReset,
    TimeSpan RetryAfter)
{
    /// <summary>The limiter could not decide (Redis down or slow): the request is allowed and no headers are sent.</summary>
    public static readonly RateDecision FailOpen = new(true, LimitViolation.None, 0, 0, TimeSpan.Zero, 0, 0, TimeSpan.Zero, TimeSpan.Zero);

    public bool HasHeaders => RequestLimit > 0 || TokenLimit > 0;
}

/// <summary>Step 6 of the request path, and the token charges of step 11.</summary>
public interface IRateLimiter
{
    /// <summary>One call per request: records it against RPM (if allowed) and pre-checks TPM (tokens already in the window &lt; limit).</summary>
    ValueTask<RateDecision> CheckAsync(RateRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// The windows as they stand, recording nothing and refusing nothing (always allowed): the headers of a response that was not a
    /// counted request (a request refused before the limit check, GET /v1/models).
    /// </summary>
    ValueTask<RateDecision> PeekAsync(RateRequest request, CancellationToken cancellationToken = default);

    /// <summary>Charges tokens to the key (and model) windows: live deltas while streaming, the rest at the end. Never dropped.</summary>
    void ChargeTokens(in RateRequest request, long tokens);
}
