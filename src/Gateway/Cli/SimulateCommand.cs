using System.Globalization;
using System.Runtime.InteropServices;
using Gateway.Simulation;

namespace Gateway.Cli;

/// <summary><c>gateway simulate [options]</c>: runs the built-in vLLM simulator until SIGINT/SIGTERM.</summary>
internal static class SimulateCommand
{
    private static readonly string[] ValueOptions =
        ["--host", "--port", "--model", "--ttft-ms", "--itl-ms", "--tokens", "--tokens-sigma", "--fail-rate", "--die-after", "--health-delay-ms"];

    public static async Task<int> RunAsync(string[] args)
    {
        if (Parse(args, out var options) is { } error) return error == "" ? 0 : CommandLine.Fail($"simulate: {error}");

        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Take over SIGINT/SIGTERM (cancel the default exit) so in-flight streams are aborted and the port released in order.
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });

        VllmSimulator simulator;
        try
        {
            simulator = await VllmSimulator.StartAsync(options);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            return CommandLine.Fail($"simulate: cannot listen on {options.Host}:{options.Port}: {e.Message}");
        }
        await using (simulator)
        {
            Console.Out.WriteLine($"simulator listening on http://{FormatHost(options.Host)}:{simulator.Port} serving {string.Join(",", options.Models)}");
            Console.Out.Flush();
            await stop.Task;
            await simulator.StopAsync();
        }
        return 0;
    }

    private static string FormatHost(string host) => host.Contains(':') && !host.StartsWith('[') ? $"[{host}]" : host;

    /// <summary>Returns null on success, "" for --help (usage printed), else the error message.</summary>
    private static string? Parse(string[] args, out SimulatorOptions options)
    {
        options = new SimulatorOptions();
        List<string>? models = null;
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string? inline = null;
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.IndexOf('=') is var eq and > 0)
            {
                inline = arg[(eq + 1)..];
                arg = arg[..eq];
            }
            switch (arg)
            {
                case "-h" or "--help":
                    Console.Out.WriteLine(CommandLine.Usage);
                    return "";
                case "--health-fail":
                    if (inline is not null) return "--health-fail takes no value";
                    options.HealthFails = true;
                    continue;
                case "--not-ready":
                    if (inline is not null) return "--not-ready takes no value";
                    options.NotReady = true;
                    continue;
            }
            if (!ValueOptions.Contains(arg)) return $"unknown option '{arg}' (see gateway --help)";
            var value = inline ?? (i + 1 < args.Length ? args[++i] : null);
            if (value is null) return $"{arg} needs a value";
            switch (arg)
            {
                case "--host":
                    if (!VllmSimulator.TryParseHost(value, out _)) return $"--host must be an IP address or 'localhost', got '{value}'";
                    options.Host = value;
                    break;
                case "--port":
                    if (Int(value, 0, 65535) is not { } port) return $"--port must be an integer in 0..65535, got '{value}'";
                    options.Port = port;
                    break;
                case "--model":
                    models ??= [];
                    foreach (var id in value.Split(',', StringSplitOptions.TrimEntries))
                    {
                        if (id.Length == 0) return $"--model: empty model id in '{value}'";
                        if (!models.Contains(id)) models.Add(id);
                    }
                    break;
                case "--ttft-ms":
                    if (Int(value, 0, int.MaxValue) is not { } ttft) return $"--ttft-ms must be a non-negative integer, got '{value}'";
                    options.TtftMs = ttft;
                    break;
                case "--itl-ms":
                    if (Int(value, 0, int.MaxValue) is not { } itl) return $"--itl-ms must be a non-negative integer, got '{value}'";
                    options.ItlMs = itl;
                    break;
                case "--tokens":
                    if (Int(value, 1, int.MaxValue) is not { } tokens) return $"--tokens must be a positive integer, got '{value}'";
                    options.Tokens = tokens;
                    break;
                case "--tokens-sigma":
                    if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var sigma) || !(sigma is >= 0 and <= 3))
                        return $"--tokens-sigma must be a number in 0..3, got '{value}'";
                    options.TokensSigma = sigma;
                    break;
                case "--fail-rate":
                    if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var rate) || !(rate is >= 0 and <= 1))
                        return $"--fail-rate must be a number in 0..1, got '{value}'";
                    options.FailRate = rate;
                    break;
                case "--die-after":
                    if (Int(value, 0, int.MaxValue) is not { } die) return $"--die-after must be a non-negative integer, got '{value}'";
                    options.DieAfterEvents = die;
                    break;
                case "--health-delay-ms":
                    if (Int(value, 0, int.MaxValue) is not { } delay) return $"--health-delay-ms must be a non-negative integer, got '{value}'";
                    options.HealthDelayMs = delay;
                    break;
                default:
                    return $"unknown option '{arg}' (see gateway --help)";
            }
        }
        if (models is not null) options.Models = models;
        return null;
    }

    private static int? Int(string value, int min, int max) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max ? n : null;
}
