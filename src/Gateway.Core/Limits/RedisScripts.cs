namespace Gateway.Limits;

/// <summary>
/// The Lua the Redis limiter runs. Keys carry the API key id in a hash tag ({id}) so every key of one check lives in one cluster
/// slot. Times come from Redis (TIME), never from the instances, so their clocks do not matter.
/// </summary>
internal static class RedisScripts
{
    /// <summary>What both scripts start with: Redis's clock in ms, the window (ARGV[1]), and the tokens of a "unique:tokens" member.</summary>
    private const string Prologue = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local window = tonumber(ARGV[1])

        local function entry_tokens(m)
          return tonumber(string.sub(m, string.find(m, ':', 1, true) + 1))
        end

        """;

    /// <summary>
    /// KEYS: rpm, tpm, tpm-total of the key [, rpm, tpm, tpm-total of key × model]. ARGV: window_ms, key_rpm, key_tpm, model_rpm,
    /// model_tpm, member, key_pending, model_pending (tokens this instance has charged but not yet issued to Redis: counted as if
    /// they were), peek (1: report only, record and refuse nothing). Checks every scope, then records the request in the RPM sets
    /// only if all allow it. Returns
    /// {violation, key_requests_remaining, key_requests_reset_ms, key_tokens_remaining, key_tokens_reset_ms, retry_after_ms}.
    /// Token entries are members "unique:tokens" scored by time; the tpm-total hash holds their running total and count, so a check
    /// reads only the entries leaving the window (summing the whole set on every check cost 368 µs per call at ~650 entries, which
    /// capped a key at ~2,700 requests/s across all instances). The set is added up again when the total is missing, out of step
    /// with the set, or a window old.
    /// </summary>
    public const string Check = Prologue + """
        local floor = now - window

        local function requests(key, limit)
          if limit <= 0 then return 0, 0 end
          redis.call('ZREMRANGEBYSCORE', key, '-inf', floor)
          local n = redis.call('ZCARD', key)
          if n == 0 then return 0, 0 end
          local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
          return n, tonumber(oldest[2]) + window - now
        end

        -- The running total is a hash {t = tokens, n = entries}. It is trusted only while n matches the set, so an entry added or
        -- removed without it (an older build sharing this Redis, an evicted key) makes the next check add the window up again;
        -- it also lives at most one window from that adding-up (a charge never extends it), which bounds any drift n cannot see.
        local function tokens(key, sumKey, limit)
          if limit <= 0 then return 0, 0 end
          local kept = redis.call('HMGET', sumKey, 't', 'n')
          local total, count = tonumber(kept[1]), tonumber(kept[2])
          local expired = redis.call('ZRANGEBYSCORE', key, '-inf', floor)
          if #expired > 0 then redis.call('ZREMRANGEBYSCORE', key, '-inf', floor) end
          local size = redis.call('ZCARD', key)
          if total and count and count - #expired == size then
            if #expired > 0 then
              for i = 1, #expired do total = total - entry_tokens(expired[i]) end
              redis.call('HSET', sumKey, 't', total, 'n', size)
            end
          else
            total = 0
            for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do total = total + entry_tokens(m) end
            local ttl = redis.call('PTTL', key)
            if size > 0 and ttl > 0 then
              redis.call('HSET', sumKey, 't', total, 'n', size)
              redis.call('PEXPIRE', sumKey, math.min(ttl, window))
            else
              redis.call('DEL', sumKey)
            end
          end
          if size == 0 then return 0, 0 end
          local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
          return math.max(0, total), tonumber(oldest[2]) + window - now
        end

        local krpm, ktpm = tonumber(ARGV[2]), tonumber(ARGV[3])
        local mrpm, mtpm = tonumber(ARGV[4]), tonumber(ARGV[5])
        local kr, krr = requests(KEYS[1], krpm)
        local kt, ktr = tokens(KEYS[2], KEYS[3], ktpm)
        kt = kt + tonumber(ARGV[7] or 0)
        local mr, mrr, mt, mtr = 0, 0, 0, 0
        if #KEYS >= 6 then
          mr, mrr = requests(KEYS[4], mrpm)
          mt, mtr = tokens(KEYS[5], KEYS[6], mtpm)
          mt = mt + tonumber(ARGV[8] or 0)
        end

        local peek = ARGV[9] == '1'
        local violation, retry = 0, 0
        if peek then
        elseif krpm > 0 and kr >= krpm then violation, retry = 1, krr
        elseif ktpm > 0 and kt >= ktpm then violation, retry = 2, ktr
        elseif mrpm > 0 and mr >= mrpm then violation, retry = 3, mrr
        elseif mtpm > 0 and mt >= mtpm then violation, retry = 4, mtr
        end

        if violation == 0 and not peek then
          if krpm > 0 then
            redis.call('ZADD', KEYS[1], now, ARGV[6])
            redis.call('PEXPIRE', KEYS[1], window)
            if kr == 0 then krr = window end
            kr = kr + 1
          end
          if #KEYS >= 6 and mrpm > 0 then
            redis.call('ZADD', KEYS[4], now, ARGV[6])
            redis.call('PEXPIRE', KEYS[4], window)
          end
        end
        local kremaining, tremaining = 0, 0
        if krpm > 0 then kremaining = math.max(0, krpm - kr) end
        if ktpm > 0 then tremaining = math.max(0, ktpm - kt) end
        return { violation, kremaining, krr, tremaining, ktr, retry }
        """;

    /// <summary>
    /// KEYS: pairs of (token set, its tpm-total) to charge. ARGV: window_ms, then the member ("unique:tokens") of each pair, in order.
    /// The total grows only when the member is new, so a command sent twice (a reconnect) cannot count its tokens twice, and only
    /// when it exists: a check starts it by adding the whole set up.
    /// </summary>
    public const string Charge = Prologue + """
        for i = 1, #KEYS, 2 do
          local member = ARGV[(i + 1) / 2 + 1]
          if redis.call('ZADD', KEYS[i], now, member) == 1 and redis.call('EXISTS', KEYS[i + 1]) == 1 then
            redis.call('HINCRBY', KEYS[i + 1], 't', entry_tokens(member))
            redis.call('HINCRBY', KEYS[i + 1], 'n', 1)
          end
          redis.call('PEXPIRE', KEYS[i], window) -- not the total's: it is added up again at least once per window
        end
        return #KEYS / 2
        """;
}
