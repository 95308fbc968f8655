using System.Text;
using Gateway.Limits.Resp;

namespace Gateway.Limits;

/// <summary>The scripts over the loop client: EVALSHA (or EVAL with the text) written straight into its send buffer.</summary>
internal sealed class LoopScriptRunner(RespClient client) : IScriptRunner
{
    private static readonly byte[] CheckSha = Sha(RedisScripts.Check), ChargeSha = Sha(RedisScripts.Charge);
    private static readonly byte[] CheckText = Encoding.UTF8.GetBytes(RedisScripts.Check), ChargeText = Encoding.UTF8.GetBytes(RedisScripts.Charge);
    private readonly RespEncoder _encoder = new();
    private readonly Lock _lock = new();

    public RespClient Client => client;

    public ValueTask<RespReply> Run(LimiterScript script, bool asText, ReadOnlySpan<string> keys, ReadOnlySpan<ScriptArg> args)
    {
        lock (_lock) // the limiter's lock already orders the calls; this one only guards the encoder
        {
            bool check = script == LimiterScript.Check;
            _encoder.Command(3 + keys.Length + args.Length)
                .Arg(asText ? "EVAL"u8 : "EVALSHA"u8)
                .Arg(asText ? (check ? CheckText : ChargeText) : (check ? CheckSha : ChargeSha))
                .Arg(keys.Length);
            foreach (var key in keys) _encoder.Arg(key);
            foreach (var arg in args)
            {
                if (arg.Text is { } text) _encoder.Arg(text);
                else _encoder.Arg(arg.Number);
            }
            // A charge is not timed: it waits for its reply (or the connection's end), so a slow Redis does not count it as lost.
            return client.Issue(_encoder.Written, timed: check);
        }
    }

    private static byte[] Sha(string script) =>
        Encoding.ASCII.GetBytes(Convert.ToHexStringLower(System.Security.Cryptography.SHA1.HashData(Encoding.UTF8.GetBytes(script))));

    public ValueTask DisposeAsync() => client.DisposeAsync();
}
