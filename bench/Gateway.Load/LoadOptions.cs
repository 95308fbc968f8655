using System.Globalization;

namespace Gateway.Load;

/// <summary>The command line, validated. Every run is bounded: per-step duration, per-step request cap, overall time cap.</summary>
internal sealed class LoadOptions
{
    public string Profile { get; set; } = "fixed";                 // fixed | rate | sweep | streams
    public int Concurrency { get; set; } = 8;
    public double Rate { get; set; } = 50;
    public string SweepBy { get; set; } = "concurrency";           // concurrency | rate
    public List<double>? Steps { get; set; }
    public int Streams { get; set; } = 100;
    public double DurationSeconds { get; set; } = 10;
    public int? MaxRequests { get; set; }
    public double MaxTotalSeconds { get; set; } = 1800;
    public double GraceSeconds { get; set; } = 10;
    public int MaxInFlight { get; set; } = 1024;
    public double SloMs { get; set; } = 5;
    public bool Stream { get; set; } = true;
    public int? MaxTokens { get; set; }
    public string? GatewayUrl { get; set; }
    public string? Key { get; set; }
    public string Model { get; set; } = "qwen";
    public int? GatewayPid { get; set; }
    public string? DirectUrl { get; set; }
    public string? DirectModel { get; set; }
    public string? Upstream { get; set; }                           // "simulator" or a URL
    public string GatewayBinary { get; set; } = "out/gateway";
    public int TtftMs { get; set; }
    public int ItlMs { get; set; }
    public int Tokens { get; set; } = 16;
    public string? UpstreamClient { get; set; }                    // the started gateway's [proxy] upstream_client (null = its default)
    public double TokensSigma { get; set; }                         // simulator answer-length spread (0 = fixed length)
    public int SourceAddresses { get; set; }                        // 0 = profile default
    public int Simulators { get; set; }                             // 0 = profile default
    public string OutDir { get; set; } = "load-report";
    public bool Quiet { get; set; }

    public const string Usage = """
        gateway-load — capacity-planning load tool for an OpenAI-compatible gateway (runs gateway and direct interleaved per step)

          --profile fixed|rate|sweep|streams   (default fixed)
          --concurrency N        fixed: concurrent requests (default 8)
          --rate R               rate: Poisson arrivals per second (default 50); --max-inflight N bounds them (default 1024)
          --sweep-by concurrency|rate, --steps a,b,c   sweep: load levels (default concurrency 1,4,16,64; rate 25,50,100,200)
          --streams N            streams: open streams at the last ramp level (levels N/4, N/2, 3N/4, N unless --steps)
          --duration S           seconds per target and step (default 10); --grace S to finish in-flight (default 10)
          --max-requests N       per target and step; --max-total S overall cap (default 1800)
          --slo-ms MS            p99 added-overhead SLO for the knee and the sweep's stop (default 5)
          --stream true|false    streamed answers (default true; TTFT/ITL need it); --max-tokens N
          --gateway URL --key K --model ALIAS [--gateway-pid PID]   an existing gateway (PID for CPU/RSS figures)
          --direct URL --direct-model ID                            the baseline, the upstream without the gateway
          --upstream simulator   start `gateway simulate` and `gateway serve` on free loopback ports (--gateway-binary, default
                                 out/gateway; --ttft-ms, --itl-ms, --tokens set the simulator; --tokens-sigma S
                                 makes lengths log-normal around --tokens, e.g. --ttft-ms 150 --itl-ms 20 --tokens 200
                                 --tokens-sigma 0.9 for chat-like traffic), stop them at the end
          --upstream-client sockets|http1   the started gateway's [proxy] upstream_client (default: the gateway's default)
          --upstream URL         a running vLLM/OpenAI server as direct target (--direct-model); without --gateway one is started
          --source-addresses N   spread client connections over 127.0.0.1..N (streams default: 1 per 2,000 streams, at least 2)
          --simulators K         with --upstream simulator: K simulators on 127.0.0.1..K behind the gateway (streams default: 1 per
                                 4,000 streams, so the gateway's upstream connections do not run out of ports; else 1)
          --out DIR              report.md, report.json, *.svg (default ./load-report)
          --quiet                no progress line
        """;

    /// <summary>Null on success, "" after --help, else the error.</summary>
    public static string? Parse(string[] args, out LoadOptions options)
    {
        // A local, not the out parameter: the setters below are lambdas, which cannot capture out parameters.
        var o = options = new LoadOptions();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string? inline = null;
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.IndexOf('=') is var eq and > 0) { inline = arg[(eq + 1)..]; arg = arg[..eq]; }
            if (arg is "-h" or "--help") return "";
            if (arg == "--quiet") { o.Quiet = true; continue; }
            var value = inline ?? (i + 1 < args.Length ? args[++i] : null);
            if (value is null) return $"{arg} needs a value";
            string? error = arg switch
            {
                "--profile" => Set(value is "fixed" or "rate" or "sweep" or "streams", () => o.Profile = value, "--profile must be fixed, rate, sweep or streams"),
                "--concurrency" => Int(value, 1, 100_000, v => o.Concurrency = v),
                "--rate" => Num(value, 0.001, 1e6, v => o.Rate = v),
                "--sweep-by" => Set(value is "concurrency" or "rate", () => o.SweepBy = value, "--sweep-by must be concurrency or rate"),
                "--steps" => ParseSteps(value, o),
                "--streams" => Int(value, 1, 1_000_000, v => o.Streams = v),
                "--duration" => Num(value, 0.1, 86_400, v => o.DurationSeconds = v),
                "--grace" => Num(value, 0, 3600, v => o.GraceSeconds = v),
                "--max-requests" => Int(value, 1, int.MaxValue, v => o.MaxRequests = v),
                "--max-total" => Num(value, 1, 7 * 86_400, v => o.MaxTotalSeconds = v),
                "--max-inflight" => Int(value, 1, 1_000_000, v => o.MaxInFlight = v),
                "--slo-ms" => Num(value, 0, 1e6, v => o.SloMs = v),
                "--stream" => Set(value is "true" or "false", () => o.Stream = value == "true", "--stream must be true or false"),
                "--max-tokens" => Int(value, 1, int.MaxValue, v => o.MaxTokens = v),
                "--gateway" => Url(value, v => o.GatewayUrl = v),
                "--key" => Set(true, () => o.Key = value, ""),
                "--model" => Set(value.Length > 0, () => o.Model = value, "--model must not be empty"),
                "--gateway-pid" => Int(value, 1, int.MaxValue, v => o.GatewayPid = v),
                "--direct" => Url(value, v => o.DirectUrl = v),
                "--direct-model" => Set(value.Length > 0, () => o.DirectModel = value, "--direct-model must not be empty"),
                "--upstream" => value == "simulator" ? Set(true, () => o.Upstream = value, "") : Url(value, v => o.Upstream = v),
                "--gateway-binary" => Set(value.Length > 0, () => o.GatewayBinary = value, "--gateway-binary must not be empty"),
                "--ttft-ms" => Int(value, 0, 600_000, v => o.TtftMs = v),
                "--itl-ms" => Int(value, 0, 60_000, v => o.ItlMs = v),
                "--tokens" => Int(value, 1, 10_000_000, v => o.Tokens = v),
                "--upstream-client" => Set(value is "sockets" or "http1", () => o.UpstreamClient = value, "--upstream-client must be sockets or http1"),
                "--tokens-sigma" => Num(value, 0, 3, v => o.TokensSigma = v),
                "--source-addresses" => Int(value, 1, 60_000, v => o.SourceAddresses = v),
                "--simulators" => Int(value, 1, 64, v => o.Simulators = v),
                "--out" => Set(value.Length > 0, () => o.OutDir = value, "--out must not be empty"),
                _ => $"unknown option '{arg}' (see --help)",
            };
            if (error is not null) return $"{arg}: {error}";
        }
        return o.Validate();
    }

    private string? Validate()
    {
        if (Upstream is null && GatewayUrl is null && DirectUrl is null) return "give --upstream simulator|URL, or --gateway and/or --direct";
        if (Upstream is not null && Upstream != "simulator" && DirectModel is null) return "--upstream URL needs --direct-model (the id it serves)";
        if (DirectUrl is not null && DirectModel is null) return "--direct needs --direct-model";
        if (GatewayUrl is not null && Upstream != "simulator" && string.IsNullOrEmpty(Key)) return "--gateway needs --key";
        if (Profile == "streams" && Upstream != "simulator") return "--profile streams runs against the simulator: add --upstream simulator";
        return null;
    }

    /// <summary>The load levels of this run, lowest first.</summary>
    public IReadOnlyList<double> LoadLevels() => Profile switch
    {
        "fixed" => [Concurrency],
        "rate" => [Rate],
        "streams" => Steps ?? [.. new[] { Streams / 4, Streams / 2, Streams * 3 / 4, Streams }.Where(n => n > 0).Distinct().Select(n => (double)n)],
        _ => Steps ?? (SweepBy == "rate" ? [25, 50, 100, 200] : [1, 4, 16, 64]),
    };

    /// <summary>How many simulators --upstream simulator starts (the direct baseline is the first one).</summary>
    public int SimulatorCount => Simulators > 0 ? Simulators : Profile == "streams" ? Math.Max(1, (int)Math.Ceiling(LoadLevels().Max() / 4000)) : 1;

    /// <summary>"concurrency", "rate" or "streams": what a step's load number means.</summary>
    public string LoadKind => Profile switch { "rate" => "rate", "streams" => "streams", "sweep" => SweepBy, _ => "concurrency" };

    private static string? ParseSteps(string value, LoadOptions o)
    {
        var steps = new List<double>();
        foreach (var part in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !(v > 0)) return $"'{part}' is not a positive number";
            steps.Add(v);
        }
        if (steps.Count == 0) return "no steps";
        steps.Sort();
        o.Steps = steps;
        return null;
    }

    private static string? Set(bool ok, Action set, string error)
    {
        if (!ok) return error;
        set();
        return null;
    }

    private static string? Int(string value, int min, int max, Action<int> set) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max
            ? Set(true, () => set(v), "") : $"expected an integer in {min}..{max}, got '{value}'";

    private static string? Num(string value, double min, double max, Action<double> set) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max
            ? Set(true, () => set(v), "") : $"expected a number in {min}..{max}, got '{value}'";

    private static string? Url(string value, Action<string> set) =>
        Uri.TryCreate(value, UriKind.Absolute, out var u) && u.Scheme is "http" or "https"
            ? Set(true, () => set(value), "") : $"expected an http(s) URL, got '{value}'";
}
