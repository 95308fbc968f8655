using System.Globalization;
using Gateway.Storage;
using Npgsql;

namespace Gateway.Cli;

/// <summary>
/// <c>gateway migrate up | down [N] | status [--config FILE]</c>: the embedded migrations against <c>database.url</c> (DATABASE_URL or
/// the config file, ./gateway.toml by default). Exit 0 done, 1 failed, 2 bad usage or no database configured.
/// </summary>
internal static class MigrateCommand
{
    public const string UsageLine = "usage: gateway migrate up | down [N] | status [--config FILE]";

    public static async Task<int> RunAsync(string[] args)
    {
        string? configPath = null;
        var rest = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] is "--config" or "-c")
            {
                if (++i >= args.Length) return CommandLine.Fail(UsageLine);
                configPath = args[i];
            }
            else rest.Add(args[i]);
        }

        var steps = 1;
        var ok = rest switch
        {
            ["up"] or ["status"] or ["down"] => true,
            ["down", var n] => int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out steps) && steps > 0,
            _ => false,
        };
        if (!ok) return CommandLine.Fail(UsageLine);

        var options = CliStore.LoadOptions(configPath);
        if (string.IsNullOrWhiteSpace(options.DatabaseUrl))
            return CommandLine.Fail("no database configured: set DATABASE_URL or database.url (migrations are for scaled-out mode only)");

        NpgsqlDataSource dataSource;
        try { dataSource = DatabaseUrl.CreateDataSource(options.DatabaseUrl, 2); }
        catch (FormatException e) { return CommandLine.Fail(e.Message); }

        await using (dataSource)
        {
            var migrator = new Migrator(dataSource);
            try
            {
                switch (rest[0])
                {
                    case "up":
                        var applied = await migrator.UpAsync();
                        foreach (var m in applied) Console.Out.WriteLine($"applied {m.Version:0000}_{m.Name}");
                        Console.Out.WriteLine(applied.Count == 0 ? "schema is up to date" : $"{applied.Count} migration(s) applied");
                        return 0;
                    case "down":
                        var reverted = await migrator.DownAsync(steps);
                        foreach (var m in reverted) Console.Out.WriteLine($"reverted {m.Version:0000}_{m.Name}");
                        Console.Out.WriteLine(reverted.Count == 0 ? "nothing to revert" : $"{reverted.Count} migration(s) reverted");
                        return 0;
                    default:
                        foreach (var s in await migrator.StatusAsync())
                        {
                            var state = s.Unknown ? "applied (unknown to this binary)" : s.AppliedAt is { } at ? "applied " + at.ToString("u", CultureInfo.InvariantCulture) : "pending";
                            Console.Out.WriteLine($"{s.Version:0000}_{s.Name}  {state}");
                        }
                        return 0;
                }
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException or IOException)
            {
                // One line: the server's message, not a stack trace.
                var message = e is PostgresException pg ? $"{pg.SqlState}: {pg.MessageText}" : e.Message.Split('\n')[0];
                Console.Error.WriteLine($"gateway: migrate {rest[0]} failed: {message}");
                return 1;
            }
        }
    }
}
