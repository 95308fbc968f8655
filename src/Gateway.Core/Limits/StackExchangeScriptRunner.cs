using Gateway.Net;
using System.Runtime.CompilerServices;
using Gateway.Limits.Resp;
using StackExchange.Redis;

namespace Gateway.Limits;

/// <summary>The scripts over StackExchange.Redis (rediss://, option strings, or <c>redis.limiter_client = "stackexchange"</c>).</summary>
internal sealed class StackExchangeScriptRunner(IConnectionMultiplexer redis, TimeSpan timeout) : IScriptRunner
{
    // The scripts go as EVALSHA of hashes made here once. StackExchange.Redis's text overload looks each script's hash up by its
    // text, hashing the ~2.5 KB of Lua on every call (1.6 % of a Redis-mode profile; within noise in a load A/B).
    private static readonly byte[] CheckSha = System.Security.Cryptography.SHA1.HashData(System.Text.Encoding.UTF8.GetBytes(RedisScripts.Check));
    private static readonly byte[] ChargeSha = System.Security.Cryptography.SHA1.HashData(System.Text.Encoding.UTF8.GetBytes(RedisScripts.Charge));
    private readonly IDatabase _db = redis.GetDatabase();

    public ValueTask<RespReply> Run(LimiterScript script, bool asText, ReadOnlySpan<string> keys, ReadOnlySpan<ScriptArg> args)
    {
        var redisKeys = new RedisKey[keys.Length];
        for (int i = 0; i < keys.Length; i++) redisKeys[i] = keys[i];
        var values = new RedisValue[args.Length];
        for (int i = 0; i < args.Length; i++) values[i] = args[i].Text is { } text ? text : args[i].Number;
        bool check = script == LimiterScript.Check;
        Task<RedisResult> call;
        try
        {
            // Issued now, on SE.Redis's one connection in call order; only the wait is asynchronous.
            call = asText
                ? _db.ScriptEvaluateAsync(check ? RedisScripts.Check : RedisScripts.Charge, redisKeys, values)
                : _db.ScriptEvaluateAsync(check ? CheckSha : ChargeSha, redisKeys, values);
        }
        catch (Exception e) { return new(Failure(e)); }
        return WaitAsync(call, check ? timeout : Timeout.InfiniteTimeSpan);
    }

    [AsyncMethodBuilder(typeof(PooledTaskBuilder<>))]
    private static async ValueTask<RespReply> WaitAsync(Task<RedisResult> call, TimeSpan timeout)
    {
        try { return Convert(await call.WaitAsync(timeout).ConfigureAwait(false)); }
        catch (RedisServerException e) { return new RespReply { Kind = RespKind.Error, Error = e.Message }; }
        catch (Exception e) when (e is RedisException or TimeoutException or InvalidCastException or ObjectDisposedException) { return Failure(e); }
    }

    private static RespReply Convert(RedisResult result)
    {
        var reply = new RespReply();
        switch (result.Resp2Type)
        {
            case ResultType.Integer:
                reply.Kind = RespKind.Integer;
                reply.Add((long)result);
                break;
            case ResultType.Array:
                reply.Kind = RespKind.Array;
                foreach (var item in (RedisResult[])result!)
                    if (item.Resp2Type == ResultType.Integer) reply.Add((long)item);
                break;
            default:
                reply.Kind = result.IsNull ? RespKind.Null : RespKind.Simple;
                break;
        }
        return reply;
    }

    private static RespReply Failure(Exception e) => RespReply.Failure($"{e.GetType().Name}: {e.Message}");

    public ValueTask DisposeAsync() => default; // the multiplexer is the host's
}
