using System.Globalization;

namespace Gateway.Load;

/// <summary>Everything a run produced; the report writers' only input.</summary>
internal sealed record RunReport
{
    public required string Profile { get; init; }
    public required string LoadKind { get; init; }
    public required string CommandLine { get; init; }
    public required DateTimeOffset StartedAt { get; init; }
    public required double SloMs { get; init; }
    public required IReadOnlyList<StepResult> Steps { get; init; }
    public StepResult? Knee { get; init; }
    public required string StopReason { get; init; }
    public string? GatewayUrl { get; init; }
    public string? DirectUrl { get; init; }
    public string Upstream { get; init; } = "";
    public bool Stream { get; init; }
    public double DurationSeconds { get; init; }
    public long? IdleRssBytes { get; init; }
    public string Machine { get; init; } = $"{Environment.ProcessorCount} CPUs, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}";
}

/// <summary>Runs the profile: per load level, the gateway then the direct target with the same plan, then the sweep's stop rule.</summary>
internal static class LoadRun
{
    public static async Task<RunReport> RunAsync(LoadOptions o, string commandLine, CancellationToken cancellationToken)
    {
        using var overall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        overall.CancelAfter(TimeSpan.FromSeconds(o.MaxTotalSeconds));
        var ct = overall.Token;
        var startedAt = DateTimeOffset.UtcNow;

        UpstreamStack? stack = null;
        try
        {
            if (o.Upstream == "simulator") stack = await UpstreamStack.StartAsync(o, null, UpstreamStack.SimulatorModelId, ct).ConfigureAwait(false);
            else if (o.Upstream is { } url && o.GatewayUrl is null) stack = await UpstreamStack.StartAsync(o, url, o.DirectModel!, ct).ConfigureAwait(false);

            var gatewayUrl = o.GatewayUrl ?? stack?.GatewayUrl;
            var directUrl = o.DirectUrl ?? stack?.DirectUrl ?? (o.Upstream is { } u && u != "simulator" ? u : null);
            var gatewayPid = o.GatewayPid ?? (o.GatewayUrl is null ? stack?.GatewayPid : null);
            var streams = o.Profile == "streams";
            // Streams profile: each stream lasts from its start until about the end of the step (the ramp opens them over the first third).
            var ramp = streams ? TimeSpan.FromSeconds(o.DurationSeconds / 3) : TimeSpan.Zero;
            var itl = o.ItlMs > 0 ? o.ItlMs : 20;
            int? maxTokens = streams ? Math.Max(1, (int)((o.DurationSeconds - ramp.TotalSeconds) * 1000 / itl)) : o.MaxTokens;

            var gateway = gatewayUrl is null ? null : new Target("gateway", gatewayUrl,
                o.GatewayUrl is null && stack is not null ? UpstreamStack.Alias : o.Model, o.Key ?? stack?.Key, streams || o.Stream, maxTokens, "Hello!");
            // The many-streams profile measures the gateway's memory per stream; a direct run would only measure the simulator.
            var direct = directUrl is null || streams ? null : new Target("direct", directUrl,
                o.DirectModel ?? UpstreamStack.SimulatorModelId, null, o.Stream, maxTokens, "Hello!");

            var levels = o.LoadLevels();
            var sources = o.SourceAddresses > 0 ? o.SourceAddresses : streams ? Math.Max(2, (int)Math.Ceiling(levels.Max() / 2000)) : 1;
            using var client = LoadHttp.Create(sources, TimeSpan.FromSeconds(o.DurationSeconds + o.GraceSeconds + 5));

            await WarmUpAsync(client, gateway, direct, streams, ct).ConfigureAwait(false);
            long? idleRss = gatewayPid is { } pid0 ? ProcessProbe.RssBytes(pid0) : null;

            var steps = new List<StepResult>();
            var stopReason = "all steps done";
            for (var i = 0; i < levels.Count; i++)
            {
                if (ct.IsCancellationRequested) { stopReason = StopReasonFor(cancellationToken, o); break; }
                var plan = new StepPlan
                {
                    LoadKind = o.LoadKind, Load = levels[i], Duration = TimeSpan.FromSeconds(o.DurationSeconds), MaxRequests = o.MaxRequests,
                    MaxInFlight = o.MaxInFlight, Grace = TimeSpan.FromSeconds(o.GraceSeconds), Ramp = ramp, Seed = i + 1,
                };
                var label = $"[{i + 1}/{levels.Count} {o.LoadKind} {Fmt(levels[i])}]";
                TargetResult? g = null, d = null;
                ProcessFigures? figures = null;
                if (gateway is not null)
                {
                    var cpu0 = gatewayPid is { } p ? ProcessProbe.CpuSeconds(p) : null;
                    var recorder = new StepRecorder();
                    long peak;
                    await using (var progress = new Progress(label + " gateway", recorder, gatewayPid, o.Quiet))
                    {
                        g = await StepRunner.RunAsync(client, gateway, plan, recorder, ct).ConfigureAwait(false);
                        peak = progress.PeakRss;
                    }
                    if (gatewayPid is { } pid && cpu0 is { } c0 && ProcessProbe.CpuSeconds(pid) is { } c1)
                    {
                        var rss = ProcessProbe.RssBytes(pid) ?? 0;
                        var attempts = Math.Max(1, g.Attempts);
                        figures = new ProcessFigures((c1 - c0) * 1e6 / attempts, c1 - c0, rss, Math.Max(peak, rss));
                    }
                }
                if (direct is not null && !ct.IsCancellationRequested)
                {
                    var recorder = new StepRecorder();
                    await using var progress = new Progress(label + " direct ", recorder, null, o.Quiet);
                    d = await StepRunner.RunAsync(client, direct, plan, recorder, ct).ConfigureAwait(false);
                }
                var step = new StepResult
                {
                    Load = levels[i], LoadKind = o.LoadKind, Gateway = g, Direct = d, GatewayProcess = figures,
                    RssPerStreamBytes = streams && figures is not null && idleRss is { } idle ? (double)Math.Max(0, figures.PeakRssBytes - idle) / levels[i] : null,
                };
                steps.Add(step);
                if (!o.Quiet) Console.Error.Write("\r" + new string(' ', 150) + "\r");
                Console.Error.WriteLine(StepLine(label, step));

                // A dead simulator or gateway makes every further figure meaningless: say which one and why, and stop.
                if (stack?.ExitedChild() is { } exited) { stopReason = exited; Console.Error.WriteLine(exited); break; }
                // Cut short by the overall cap or the user: the requests cut off count as errors, but they say nothing of the target.
                if (ct.IsCancellationRequested) { stopReason = StopReasonFor(cancellationToken, o); break; }
                if (o.Profile is "sweep" or "streams" && Knee.TooManyErrors(step)) { stopReason = $"errors above {Knee.MaxErrorRate:P0} at {Fmt(step.Load)}"; break; }
                if (o.Profile == "sweep" && !double.IsNaN(step.OverheadP99) && step.OverheadP99 >= o.SloMs)
                {
                    stopReason = string.Create(CultureInfo.InvariantCulture, $"p99 added overhead {step.OverheadP99:F2} ms ≥ SLO {o.SloMs} ms at {Fmt(step.Load)}");
                    break;
                }
            }

            return new RunReport
            {
                Profile = o.Profile, LoadKind = o.LoadKind, CommandLine = commandLine, StartedAt = startedAt, SloMs = o.SloMs, Steps = steps,
                Knee = Knee.Find(steps, o.SloMs), StopReason = stopReason, GatewayUrl = gatewayUrl, DirectUrl = directUrl,
                Upstream = o.Upstream ?? "external", Stream = streams || o.Stream, DurationSeconds = o.DurationSeconds, IdleRssBytes = idleRss,
            };
        }
        finally
        {
            if (stack is not null) await stack.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static string StopReasonFor(CancellationToken user, LoadOptions o) =>
        user.IsCancellationRequested ? "interrupted" : string.Create(CultureInfo.InvariantCulture, $"overall cap --max-total {o.MaxTotalSeconds} s reached");

    /// <summary>A few sequential requests per target first, so connection setup and the gateway's first-request work (snapshot,
    /// pools) do not land in the first step's p99. Bounded like everything else: a target that does not answer gets 5 s in all and
    /// one attempt, and the steps then show its errors.</summary>
    private static async Task WarmUpAsync(HttpClient client, Target? gateway, Target? direct, bool streams, CancellationToken ct)
    {
        foreach (var target in new[] { gateway, direct })
        {
            if (target is null || streams) continue;
            using var budget = CancellationTokenSource.CreateLinkedTokenSource(ct);
            budget.CancelAfter(TimeSpan.FromSeconds(5));
            var scratch = new List<double>();
            for (var i = 0; i < 10 && !budget.IsCancellationRequested; i++)
            {
                var outcome = await SseMeter.SendAsync(client, target, scratch, null, budget.Token).ConfigureAwait(false);
                if (outcome.Ok) continue;
                if (!ct.IsCancellationRequested) Console.Error.WriteLine($"warning: warm-up request to {target} failed: {outcome.Error}");
                break;
            }
        }
    }

    private static string StepLine(string label, StepResult s)
    {
        var parts = new List<string> { label };
        if (s.Gateway is { } g) parts.Add(string.Create(CultureInfo.InvariantCulture, $"gateway {g.RequestsPerSecond:F1} req/s p50 {g.Latency.P50:F2} p99 {g.Latency.P99:F2} ms err {g.Errors}"));
        if (s.Direct is { } d) parts.Add(string.Create(CultureInfo.InvariantCulture, $"direct {d.RequestsPerSecond:F1} req/s p50 {d.Latency.P50:F2} p99 {d.Latency.P99:F2} ms err {d.Errors}"));
        if (!double.IsNaN(s.OverheadP99)) parts.Add(string.Create(CultureInfo.InvariantCulture, $"overhead p50 {s.OverheadP50:F2} p99 {s.OverheadP99:F2} ms"));
        if (s.GatewayProcess is { } f) parts.Add(string.Create(CultureInfo.InvariantCulture, $"cpu {f.CpuMicrosPerRequest:F0} µs/req rss {f.PeakRssBytes / 1048576.0:F1} MB"));
        return string.Join("  |  ", parts);
    }

    internal static string Fmt(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);
}
