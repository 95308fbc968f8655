using System.Text.Json;
using System.Xml.Linq;

namespace Gateway.Load.Tests;

public sealed class ReportTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    private static RunReport Report(string profile = "sweep", params StepResult[] steps) => new()
    {
        Profile = profile, LoadKind = profile == "streams" ? "streams" : "concurrency", CommandLine = "gateway-load --profile sweep <&>",
        StartedAt = DateTimeOffset.UnixEpoch, SloMs = 5, Steps = steps, Knee = Knee.Find(steps, 5), StopReason = "all steps done",
    };

    [Fact]
    public void Svg_is_well_formed_xml_with_one_polyline_per_series()
    {
        var svg = SvgPlot.Render("A <title> & \"quotes\"", "x", "y", [1, 4, 16],
        [
            new Series("one", "#000", [1, 2, 3]),
            new Series("with gap", "#f00", [double.NaN, 5, double.PositiveInfinity], Dashed: true),
        ]);
        var doc = XDocument.Parse(svg);
        Assert.Equal(Svg + "svg", doc.Root!.Name);
        Assert.Equal(2, doc.Descendants(Svg + "polyline").Count());
        Assert.Contains(doc.Descendants(Svg + "text"), t => t.Value == "A <title> & \"quotes\"");
        // Only the finite points are drawn.
        Assert.Equal(4, doc.Descendants(Svg + "circle").Count());
    }

    [Fact]
    public void Svg_copes_with_one_step_and_no_data()
    {
        XDocument.Parse(SvgPlot.Render("t", "x", "y", [8], [new Series("s", "#000", [double.NaN])]));
        XDocument.Parse(SvgPlot.Render("t", "x", "y", [], []));
    }

    [Theory]
    [InlineData(0.7, 1)]
    [InlineData(1, 1)]
    [InlineData(1.3, 2)]
    [InlineData(3, 5)]
    [InlineData(57, 100)]
    public void Y_axis_tops_out_at_a_round_number(double max, double expected) => Assert.Equal(expected, SvgPlot.NiceCeiling(max), 10);

    [Fact]
    public void Every_plot_of_a_sweep_and_a_streams_run_parses()
    {
        var sweep = Report("sweep", KneeTests.Step(1, 1), KneeTests.Step(4, 7));
        var names = ReportWriter.Plots(sweep).Select(p => { XDocument.Parse(p.Svg); return p.Name; }).ToList();
        Assert.Equal(["latency.svg", "overhead.svg", "rss.svg"], names);
        var streams = Report("streams", new StepResult { Load = 100, LoadKind = "streams", Gateway = KneeTests.Target("gateway", 1, 2) });
        Assert.Equal(["rss.svg"], ReportWriter.Plots(streams).Select(p => { XDocument.Parse(p.Svg); return p.Name; }));
    }

    [Fact]
    public void Json_report_parses_and_writes_missing_figures_as_null()
    {
        var report = Report("sweep", KneeTests.Step(1, 1), new StepResult { Load = 4, LoadKind = "concurrency", Gateway = KneeTests.Target("gateway", 1, 2) });
        using var doc = JsonDocument.Parse(ReportWriter.Json(report));
        var steps = doc.RootElement.GetProperty("steps");
        Assert.Equal(2, steps.GetArrayLength());
        Assert.Equal(1, steps[0].GetProperty("overhead_p99_ms").GetDouble(), 6);
        Assert.Equal(JsonValueKind.Null, steps[1].GetProperty("overhead_p99_ms").ValueKind);
        Assert.Equal(JsonValueKind.Null, steps[1].GetProperty("direct").ValueKind);
        Assert.Equal(1, doc.RootElement.GetProperty("knee").GetDouble());
    }

    [Fact]
    public void Markdown_has_a_row_per_target_and_step_and_names_the_knee()
    {
        var md = ReportWriter.Markdown(Report("sweep", KneeTests.Step(1, 1), KneeTests.Step(4, 7)));
        Assert.Contains("| 1 | gateway |", md);
        Assert.Contains("| 4 | direct |", md);
        Assert.Contains("**concurrency 1**", md);
    }

    [Fact]
    public void Report_files_are_written()
    {
        var dir = Directory.CreateTempSubdirectory("load-report-test-").FullName;
        try
        {
            var files = ReportWriter.WriteAll(Report("sweep", KneeTests.Step(1, 1)), dir);
            Assert.Equal(5, files.Count);
            Assert.All(files, f => Assert.True(new FileInfo(f).Length > 0));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Marginal_rss_per_stream_is_the_growth_between_steps()
    {
        static StepResult At(double streams, long peakMb) => new()
        {
            Load = streams, LoadKind = "streams", Gateway = KneeTests.Target("gateway", 1, 2),
            GatewayProcess = new ProcessFigures(0, 0, peakMb << 20, peakMb << 20),
        };
        Assert.Equal(8.0 * 1048576 / 125, ReportWriter.MarginalRssPerStream(At(250, 50), At(375, 58))!.Value, 6);
        Assert.Null(ReportWriter.MarginalRssPerStream(null, At(125, 30)));
        var md = ReportWriter.Markdown(Report("streams", At(125, 30), At(250, 40)));
        Assert.Contains("| 250 |", md);
        Assert.Contains("81.9", md); // 10 MiB / 125 streams = 81.92 KiB
    }
}
