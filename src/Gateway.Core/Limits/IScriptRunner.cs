using Gateway.Limits.Resp;

namespace Gateway.Limits;

internal enum LimiterScript : byte { Check, Charge }

/// <summary>An argument of a script: a number or a string.</summary>
internal readonly struct ScriptArg(long number, string? text)
{
    public long Number { get; } = number;
    public string? Text { get; } = text;

    public static implicit operator ScriptArg(long number) => new(number, null);
    public static implicit operator ScriptArg(string text) => new(0, text);
}

/// <summary>
/// How <see cref="RedisRateLimiter"/>'s scripts reach Redis: StackExchange.Redis, or the loop client (<see cref="RespClient"/>).
/// <see cref="Run"/> is called under the limiter's issue lock and must put the command on its one connection before it returns,
/// so commands reach Redis in the order of the calls (see RedisRateLimiter._issue). A failure is a <see cref="RespKind.Failed"/>
/// reply, not an exception; a check (not a charge) fails so within the limiter's timeout.
/// </summary>
internal interface IScriptRunner : IAsyncDisposable
{
    ValueTask<RespReply> Run(LimiterScript script, bool asText, ReadOnlySpan<string> keys, ReadOnlySpan<ScriptArg> args);
}
