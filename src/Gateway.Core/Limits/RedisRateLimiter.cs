using Gateway.Net;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Gateway.Limits.Resp;
using StackExchange.Redis;

namespace Gateway.Limits;

/// <summary>
/// Scaled-out mode's limiter: one Lua script per request checks and records RPM and pre-checks TPM for the key and the key × model
/// scope atomically in Redis, so the limits are exact across instances. Token charges go one batch per round trip, coalesced per
/// scope while the previous batch waits for Redis, and none is dropped. Redis slow or down → allow (fail-open),
/// count the error, and say so at most once per <see cref="ErrorLogInterval"/>.
/// </summary>
public sealed class RedisRateLimiter : IRateLimiter, IAsyncDisposable
{
    public static readonly TimeSpan ErrorLogInterval = TimeSpan.FromSeconds(30);
    private readonly IScriptRunner _runner;
    private readonly long _windowMs;
    private readonly Action<string>? _log;
    private readonly Action? _onError;
    private readonly string _instance = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray().AsSpan(0, 6));
    private readonly ConcurrentDictionary<(string KeyId, string? Model), string[]> _keyNames = new();
    // Token charges: one batch at a time on the connection. What is charged while a batch waits for its replies is coalesced per
    // scope and goes as the next batch when the last reply comes, from the thread that read it: no writer thread to wake, and as
    // many commands per round trip as there are scopes, however many requests ended meanwhile.
    private readonly Lock _chargeLock = new();
    private Dictionary<(string KeyId, string? Model, bool KeyTpm), long> _queued = [];
    private int _chargesInFlight;
    private TaskCompletionSource? _chargesDone;
    private long _sequence, _errors, _lastErrorLog;
    // Tokens charged here but not yet handed to Redis, per scope: a check counts them, so a batch on its way does not let a key
    // run over its TPM by more than one request.
    private readonly ConcurrentDictionary<(string KeyId, string? Model), StrongBox> _pending = new();
    // The runner writes commands to its one connection in the order they are issued, and Redis runs them in that order:
    // a charge issued before a check is in the window that check reads. So a charge leaves _pending when it is issued, not when
    // Redis answers (then a check in between counted it twice and refused a request early), and a check reads _pending and is
    // issued under the same lock: every charge is counted exactly once, in Redis or as pending.
    private readonly Lock _issue = new();

    private sealed class StrongBox { public long Value; }

    private long Pending(string keyId, string? model) => _pending.TryGetValue((keyId, model), out var box) ? Interlocked.Read(ref box.Value) : 0;

    private void AddPending(string keyId, string? model, long tokens) =>
        Interlocked.Add(ref _pending.GetOrAdd((keyId, model), static _ => new StrongBox()).Value, tokens);

    /// <param name="log">Told at most once per <see cref="ErrorLogInterval"/> that the limiter is failing open.</param>
    /// <param name="onError">Called on every failure (gateway_rate_limiter_errors_total).</param>
    public RedisRateLimiter(IConnectionMultiplexer redis, TimeSpan window, TimeSpan timeout, Action<string>? log = null, Action? onError = null)
        : this(new StackExchangeScriptRunner(redis, timeout), window, log, onError) { }

    /// <summary>On the loop client: its own connection to <paramref name="endpoint"/>, replies read on an event loop.</summary>
    internal RedisRateLimiter(RespEndpoint endpoint, TimeSpan window, TimeSpan timeout, Action<string>? log = null, Action? onError = null)
        : this(new LoopScriptRunner(new RespClient(endpoint, timeout)), window, log, onError) { }

    private RedisRateLimiter(IScriptRunner runner, TimeSpan window, Action<string>? log, Action? onError)
    {
        _runner = runner;
        _onError = onError;
        _windowMs = (long)window.TotalMilliseconds;
        _log = log;
    }

    /// <summary>The loop client, when the limiter runs on it (tests watch its connection).</summary>
    internal RespClient? LoopClient => (_runner as LoopScriptRunner)?.Client;

    /// <summary>Checks that failed open since start (for gateway_rate_limiter_errors_total).</summary>
    public long Errors => Interlocked.Read(ref _errors);

    public ValueTask<RateDecision> CheckAsync(RateRequest request, CancellationToken cancellationToken = default) =>
        CheckAsync(request, peek: false, cancellationToken);

    public ValueTask<RateDecision> PeekAsync(RateRequest request, CancellationToken cancellationToken = default) =>
        CheckAsync(request, peek: true, cancellationToken);

    [AsyncMethodBuilder(typeof(PooledTaskBuilder<>))]
    private async ValueTask<RateDecision> CheckAsync(RateRequest request, bool peek, CancellationToken cancellationToken)
    {
        bool modelScope = request.Model is not null && !request.ModelLimits.IsUnlimited;
        string member = NextMember();
        var reply = await IssueCheck(request, modelScope, peek, member, asText: false).ConfigureAwait(false);
        // Redis lost its script cache (a restart, SCRIPT FLUSH): the full text loads it again, with the pending counts reread.
        if (reply.IsNoScript) reply = await IssueCheck(request, modelScope, peek, member, asText: true).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        if (reply.Kind != RespKind.Array || reply.Count < 6)
        {
            OnError(reply.Kind switch
            {
                RespKind.Failed or RespKind.Error => reply.Error!,
                _ => $"unexpected {reply.Kind} reply with {reply.Count} numbers",
            });
            return RateDecision.FailOpen;
        }
        var violation = (LimitViolation)(int)reply[0];
        return new RateDecision(
            violation == LimitViolation.None, violation,
            request.KeyLimits.RequestsPerWindow, reply[1], Ms(reply[2]),
            request.KeyLimits.TokensPerWindow, reply[3], Ms(reply[4]),
            Ms(reply[5]));
    }

    /// <summary>Issues the check with the pending counts read under the same lock (see <see cref="_issue"/>); by hash, or as text.</summary>
    private ValueTask<RespReply> IssueCheck(in RateRequest request, bool modelScope, bool peek, string member, bool asText)
    {
        var keys = Names(request.KeyId, modelScope ? request.Model : null);
        lock (_issue)
        {
            ReadOnlySpan<ScriptArg> args =
            [
                _windowMs, request.KeyLimits.RequestsPerWindow, request.KeyLimits.TokensPerWindow,
                request.ModelLimits.RequestsPerWindow, request.ModelLimits.TokensPerWindow, member,
                Pending(request.KeyId, null), modelScope ? Pending(request.KeyId, request.Model) : 0, peek ? 1 : 0,
            ];
            return _runner.Run(LimiterScript.Check, asText, keys, args);
        }
    }

    public void ChargeTokens(in RateRequest request, long tokens)
    {
        if (tokens <= 0) return;
        bool keyTpm = request.KeyLimits.TokensPerWindow > 0;
        bool modelTpm = request.Model is not null && request.ModelLimits.TokensPerWindow > 0;
        if (!keyTpm && !modelTpm) return;
        var charge = new Charge(request.KeyId, modelTpm ? request.Model : null, keyTpm, tokens);
        if (keyTpm) AddPending(charge.KeyId, null, tokens);
        if (charge.Model is not null) AddPending(charge.KeyId, charge.Model, tokens);
        lock (_chargeLock)
        {
            if (_chargesInFlight > 0)
            {
                var scope = (charge.KeyId, charge.Model, charge.KeyTpm);
                _queued[scope] = _queued.GetValueOrDefault(scope) + tokens; // a stream's many live deltas: one entry per scope
                return;
            }
            _chargesInFlight = 1;
        }
        _ = SendAsync(charge);
    }

    /// <summary>A charge was answered (or failed); the last of a batch sends what was queued meanwhile.</summary>
    private void OnChargeDone()
    {
        Charge[] batch;
        lock (_chargeLock)
        {
            if (--_chargesInFlight > 0) return;
            if (_queued.Count == 0)
            {
                _chargesDone?.TrySetResult();
                return;
            }
            batch = new Charge[_queued.Count];
            int i = 0;
            foreach (var ((keyId, model, keyTpm), tokens) in _queued) batch[i++] = new Charge(keyId, model, keyTpm, tokens);
            _queued.Clear();
            _chargesInFlight = batch.Length;
        }
        foreach (var charge in batch) _ = SendAsync(charge);
    }

    /// <summary>Issues the charge at once (see <see cref="_issue"/>); the returned task observes Redis's answer.</summary>
    private Task SendAsync(Charge charge)
    {
        var names = Names(charge.KeyId, charge.Model);
        var member = NextMember() + ":" + charge.Tokens;
        // Pairs of (token set, running total): names[1..2] for the key, names[4..5] for key × model.
        string[] keys = charge.KeyTpm && charge.Model is not null ? [names[1], names[2], names[4], names[5]]
            : charge.KeyTpm ? [names[1], names[2]] : [names[4], names[5]];
        ValueTask<RespReply> call;
        lock (_issue)
        {
            call = _runner.Run(LimiterScript.Charge, asText: false, keys, Args(member, keys.Length / 2));
            // On the connection now, ahead of any later check (or lost with Redis): no longer pending here.
            if (charge.KeyTpm) AddPending(charge.KeyId, null, -charge.Tokens);
            if (charge.Model is not null) AddPending(charge.KeyId, charge.Model, -charge.Tokens);
        }
        return ObserveAsync(call, keys, member);
    }

    private ScriptArg[] Args(string member, int pairs) => pairs == 2 ? [_windowMs, member, member] : [_windowMs, member];

    private async Task ObserveAsync(ValueTask<RespReply> call, string[] keys, string member)
    {
        try
        {
            var reply = await call.ConfigureAwait(false);
            if (reply.IsNoScript)
            {
                // Redis lost its script cache: nothing ran, so the text goes once (later than the hash would have: a check issued
                // in between did not count this charge, as if it had come a moment later).
                reply = await _runner.Run(LimiterScript.Charge, asText: true, keys, Args(member, keys.Length / 2)).ConfigureAwait(false);
            }
            if (reply.Kind is RespKind.Failed or RespKind.Error) OnError(reply.Error!); // Redis is down: the window is lost with it anyway
        }
        finally { OnChargeDone(); }
    }

    /// <summary>rpm, tpm and tpm-total of the key, then (with a model) the same three of key × model; {id} keeps them in one cluster slot.</summary>
    private string[] Names(string keyId, string? model) => _keyNames.GetOrAdd((keyId, model), static k => k.Model is null
        ? [$"ratelimit:rpm:{{{k.KeyId}}}", $"ratelimit:tpm:{{{k.KeyId}}}", $"ratelimit:tpm-total:{{{k.KeyId}}}"]
        : [$"ratelimit:rpm:{{{k.KeyId}}}", $"ratelimit:tpm:{{{k.KeyId}}}", $"ratelimit:tpm-total:{{{k.KeyId}}}",
           $"ratelimit:rpm:{k.Model}:{{{k.KeyId}}}", $"ratelimit:tpm:{k.Model}:{{{k.KeyId}}}", $"ratelimit:tpm-total:{k.Model}:{{{k.KeyId}}}"]);

    private string NextMember() => _instance + "-" + Interlocked.Increment(ref _sequence).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static TimeSpan Ms(long ms) => ms <= 0 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(ms);

    private void OnError(string why)
    {
        Interlocked.Increment(ref _errors);
        _onError?.Invoke();
        long now = Stopwatch.GetTimestamp(), last = Interlocked.Read(ref _lastErrorLog);
        if ((last == 0 || Stopwatch.GetElapsedTime(last, now) >= ErrorLogInterval) && Interlocked.CompareExchange(ref _lastErrorLog, now, last) == last)
            _log?.Invoke($"rate limiter unavailable, allowing requests (fail-open): {why}");
    }

    /// <summary>Waits for the charges in flight and queued to be answered, then closes the connection (the loop client's).</summary>
    public async ValueTask DisposeAsync()
    {
        Task done;
        lock (_chargeLock)
        {
            _chargesDone ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (_chargesInFlight == 0) _chargesDone.TrySetResult();
            done = _chargesDone.Task;
        }
        await done.ConfigureAwait(false);
        await _runner.DisposeAsync().ConfigureAwait(false);
    }

    private readonly record struct Charge(string KeyId, string? Model, bool KeyTpm, long Tokens);
}
