using System.Diagnostics;
using Gateway.Simulation;

namespace Gateway.Load.Tests;

/// <summary>Tiny real runs against the in-process simulator (as the direct target): every run must end by itself at its bounds.</summary>
public sealed class BoundedRunTests : IAsyncLifetime
{
    private VllmSimulator _simulator = null!;

    public async Task InitializeAsync() => _simulator = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0 });

    public async Task DisposeAsync() => await _simulator.DisposeAsync();

    private LoadOptions Options(params string[] extra)
    {
        string[] args = ["--direct", _simulator.BaseUrl, "--direct-model", "Qwen/Qwen2.5-7B-Instruct", "--quiet", .. extra];
        Assert.Null(LoadOptions.Parse(args, out var o));
        return o;
    }

    [Fact]
    public async Task A_fixed_run_stops_at_its_duration_and_measures_streams()
    {
        var clock = Stopwatch.StartNew();
        var report = await LoadRun.RunAsync(Options("--profile", "fixed", "--concurrency", "2", "--duration", "1"), "test", CancellationToken.None);
        Assert.InRange(clock.Elapsed.TotalSeconds, 1, 8);
        var d = Assert.Single(report.Steps).Direct!;
        Assert.True(d.Completed > 0);
        Assert.Equal(0, d.Errors);
        Assert.True(d.Ttft.Count == d.Completed, "every streamed answer has a first token");
        Assert.True(d.Itl.Count > 0, "16-token answers have inter-token gaps");
        Assert.Null(report.Steps[0].Gateway);
        Assert.Equal("all steps done", report.StopReason);
    }

    [Fact]
    public async Task A_run_stops_at_max_requests_before_its_duration()
    {
        var clock = Stopwatch.StartNew();
        var report = await LoadRun.RunAsync(Options("--concurrency", "4", "--duration", "60", "--max-requests", "25"), "test", CancellationToken.None);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20));
        Assert.Equal(25, report.Steps[0].Direct!.Completed);
    }

    [Fact]
    public async Task A_rate_run_sends_about_rate_times_duration()
    {
        var report = await LoadRun.RunAsync(Options("--profile", "rate", "--rate", "40", "--duration", "1.5", "--stream", "false"), "test", CancellationToken.None);
        var d = report.Steps[0].Direct!;
        // Poisson with mean 60 arrivals: far outside 20..120 would mean the schedule is wrong.
        Assert.InRange(d.Completed, 20, 120);
        Assert.Equal(0, d.Ttft.Count); // not streamed: no TTFT
    }

    [Fact]
    public async Task A_sweep_stops_at_the_overall_cap()
    {
        var clock = Stopwatch.StartNew();
        var report = await LoadRun.RunAsync(Options("--profile", "sweep", "--steps", "1,2,3,4,5,6", "--duration", "1", "--max-total", "2.5"), "test", CancellationToken.None);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
        Assert.InRange(report.Steps.Count, 1, 3);
        Assert.Contains("overall cap", report.StopReason);
    }

    [Fact]
    public async Task A_target_that_never_answers_is_cut_off_after_duration_plus_grace()
    {
        _simulator.Options.TtftMs = 120_000;
        var clock = Stopwatch.StartNew();
        var report = await LoadRun.RunAsync(Options("--concurrency", "2", "--duration", "1", "--grace", "1"), "test", CancellationToken.None);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
        var d = report.Steps[0].Direct!;
        Assert.Equal(0, d.Completed);
        Assert.True(d.Errors >= 2);
    }

    [Fact]
    public async Task Program_writes_the_report_files()
    {
        var dir = Directory.CreateTempSubdirectory("load-run-test-").FullName;
        try
        {
            var o = Options("--profile", "sweep", "--steps", "1,2", "--duration", "0.5", "--out", dir);
            Assert.Equal(0, await Program.RunAsync(o, "test", CancellationToken.None));
            Assert.True(File.Exists(Path.Combine(dir, "report.md")));
            Assert.True(File.Exists(Path.Combine(dir, "report.json")));
            Assert.True(File.Exists(Path.Combine(dir, "latency.svg")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
