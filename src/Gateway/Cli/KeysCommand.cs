using System.Globalization;
using Gateway.Auth;
using Gateway.Config;
using Gateway.Storage;

namespace Gateway.Cli;

/// <summary>
/// <c>gateway keys create|list|revoke</c> in either mode, so an operator can bootstrap without the admin API. Prints the plaintext key
/// once, on create; never a hash. In embedded mode the state file is locked by a running gateway: stop it first (the message says so).
/// Exit 0 done, 1 failed (store error, unknown id), 2 bad usage.
/// </summary>
internal static class KeysCommand
{
    public const string UsageLine =
        "usage: gateway keys create --name N [--models a,b] [--rpm N] [--tpm N] [--expires RFC3339] | list | revoke ID  [--config FILE]";

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0) return CommandLine.Fail(UsageLine);
        var flags = new Dictionary<string, string>(StringComparer.Ordinal);
        var positional = new List<string>();
        for (var i = 1; i < args.Length; i++)
        {
            if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                if (i + 1 >= args.Length || flags.ContainsKey(args[i])) return CommandLine.Fail(UsageLine);
                flags[args[i]] = args[++i];
            }
            else positional.Add(args[i]);
        }
        flags.Remove("--config", out var configPath);

        NewKey? create = null;
        Guid revokeId = default;
        switch (args[0])
        {
            case "create":
                if (positional.Count != 0) return CommandLine.Fail(UsageLine);
                if (!TryParseCreate(flags, out create, out var error)) return CommandLine.Fail(error);
                break;
            case "list":
                if (positional.Count != 0 || flags.Count != 0) return CommandLine.Fail(UsageLine);
                break;
            case "revoke":
                if (positional.Count != 1 || flags.Count != 0) return CommandLine.Fail(UsageLine);
                if (!Guid.TryParseExact(positional[0], "D", out revokeId)) return CommandLine.Fail($"'{positional[0]}' is not a key id (a UUID)");
                break;
            default:
                return CommandLine.Fail(UsageLine);
        }

        var options = CliStore.LoadOptions(configPath);
        try
        {
            await using var store = await CliStore.OpenAsync(options);
            if (create is not null)
            {
                var (plaintext, key) = await KeyIssuer.CreateAsync(store, create);
                Console.Out.WriteLine(plaintext);
                Console.Error.WriteLine($"created key {key.Id} ({key.Name}); the key above is shown only once");
            }
            else if (args[0] == "list")
            {
                Console.Out.WriteLine("ID                                    PREFIX       ACTIVE  RPM     TPM       EXPIRES               LAST USED             MODELS  NAME");
                foreach (var k in await store.ListKeysAsync())
                    Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{k.Id}  {k.KeyPrefix,-11}  {(k.Active ? "yes" : "no"),-6}  {Num(k.RpmLimit),-6}  {Num(k.TpmLimit),-8}  {Time(k.ExpiresAt),-20}  {Time(k.LastUsedAt),-20}  {(k.AllowedModels.Count == 0 ? "*" : string.Join(',', k.AllowedModels))}  {k.Name}"));
            }
            else
            {
                // As the admin API refuses it (409 managed_by_config): the next start would quietly bring the key back.
                var current = await store.GetKeyAsync(revokeId);
                if (options.Keys.Any(c => c.KeyHashHex == current.KeyHash))
                    return CommandLine.Fail($"key {current.Id} ({current.Name}) is defined in the config file; remove it there to revoke it");
                var k = await store.RevokeKeyAsync(revokeId);
                Console.Out.WriteLine($"revoked key {k.Id} ({k.Name})");
            }
            return 0;
        }
        catch (StoreException e)
        {
            Console.Error.WriteLine($"gateway: keys {args[0]} failed: {e.Message}");
            return 1;
        }
    }

    private static string Num(long? v) => v?.ToString(CultureInfo.InvariantCulture) ?? "-";

    private static string Time(DateTimeOffset? t) => t?.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture) ?? "-";

    private static bool TryParseCreate(Dictionary<string, string> flags, out NewKey? key, out string error)
    {
        key = null;
        error = "";
        if (!flags.Remove("--name", out var name) || string.IsNullOrWhiteSpace(name)) { error = "keys create: --name is required"; return false; }
        long? rpm = null, tpm = null;
        DateTimeOffset? expires = null;
        IReadOnlyList<string> models = [];
        if (flags.Remove("--models", out var m)) models = m.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (flags.Remove("--rpm", out var r))
        {
            if (!long.TryParse(r, NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v <= 0) { error = "keys create: --rpm must be a positive integer"; return false; }
            rpm = v;
        }
        if (flags.Remove("--tpm", out var t))
        {
            if (!long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v <= 0) { error = "keys create: --tpm must be a positive integer"; return false; }
            tpm = v;
        }
        if (flags.Remove("--expires", out var e))
        {
            if (!Rfc3339.TryParse(e, out var at))
            {
                error = "keys create: --expires must be an RFC 3339 time with an offset, e.g. 2026-12-31T23:59:59Z";
                return false;
            }
            expires = at;
        }
        if (flags.Count != 0) { error = $"keys create: unknown option {flags.Keys.First()}"; return false; }
        // KeyIssuer fills in the hash and prefix when it generates the key.
        key = new NewKey { KeyHash = "", KeyPrefix = "", Name = name, RpmLimit = rpm, TpmLimit = tpm, AllowedModels = models, ExpiresAt = expires };
        return true;
    }
}
