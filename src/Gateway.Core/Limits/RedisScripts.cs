namespace Gateway.Limits;

/// <summary>
/// The Lua the Redis limiter runs. Keys carry the API key id in a hash tag ({id}) so every key of one check lives in one cluster
/// slot. Times come from Redis (TIME), never from the instances, so their clocks do not matter.
/// </summary>
internal static class RedisScripts
{
    /// <summary>
    /// KEYS: rpm, tpm of the key [, rpm, tpm of key × model]. ARGV: window_ms, key_rpm, key_tpm, model_rpm, model_tpm, member,
    /// key_pending, model_pending (tokens this instance has charged but not yet issued to Redis: counted as if they were), peek
    /// (1: report only, record and refuse nothing). Checks every scope, then records the request in the RPM sets only if all allow
    /// it. Returns
    /// {violation, key_requests_remaining, key_requests_reset_ms, key_tokens_remaining, key_tokens_reset_ms, retry_after_ms}.
    /// Token entries are members "unique:tokens" scored by time; their sum is the window's usage.
    /// </summary>
    public const string Check = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local window = tonumber(ARGV[1])
        local floor = now - window

        local function requests(key, limit)
          if limit <= 0 then return 0, 0 end
          redis.call('ZREMRANGEBYSCORE', key, '-inf', floor)
          local n = redis.call('ZCARD', key)
          if n == 0 then return 0, 0 end
          local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
          return n, tonumber(oldest[2]) + window - now
        end

        local function tokens(key, limit)
          if limit <= 0 then return 0, 0 end
          redis.call('ZREMRANGEBYSCORE', key, '-inf', floor)
          local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
          local total, reset = 0, 0
          for i = 1, #entries, 2 do
            local m = entries[i]
            total = total + tonumber(string.sub(m, string.find(m, ':', 1, true) + 1))
            if i == 1 then reset = tonumber(entries[i + 1]) + window - now end
          end
          return total, reset
        end

        local krpm, ktpm = tonumber(ARGV[2]), tonumber(ARGV[3])
        local mrpm, mtpm = tonumber(ARGV[4]), tonumber(ARGV[5])
        local kr, krr = requests(KEYS[1], krpm)
        local kt, ktr = tokens(KEYS[2], ktpm)
        kt = kt + tonumber(ARGV[7] or 0)
        local mr, mrr, mt, mtr = 0, 0, 0, 0
        if #KEYS >= 4 then
          mr, mrr = requests(KEYS[3], mrpm)
          mt, mtr = tokens(KEYS[4], mtpm)
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
          if #KEYS >= 4 and mrpm > 0 then
            redis.call('ZADD', KEYS[3], now, ARGV[6])
            redis.call('PEXPIRE', KEYS[3], window)
          end
        end
        local kremaining, tremaining = 0, 0
        if krpm > 0 then kremaining = math.max(0, krpm - kr) end
        if ktpm > 0 then tremaining = math.max(0, ktpm - kt) end
        return { violation, kremaining, krr, tremaining, ktr, retry }
        """;

    /// <summary>KEYS: token sets to charge. ARGV: window_ms, then pairs of (member "unique:tokens") per key, in key order.</summary>
    public const string Charge = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local window = tonumber(ARGV[1])
        for i = 1, #KEYS do
          redis.call('ZADD', KEYS[i], now, ARGV[i + 1])
          redis.call('PEXPIRE', KEYS[i], window)
        end
        return #KEYS
        """;
}
