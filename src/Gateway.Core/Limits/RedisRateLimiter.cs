using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using StackExchange.Redis;

namespace Gateway.Limits;

/// <summary>
/// Scaled-out mode's limiter: one Lua script per request checks and records RPM and pre-checks TPM for the key and the key × model
/// scope atomically in Redis, so the limits are exact across instances. Token charges go through a bounded, batched writer that
/// coalesces live deltas per scope and never drops one (a full queue sends directly). Redis slow or down → allow (fail-open),
/// count the error, and say so at most once per <see cref="ErrorLogInterval"/>.
/// </summary>
public sealed class RedisRateLimiter : IRateLimiter, IAsyncDisposable
{
    public static readonly TimeSpan ErrorLogInterval = TimeSpan.FromSeconds(30);
    private readonly IDatabase _db;
    private readonly long _windowMs;
    private readonly TimeSpan _timeout;
    private readonly Action<string>? _log;
    private readonly Action? _onError;
    private readonly string _instance = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray().AsSpan(0, 6));
    private readonly ConcurrentDictionary<(string KeyId, string? Model), RedisKey[]> _keyNames = new();
    private readonly Channel<Charge> _charges = Channel.CreateBounded<Charge>(new BoundedChannelOptions(16_384)
    {
        SingleReader = true, FullMode = BoundedChannelFullMode.Wait,
    });
    private readonly Task _writer;
    private long _sequence, _errors, _lastErrorLog;
    // Tokens charged here but not yet handed to Redis, per scope: a check counts them, so a batch on its way does not let a key
    // run over its TPM by more than one request.
    private readonly ConcurrentDictionary<(string KeyId, string? Model), StrongBox> _pending = new();
    // StackExchange.Redis writes commands to its one connection in the order they are issued, and Redis runs them in that order:
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
    {
        _onError = onError;
        _db = redis.GetDatabase();
        _windowMs = (long)window.TotalMilliseconds;
        _timeout = timeout;
        _log = log;
        _writer = Task.Run(WriteChargesAsync);
    }

    /// <summary>Checks that failed open since start (for gateway_rate_limiter_errors_total).</summary>
    public long Errors => Interlocked.Read(ref _errors);

    public ValueTask<RateDecision> CheckAsync(RateRequest request, CancellationToken cancellationToken = default) =>
        CheckAsync(request, peek: false, cancellationToken);

    public ValueTask<RateDecision> PeekAsync(RateRequest request, CancellationToken cancellationToken = default) =>
        CheckAsync(request, peek: true, cancellationToken);

    private async ValueTask<RateDecision> CheckAsync(RateRequest request, bool peek, CancellationToken cancellationToken)
    {
        bool modelScope = request.Model is not null && !request.ModelLimits.IsUnlimited;
        var keys = Names(request.KeyId, modelScope ? request.Model : null);
        RedisValue[] args =
        [
            _windowMs, request.KeyLimits.RequestsPerWindow, request.KeyLimits.TokensPerWindow,
            request.ModelLimits.RequestsPerWindow, request.ModelLimits.TokensPerWindow, NextMember(), 0, 0, peek ? 1 : 0,
        ];
        try
        {
            RedisResult reply;
            try { reply = await IssueCheck(keys, args, request, modelScope, CheckSha).WaitAsync(_timeout, cancellationToken); }
            catch (RedisServerException e) when (IsNoScript(e))
            {
                // Redis lost its script cache (a restart, SCRIPT FLUSH): the full text loads it again, with the pending counts reread.
                reply = await IssueCheck(keys, args, request, modelScope, null).WaitAsync(_timeout, cancellationToken);
            }
            var result = (RedisResult[])reply!;
            var violation = (LimitViolation)(int)result[0];
            return new RateDecision(
                violation == LimitViolation.None, violation,
                request.KeyLimits.RequestsPerWindow, (long)result[1], Ms((long)result[2]),
                request.KeyLimits.TokensPerWindow, (long)result[3], Ms((long)result[4]),
                Ms((long)result[5]));
        }
        catch (Exception e) when (e is RedisException or TimeoutException or InvalidCastException or ObjectDisposedException)
        {
            OnError(e);
            return RateDecision.FailOpen;
        }
    }

    /// <summary>Issues the check with the pending counts read under the same lock (see <see cref="_issue"/>); by hash, or as text.</summary>
    private Task<RedisResult> IssueCheck(RedisKey[] keys, RedisValue[] args, in RateRequest request, bool modelScope, byte[]? sha)
    {
        lock (_issue)
        {
            args[6] = Pending(request.KeyId, null);
            args[7] = modelScope ? Pending(request.KeyId, request.Model) : 0;
            return sha is not null ? _db.ScriptEvaluateAsync(sha, keys, args) : _db.ScriptEvaluateAsync(RedisScripts.Check, keys, args);
        }
    }

    // The scripts go as EVALSHA of hashes made here once. StackExchange.Redis's text overload looks each script's hash up by its
    // text, hashing the ~2.5 KB of Lua on every call (1.6 % of a Redis-mode profile; within noise in a load A/B).
    private static readonly byte[] CheckSha = System.Security.Cryptography.SHA1.HashData(System.Text.Encoding.UTF8.GetBytes(RedisScripts.Check));
    private static readonly byte[] ChargeSha = System.Security.Cryptography.SHA1.HashData(System.Text.Encoding.UTF8.GetBytes(RedisScripts.Charge));

    private static bool IsNoScript(RedisServerException e) => e.Message.StartsWith("NOSCRIPT", StringComparison.Ordinal);

    public void ChargeTokens(in RateRequest request, long tokens)
    {
        if (tokens <= 0) return;
        bool keyTpm = request.KeyLimits.TokensPerWindow > 0;
        bool modelTpm = request.Model is not null && request.ModelLimits.TokensPerWindow > 0;
        if (!keyTpm && !modelTpm) return;
        var charge = new Charge(request.KeyId, modelTpm ? request.Model : null, keyTpm, tokens);
        if (keyTpm) AddPending(charge.KeyId, null, tokens);
        if (charge.Model is not null) AddPending(charge.KeyId, charge.Model, tokens);
        if (!_charges.Writer.TryWrite(charge)) _ = SendAsync(charge); // a full queue is no reason to lose tokens
    }

    private async Task WriteChargesAsync()
    {
        var pending = new Dictionary<(string KeyId, string? Model, bool KeyTpm), long>();
        var sends = new List<Task>();
        var reader = _charges.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            // Coalesce what is queued: a stream's many live deltas become one entry per scope per batch.
            while (pending.Count < 1024 && reader.TryRead(out var c))
            {
                var scope = (c.KeyId, c.Model, c.KeyTpm);
                pending[scope] = pending.GetValueOrDefault(scope) + c.Tokens;
            }
            foreach (var ((keyId, model, keyTpm), tokens) in pending) sends.Add(SendAsync(new Charge(keyId, model, keyTpm, tokens)));
            pending.Clear();
            try { await Task.WhenAll(sends).ConfigureAwait(false); } catch (Exception) { /* counted in SendAsync */ }
            sends.Clear();
        }
    }

    /// <summary>Issues the charge at once (see <see cref="_issue"/>); the returned task observes Redis's answer.</summary>
    private Task SendAsync(Charge charge)
    {
        var names = Names(charge.KeyId, charge.Model);
        var member = NextMember() + ":" + charge.Tokens;
        RedisKey[] keys;
        RedisValue[] args;
        // Pairs of (token set, running total): names[1..2] for the key, names[4..5] for key × model.
        if (charge.KeyTpm && charge.Model is not null) { keys = [names[1], names[2], names[4], names[5]]; args = [_windowMs, member, member]; }
        else if (charge.KeyTpm) { keys = [names[1], names[2]]; args = [_windowMs, member]; }
        else { keys = [names[4], names[5]]; args = [_windowMs, member]; }
        Task call;
        lock (_issue)
        {
            try { call = _db.ScriptEvaluateAsync(ChargeSha, keys, args); }
            catch (Exception e) { call = Task.FromException(e); }
            // On the connection now, ahead of any later check (or lost with Redis): no longer pending here.
            if (charge.KeyTpm) AddPending(charge.KeyId, null, -charge.Tokens);
            if (charge.Model is not null) AddPending(charge.KeyId, charge.Model, -charge.Tokens);
        }
        return ObserveAsync(call, keys, args);
    }

    private async Task ObserveAsync(Task call, RedisKey[] keys, RedisValue[] args)
    {
        try
        {
            try { await call.ConfigureAwait(false); }
            catch (RedisServerException e) when (IsNoScript(e))
            {
                // Redis lost its script cache: nothing ran, so the text goes once (later than the hash would have: a check issued
                // in between did not count this charge, as if it had come a moment later).
                await _db.ScriptEvaluateAsync(RedisScripts.Charge, keys, args).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is RedisException or TimeoutException or ObjectDisposedException)
        {
            OnError(e); // Redis is down: the window is lost with it anyway
        }
    }

    /// <summary>rpm, tpm and tpm-total of the key, then (with a model) the same three of key × model; {id} keeps them in one cluster slot.</summary>
    private RedisKey[] Names(string keyId, string? model) => _keyNames.GetOrAdd((keyId, model), static k => k.Model is null
        ? [$"ratelimit:rpm:{{{k.KeyId}}}", $"ratelimit:tpm:{{{k.KeyId}}}", $"ratelimit:tpm-total:{{{k.KeyId}}}"]
        : [$"ratelimit:rpm:{{{k.KeyId}}}", $"ratelimit:tpm:{{{k.KeyId}}}", $"ratelimit:tpm-total:{{{k.KeyId}}}",
           $"ratelimit:rpm:{k.Model}:{{{k.KeyId}}}", $"ratelimit:tpm:{k.Model}:{{{k.KeyId}}}", $"ratelimit:tpm-total:{k.Model}:{{{k.KeyId}}}"]);

    private string NextMember() => _instance + "-" + Interlocked.Increment(ref _sequence).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static TimeSpan Ms(long ms) => ms <= 0 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(ms);

    private void OnError(Exception e)
    {
        Interlocked.Increment(ref _errors);
        _onError?.Invoke();
        long now = Stopwatch.GetTimestamp(), last = Interlocked.Read(ref _lastErrorLog);
        if ((last == 0 || Stopwatch.GetElapsedTime(last, now) >= ErrorLogInterval) && Interlocked.CompareExchange(ref _lastErrorLog, now, last) == last)
            _log?.Invoke($"rate limiter unavailable, allowing requests (fail-open): {e.GetType().Name}: {e.Message}");
    }

    /// <summary>Flushes the queued charges, then stops the writer.</summary>
    public async ValueTask DisposeAsync()
    {
        _charges.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
    }

    private readonly record struct Charge(string KeyId, string? Model, bool KeyTpm, long Tokens);
}
