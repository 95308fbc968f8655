using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Gateway.Load;

/// <summary>report.md, report.json and the SVG plots of one run.</summary>
internal static class ReportWriter
{
    public static IReadOnlyList<string> WriteAll(RunReport report, string outDir)
    {
        Directory.CreateDirectory(outDir);
        var files = new List<string>();
        void Write(string name, string text)
        {
            var path = Path.Combine(outDir, name);
            File.WriteAllText(path, text);
            files.Add(path);
        }
        Write("report.md", Markdown(report));
        Write("report.json", Json(report));
        foreach (var (name, svg) in Plots(report)) Write(name, svg);
        return files;
    }

    // ---- Markdown ----------------------------------------------------------------------------------------------------------

    public static string Markdown(RunReport r)
    {
        var sb = new StringBuilder();
        sb.Append("# Load report: ").Append(r.Profile).Append(" profile\n\n");
        sb.Append("- command: `").Append(r.CommandLine).Append("`\n");
        sb.Append(Inv($"- started {r.StartedAt:yyyy-MM-dd HH:mm:ss} UTC on {r.Machine}; {r.DurationSeconds} s per target and step; {(r.Stream ? "streaming" : "non-streaming")}\n"));
        sb.Append("- gateway: ").Append(r.GatewayUrl ?? "–").Append("; direct (baseline): ").Append(r.DirectUrl ?? "–").Append("; upstream: ").Append(r.Upstream).Append('\n');
        sb.Append("- stopped: ").Append(r.StopReason).Append('\n');
        if (r.Profile == "streams") sb.Append("- knee: not applicable (the streams profile has no direct baseline; it measures memory per open stream)\n\n");
        else sb.Append(Inv($"- knee (highest load whose p99 added overhead stays under {r.SloMs} ms, errors ≤ 1 %): "))
          .Append(r.Knee is { } k ? Inv($"**{r.LoadKind} {LoadRun.Fmt(k.Load)}** (p99 overhead {k.OverheadP99:F2} ms)") : "none (the first step already breaches, or no baseline)")
          .Append("\n\n");

        if (r.Profile == "streams")
        {
            sb.Append("| streams | peak open at once | ok | errors | gateway RSS peak (MB) | RSS per stream (KB) | marginal RSS per stream (KB) | TTFT p50 / p99 (ms) | ITL p50 / p99 (ms) | gateway CPU s |\n");
            sb.Append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            StepResult? previous = null;
            foreach (var s in r.Steps)
            {
                var g = s.Gateway;
                var marginal = MarginalRssPerStream(previous, s);
                previous = s;
                sb.Append(Inv($"| {LoadRun.Fmt(s.Load)} | {g?.PeakOpenStreams} | {g?.Completed} | {g?.Errors} | {Mb(s.GatewayProcess?.PeakRssBytes)} | {Kb(s.RssPerStreamBytes)} | {Kb(marginal)} | {F(g?.Ttft.P50)} / {F(g?.Ttft.P99)} | {F(g?.Itl.P50)} / {F(g?.Itl.P99)} | {F(s.GatewayProcess?.CpuSeconds)} |\n"));
            }
            sb.Append(Inv($"\nIdle gateway RSS before the first step: {Mb(r.IdleRssBytes)} MB. RSS per stream = (peak RSS during the step − idle RSS) / streams; "))
              .Append("it includes fixed costs that do not grow with streams (thread pool, GC heap sizing). Marginal = peak RSS growth from the previous step / streams added.\n");
        }
        else
        {
            sb.Append(Inv($"| {r.LoadKind} | target | req/s | errors | latency p50 / p90 / p99 (ms) | TTFT p50 / p99 (ms) | ITL p50 / p99 (ms) | overhead p50 / p99 (ms) | gateway CPU µs/req | gateway RSS (MB) |\n"));
            sb.Append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            foreach (var s in r.Steps)
            {
                if (s.Gateway is { } g)
                    sb.Append(Inv($"| {LoadRun.Fmt(s.Load)} | gateway | {g.RequestsPerSecond:F1} | {Errors(g)} | {F(g.Latency.P50)} / {F(g.Latency.P90)} / {F(g.Latency.P99)} | {F(g.Ttft.P50)} / {F(g.Ttft.P99)} | {F(g.Itl.P50)} / {F(g.Itl.P99)} | {F(s.OverheadP50)} / {F(s.OverheadP99)} | {F(s.GatewayProcess?.CpuMicrosPerRequest, "F0")} | {Mb(s.GatewayProcess?.PeakRssBytes)} |\n"));
                if (s.Direct is { } d)
                    sb.Append(Inv($"| {LoadRun.Fmt(s.Load)} | direct | {d.RequestsPerSecond:F1} | {Errors(d)} | {F(d.Latency.P50)} / {F(d.Latency.P90)} / {F(d.Latency.P99)} | {F(d.Ttft.P50)} / {F(d.Ttft.P99)} | {F(d.Itl.P50)} / {F(d.Itl.P99)} | | | |\n"));
            }
            sb.Append("\nOverhead = gateway − direct latency at the same percentile, same step settings, measured back to back (gateway first). ")
              .Append("Percentiles interpolate linearly between closest ranks. CPU µs/req = the gateway process's utime+stime during its half of the step ")
              .Append("divided by the requests it answered or failed; RSS = peak VmRSS sampled every 250 ms. The load tool, the simulator and the gateway share this machine's cores.\n");
        }
        var errors = r.Steps.SelectMany(s => new[] { s.Gateway, s.Direct }).Where(t => t is { ErrorSamples.Count: > 0 }).ToList();
        if (errors.Count > 0)
        {
            sb.Append("\n## Errors\n\n");
            foreach (var t in errors) sb.Append("- ").Append(t!.Target).Append(": ").Append(string.Join("; ", t.ErrorSamples)).Append('\n');
        }
        sb.Append("\nPlots: ");
        sb.Append(string.Join(", ", Plots(r).Select(p => $"![{p.Name}]({p.Name})")));
        sb.Append('\n');
        return sb.ToString();
    }

    /// <summary>(peak RSS − previous step's peak RSS) / (streams − previous streams): what one more stream costs.</summary>
    internal static double? MarginalRssPerStream(StepResult? previous, StepResult current) =>
        previous?.GatewayProcess is { } a && current.GatewayProcess is { } b && current.Load > previous.Load
            ? (b.PeakRssBytes - a.PeakRssBytes) / (current.Load - previous.Load) : null;

    private static string Errors(TargetResult t) => t.Dropped > 0 ? Inv($"{t.Errors} (+{t.Dropped} dropped)") : Inv($"{t.Errors}");
    private static string F(double? v, string format = "F2") => v is { } x && !double.IsNaN(x) ? x.ToString(format, CultureInfo.InvariantCulture) : "–";
    private static string Mb(long? bytes) => bytes is { } b ? (b / 1048576.0).ToString("F1", CultureInfo.InvariantCulture) : "–";
    private static string Kb(double? bytes) => bytes is { } b ? (b / 1024.0).ToString("F1", CultureInfo.InvariantCulture) : "–";
    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    // ---- JSON ---------------------------------------------------------------------------------------------------------------

    public static string Json(RunReport r)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("profile", r.Profile);
            w.WriteString("load_kind", r.LoadKind);
            w.WriteString("command", r.CommandLine);
            w.WriteString("started_at", r.StartedAt);
            w.WriteString("machine", r.Machine);
            w.WriteString("gateway_url", r.GatewayUrl);
            w.WriteString("direct_url", r.DirectUrl);
            w.WriteString("upstream", r.Upstream);
            w.WriteBoolean("stream", r.Stream);
            w.WriteNumber("duration_s", r.DurationSeconds);
            w.WriteNumber("slo_ms", r.SloMs);
            w.WriteString("stop_reason", r.StopReason);
            Num(w, "idle_rss_bytes", r.IdleRssBytes);
            if (r.Knee is { } k) w.WriteNumber("knee", k.Load); else w.WriteNull("knee");
            w.WriteStartArray("steps");
            foreach (var s in r.Steps)
            {
                w.WriteStartObject();
                w.WriteNumber("load", s.Load);
                Num(w, "overhead_p50_ms", s.OverheadP50);
                Num(w, "overhead_p99_ms", s.OverheadP99);
                Target(w, "gateway", s.Gateway);
                Target(w, "direct", s.Direct);
                if (s.GatewayProcess is { } f)
                {
                    w.WriteStartObject("gateway_process");
                    w.WriteNumber("cpu_us_per_request", Math.Round(f.CpuMicrosPerRequest, 1));
                    w.WriteNumber("cpu_s", Math.Round(f.CpuSeconds, 3));
                    w.WriteNumber("rss_bytes", f.RssBytes);
                    w.WriteNumber("peak_rss_bytes", f.PeakRssBytes);
                    w.WriteEndObject();
                }
                else w.WriteNull("gateway_process");
                Num(w, "rss_per_stream_bytes", s.RssPerStreamBytes);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    private static void Target(Utf8JsonWriter w, string name, TargetResult? t)
    {
        if (t is null) { w.WriteNull(name); return; }
        w.WriteStartObject(name);
        w.WriteNumber("seconds", Math.Round(t.Seconds, 3));
        w.WriteNumber("completed", t.Completed);
        w.WriteNumber("errors", t.Errors);
        w.WriteNumber("dropped", t.Dropped);
        w.WriteNumber("peak_open_streams", t.PeakOpenStreams);
        w.WriteNumber("rps", Math.Round(t.RequestsPerSecond, 2));
        Pct(w, "latency_ms", t.Latency);
        Pct(w, "ttft_ms", t.Ttft);
        Pct(w, "itl_ms", t.Itl);
        w.WriteStartArray("error_samples");
        foreach (var e in t.ErrorSamples) w.WriteStringValue(e);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void Pct(Utf8JsonWriter w, string name, Percentiles p)
    {
        w.WriteStartObject(name);
        w.WriteNumber("count", p.Count);
        Num(w, "p50", p.P50);
        Num(w, "p90", p.P90);
        Num(w, "p99", p.P99);
        w.WriteEndObject();
    }

    /// <summary>JSON has no NaN: missing figures are null.</summary>
    private static void Num(Utf8JsonWriter w, string name, double? v)
    {
        if (v is { } x && !double.IsNaN(x) && !double.IsInfinity(x)) w.WriteNumber(name, Math.Round(x, 3)); else w.WriteNull(name);
    }

    // ---- SVG ----------------------------------------------------------------------------------------------------------------

    public static IEnumerable<(string Name, string Svg)> Plots(RunReport r)
    {
        var xs = r.Steps.Select(s => s.Load).ToList();
        var xLabel = r.LoadKind switch { "rate" => "offered load (req/s)", "streams" => "open streams", _ => "concurrency" };
        double[] Of(Func<StepResult, double?> pick) => [.. r.Steps.Select(s => pick(s) ?? double.NaN)];
        if (r.Profile != "streams")
        {
            yield return ("latency.svg", SvgPlot.Render("Latency vs load", xLabel, "latency (ms)", xs,
            [
                new Series("gateway p50", "#1f77b4", Of(s => s.Gateway?.Latency.P50)),
                new Series("gateway p99", "#1f77b4", Of(s => s.Gateway?.Latency.P99), Dashed: true),
                new Series("direct p50", "#ff7f0e", Of(s => s.Direct?.Latency.P50)),
                new Series("direct p99", "#ff7f0e", Of(s => s.Direct?.Latency.P99), Dashed: true),
            ]));
            yield return ("overhead.svg", SvgPlot.Render("Added overhead (gateway − direct) vs load", xLabel, "overhead (ms)", xs,
            [
                new Series("p50", "#2ca02c", Of(s => s.OverheadP50)),
                new Series("p99", "#d62728", Of(s => s.OverheadP99), Dashed: true),
                new Series(Inv($"SLO {r.SloMs} ms"), "#999999", [.. xs.Select(_ => r.SloMs)], Dashed: true),
            ]));
        }
        yield return ("rss.svg", SvgPlot.Render(r.Profile == "streams" ? "Gateway RSS vs open streams" : "Gateway RSS vs load", xLabel, "RSS (MB)", xs,
        [
            new Series("peak RSS", "#9467bd", Of(s => s.GatewayProcess?.PeakRssBytes / 1048576.0)),
        ]));
    }
}
