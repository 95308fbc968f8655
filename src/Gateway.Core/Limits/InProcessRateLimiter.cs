using System.Collections.Concurrent;
using System.Diagnostics;

namespace Gateway.Limits;

/// <summary>
/// Embedded mode's limiter: exact for one instance. One small state per scope (key, and key × model), each with its own lock, so
/// different keys never contend; a check takes at most two locks, always key before model.
/// </summary>
public sealed class InProcessRateLimiter(TimeSpan window) : IRateLimiter
{
    private const long ExactRequestLogLimit = 10_000; // above this an exact log costs more memory than it is worth
    private readonly ConcurrentDictionary<ScopeKey, ScopeState> _scopes = new();
    private readonly long _windowTicks = (long)(window.TotalSeconds * Stopwatch.Frequency);

    public InProcessRateLimiter() : this(TimeSpan.FromMinutes(1)) { }

    public ValueTask<RateDecision> CheckAsync(RateRequest request, CancellationToken cancellationToken = default) =>
        new(Check(request, Stopwatch.GetTimestamp()));

    public ValueTask<RateDecision> PeekAsync(RateRequest request, CancellationToken cancellationToken = default) =>
        new(Check(request, Stopwatch.GetTimestamp(), peek: true));

    internal RateDecision Check(in RateRequest request, long now, bool peek = false)
    {
        var (key, model) = Scopes(request);

        lock (key.Lock)
        {
            if (model is null) return Decide(key, null, request, now, peek);
            lock (model.Lock) return Decide(key, model, request, now, peek);
        }
    }

    public void ChargeTokens(in RateRequest request, long tokens) => ChargeTokens(request, tokens, Stopwatch.GetTimestamp());

    internal void ChargeTokens(in RateRequest request, long tokens, long now)
    {
        if (tokens <= 0) return;
        var (key, model) = Scopes(request);
        lock (key.Lock) key.Tokens.Add(now, _windowTicks, tokens);
        if (model is null) return;
        lock (model.Lock) model.Tokens.Add(now, _windowTicks, tokens);
    }

    private RateDecision Decide(ScopeState key, ScopeState? model, in RateRequest request, long now, bool peek)
    {
        // Check every scope before recording in any, so a request refused by one limit is not counted by the other.
        var keyCheck = Peek(key, request.KeyLimits, now);
        var modelCheck = model is null ? default : Peek(model, request.ModelLimits, now);
        var violation = keyCheck.Violation(LimitViolation.KeyRequests, LimitViolation.KeyTokens);
        if (violation == LimitViolation.None && model is not null)
            violation = modelCheck.Violation(LimitViolation.ModelRequests, LimitViolation.ModelTokens);
        if (peek) violation = LimitViolation.None; // a peek reports; it neither records nor refuses

        if (violation == LimitViolation.None && !peek)
        {
            Record(key, request.KeyLimits, now, ref keyCheck);
            if (model is not null) Record(model, request.ModelLimits, now, ref modelCheck);
        }
        long retry = violation switch
        {
            LimitViolation.KeyRequests => keyCheck.RequestResetTicks,
            LimitViolation.KeyTokens => keyCheck.TokenResetTicks,
            LimitViolation.ModelRequests => modelCheck.RequestResetTicks,
            LimitViolation.ModelTokens => modelCheck.TokenResetTicks,
            _ => 0,
        };
        return new RateDecision(
            violation == LimitViolation.None, violation,
            request.KeyLimits.RequestsPerWindow, keyCheck.RequestsRemaining, Ticks(keyCheck.RequestResetTicks),
            request.KeyLimits.TokensPerWindow, keyCheck.TokensRemaining, Ticks(keyCheck.TokenResetTicks),
            Ticks(retry));
    }

    private ScopeCheck Peek(ScopeState state, RateLimits limits, long now)
    {
        var check = new ScopeCheck();
        if (limits.RequestsPerWindow > 0)
        {
            long used = state.RequestCount(now, _windowTicks, out check.RequestResetTicks);
            check.RequestsBlocked = used >= limits.RequestsPerWindow;
            check.RequestsRemaining = Math.Max(0, limits.RequestsPerWindow - used);
        }
        if (limits.TokensPerWindow > 0)
        {
            long used = state.Tokens.Total(now, _windowTicks, out check.TokenResetTicks);
            check.TokensBlocked = used >= limits.TokensPerWindow;
            check.TokensRemaining = Math.Max(0, limits.TokensPerWindow - used);
        }
        return check;
    }

    private void Record(ScopeState state, RateLimits limits, long now, ref ScopeCheck check)
    {
        if (limits.RequestsPerWindow <= 0) return;
        state.AddRequest(now, _windowTicks, limits.RequestsPerWindow, out check.RequestResetTicks);
        check.RequestsRemaining = Math.Max(0, check.RequestsRemaining - 1);
    }

    private static TimeSpan Ticks(long ticks) => ticks <= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds((double)ticks / Stopwatch.Frequency);

    /// <summary>The request's scopes: from its key's slot when this limiter filled it for the same model, else from the dictionary.</summary>
    private (ScopeState Key, ScopeState? Model) Scopes(in RateRequest request)
    {
        bool modelScoped = request.Model is not null && !request.ModelLimits.IsUnlimited;
        if (request.Slot?.Value is CachedScopes c && ReferenceEquals(c.Owner, this) && (string?)c.Model == (modelScoped ? request.Model : null))
            return (c.Key, c.ModelState);
        var key = State(new ScopeKey(request.KeyId, null), request.KeyLimits);
        var model = modelScoped ? State(new ScopeKey(request.KeyId, request.Model), request.ModelLimits) : null;
        // The states themselves live in the dictionary for good; the slot only remembers where (last model used by this key).
        if (request.Slot is { } slot) Volatile.Write(ref slot.Value, new CachedScopes(this, key, modelScoped ? request.Model : null, model));
        return (key, model);
    }

    private sealed record CachedScopes(InProcessRateLimiter Owner, ScopeState Key, string? Model, ScopeState? ModelState);

    private ScopeState State(ScopeKey scope, RateLimits limits) =>
        _scopes.TryGetValue(scope, out var state) ? state : _scopes.GetOrAdd(scope, static (_, l) => new ScopeState(l.RequestsPerWindow), limits);

    private readonly record struct ScopeKey(string KeyId, string? Model);

    private struct ScopeCheck
    {
        public bool RequestsBlocked, TokensBlocked;
        public long RequestsRemaining, TokensRemaining, RequestResetTicks, TokenResetTicks;

        public readonly LimitViolation Violation(LimitViolation requests, LimitViolation tokens) =>
            RequestsBlocked ? requests : TokensBlocked ? tokens : LimitViolation.None;
    }

    private sealed class ScopeState(long requestLimit)
    {
        public readonly Lock Lock = new();
        public readonly BucketWindow Tokens = new();
        private RequestWindow? _exact = requestLimit is > 0 and <= ExactRequestLogLimit ? new RequestWindow(requestLimit) : null;
        private BucketWindow? _approx = requestLimit > ExactRequestLogLimit ? new BucketWindow() : null;

        public long RequestCount(long now, long windowTicks, out long resetTicks)
        {
            if (_exact is not null) return _exact.Count(now, windowTicks, out resetTicks);
            _approx ??= new BucketWindow();
            return _approx.Total(now, windowTicks, out resetTicks);
        }

        public void AddRequest(long now, long windowTicks, long limit, out long resetTicks)
        {
            if (limit <= ExactRequestLogLimit)
            {
                _exact ??= new RequestWindow(limit);
                _exact.Add(now, windowTicks, limit, out resetTicks);
                return;
            }
            _approx ??= new BucketWindow();
            _approx.Add(now, windowTicks, 1);
            _approx.Total(now, windowTicks, out resetTicks);
        }
    }
}
