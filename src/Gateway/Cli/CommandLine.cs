using Gateway.Config;

namespace Gateway.Cli;

/// <summary><c>gateway serve [FILE] | simulate [...] | config check FILE | migrate ... | keys ... | --help</c>.</summary>
internal static class CommandLine
{
    public const string Usage = """
        gateway — OpenAI-compatible inference gateway for vLLM

        Usage:
          gateway [serve] [FILE]          run the gateway (FILE defaults to ./gateway.toml if present; env overrides apply)
          gateway simulate [options]      run the built-in vLLM simulator
              --host H --port N --model ID[,ID…] --ttft-ms N --itl-ms N --tokens N --tokens-sigma S
              --fail-rate F --die-after N --health-delay-ms N --health-fail --not-ready
          gateway config check FILE       validate a configuration file and exit
          gateway healthcheck [URL]       GET URL (default http://127.0.0.1:$PORT/health); exit 0 on 200 (container HEALTHCHECK)
          gateway migrate up | down [N] | status [--config FILE]
                                          apply, revert (newest N, default 1) or list the PostgreSQL schema migrations
          gateway keys create --name N [--models a,b] [--rpm N] [--tpm N] [--expires RFC3339] | list | revoke ID [--config FILE]
                                          manage API keys in the configured store (PostgreSQL or the embedded state file)
          gateway --help                  this text

        Environment: DATABASE_URL, REDIS_URL, ADMIN_API_KEY, PORT, LOG_LEVEL, LOG_FORMAT override the file.
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            if (args.Length == 0) return await ServeCommand.RunAsync(null);
            switch (args[0])
            {
                case "-h" or "--help" or "help":
                    Console.Out.WriteLine(Usage);
                    return 0;
                case "serve":
                    if (args.Length > 2) return Fail("serve takes at most one FILE argument");
                    return await ServeCommand.RunAsync(args.Length > 1 ? args[1] : null);
                case "simulate":
                    return await SimulateCommand.RunAsync(args.AsSpan(1).ToArray());
                case "migrate":
                    return await MigrateCommand.RunAsync(args.AsSpan(1).ToArray());
                case "keys":
                    return await KeysCommand.RunAsync(args.AsSpan(1).ToArray());
                case "healthcheck":
                    if (args.Length > 2) return Fail("usage: gateway healthcheck [URL]");
                    return await HealthCheckAsync(args.Length == 2 ? args[1] : null);
                case "config":
                    if (args.Length != 3 || args[1] != "check") return Fail("usage: gateway config check FILE");
                    return ConfigCheck(args[2]);
                default:
                    if (args.Length == 1 && (args[0].EndsWith(".toml", StringComparison.OrdinalIgnoreCase) || File.Exists(args[0])))
                        return await ServeCommand.RunAsync(args[0]);
                    return Fail($"unknown command '{args[0]}' (see gateway --help)");
            }
        }
        catch (ConfigException e)
        {
            return Fail(e.Message);
        }
    }

    internal static int Fail(string message)
    {
        Console.Error.WriteLine($"gateway: {message}");
        return 2;
    }

    // The chiseled container image has no curl; the binary probes itself.
    private static async Task<int> HealthCheckAsync(string? url)
    {
        var port = Environment.GetEnvironmentVariable("PORT") is { Length: > 0 } p ? p : "8080";
        url ??= $"http://127.0.0.1:{port}/health";
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri)) return Fail($"healthcheck: '{url}' is not a URL");
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            using var response = await http.GetAsync(uri);
            if (response.IsSuccessStatusCode) return 0;
            Console.Error.WriteLine($"gateway: healthcheck: {url} answered {(int)response.StatusCode}");
            return 1;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            Console.Error.WriteLine($"gateway: healthcheck: {url}: {e.Message}");
            return 1;
        }
    }

    private static int ConfigCheck(string path)
    {
        var options = ConfigLoader.LoadFile(path);
        Console.Out.WriteLine($"{path}: ok ({options.Models.Count} models, {options.Keys.Count} keys, port {options.Server.Port})");
        return 0;
    }
}
