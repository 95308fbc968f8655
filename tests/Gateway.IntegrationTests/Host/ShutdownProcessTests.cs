using System.Diagnostics;
using System.Net.ServerSentEvents;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Gateway.IntegrationTests.Storage;
using Gateway.IntegrationTests.Fixtures;
using Gateway.Simulation;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Host;

/// <summary>
/// SIGTERM to a real <c>gateway serve</c> process (the built gateway.dll) with 20 streams open: streams that fit in
/// server.shutdown_timeout end with [DONE]; streams that do not end with a shutting_down error event, none cut silently; exit 0.
/// </summary>
[Collection(HeavyCollection.Name)]
public sealed class ShutdownProcessTests : IDisposable
{
    private const int Streams = 20;
    private readonly string _dir = LocalProcess.CreateTempDirectory("gw-term", traversableByOthers: false);

    public void Dispose() => LocalProcess.TryDeleteDirectory(_dir);

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private const int SigTerm = 15;

    private sealed record StreamResult(List<string> Events, Exception? Cut);

    [Fact]
    public async Task Streams_that_fit_in_the_drain_time_all_finish_with_done()
    {
        // 40 tokens 50 ms apart: ~2 s per stream, well inside 30 s.
        var (results, exitCode, stoppedAfter, output) = await RunAsync(itlMs: 50, tokens: 40, shutdownTimeout: "30s");
        Assert.True(exitCode == 0, $"exit {exitCode}\n{output}");
        foreach (var r in results)
        {
            Assert.True(r.Cut is null, $"a stream was cut: {r.Cut}\n{output}");
            Assert.Equal("[DONE]", r.Events[^1]);
            Assert.Equal(42, r.Events.Count); // role, 40 tokens, [DONE]
        }
        Assert.True(stoppedAfter < TimeSpan.FromSeconds(25), $"the drain waited {stoppedAfter} for streams of ~2 s");
    }

    [Fact]
    public async Task Streams_still_open_when_the_drain_time_runs_out_end_with_an_error_event()
    {
        // 2000 tokens 100 ms apart: minutes per stream, against a 2 s drain.
        var (results, exitCode, stoppedAfter, output) = await RunAsync(itlMs: 100, tokens: 2000, shutdownTimeout: "2s");
        Assert.True(exitCode == 0, $"exit {exitCode}\n{output}");
        foreach (var r in results)
        {
            Assert.True(r.Cut is null, $"a stream was cut without an error event: {r.Cut}\n{output}");
            Assert.DoesNotContain("[DONE]", r.Events);
            Assert.True(r.Events.Count >= 2, string.Join(" | ", r.Events)); // some tokens, then the error
            using var last = JsonDocument.Parse(r.Events[^1]);
            var error = last.RootElement.GetProperty("error");
            Assert.Equal("shutting_down", error.GetProperty("code").GetString());
            Assert.Equal("server_error", error.GetProperty("type").GetString());
            Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);
        }
        Assert.True(stoppedAfter > TimeSpan.FromSeconds(1.5) && stoppedAfter < TimeSpan.FromSeconds(20), $"stopped after {stoppedAfter}");
    }

    private async Task<(StreamResult[] Results, int ExitCode, TimeSpan StoppedAfter, string Output)> RunAsync(int itlMs, int tokens, string shutdownTimeout)
    {
        await using var sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, ItlMs = itlMs, Tokens = tokens });
        int port = LocalProcess.FreePort();
        var config = Path.Combine(_dir, "gateway.toml");
        File.WriteAllText(config, $$"""
            [server]
            host = "127.0.0.1"
            port = {{port}}
            shutdown_timeout = "{{shutdownTimeout}}"
            [health_check]
            interval = "0s"
            [rate_limits]
            default_rpm = 0
            default_tpm = 0
            [logging]
            level = "warn"
            [storage]
            data_dir = "{{Path.Combine(_dir, "data")}}"
            [[models]]
            name = "qwen"
            model_id = "{{GatewayFixture.ModelId}}"
              [[models.backends]]
              url = "{{sim.BaseUrl}}"
            [[keys]]
            name = "test"
            key = "{{GatewayFixture.Key}}"
            """);

        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _dir };
        foreach (var a in new[] { CliTests.GatewayDll(), "serve", config }) psi.ArgumentList.Add(a);
        var output = new StringBuilder();
        using var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        string Output() { lock (output) return output.ToString(); }
        try
        {
            using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromMinutes(2) };
            await WaitUntilUpAsync(client, process, Output);

            var started = Enumerable.Range(0, Streams).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
            var streams = started.Select(s => StreamAsync(client, s)).ToArray();
            await Task.WhenAll(started.Select(s => s.Task)).WaitAsync(TimeSpan.FromSeconds(60)); // every stream has its first event

            Assert.Equal(0, Kill(process.Id, SigTerm));
            var clock = Stopwatch.StartNew();
            var results = await Task.WhenAll(streams).WaitAsync(TimeSpan.FromSeconds(60));
            using var exited = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await process.WaitForExitAsync(exited.Token);
            return (results, process.ExitCode, clock.Elapsed, Output());
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }

    private static async Task WaitUntilUpAsync(HttpClient client, Process process, Func<string> output)
    {
        var wait = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited) throw new InvalidOperationException($"the gateway exited ({process.ExitCode}) before answering:\n{output()}");
            try
            {
                using var health = await client.GetAsync("/health");
                if (health.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            if (wait.Elapsed > TimeSpan.FromSeconds(60)) throw new TimeoutException($"the gateway did not answer /health in 60 s:\n{output()}");
            await Task.Delay(100);
        }
    }

    private static async Task<StreamResult> StreamAsync(HttpClient client, TaskCompletionSource started)
    {
        var events = new List<string>();
        try
        {
            using var request = GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"stream\":true,\"messages\":[]}");
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            response.EnsureSuccessStatusCode();
            await foreach (var item in SseParser.Create(await response.Content.ReadAsStreamAsync()).EnumerateAsync())
            {
                events.Add(item.Data);
                started.TrySetResult();
            }
            return new StreamResult(events, null);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            started.TrySetResult();
            return new StreamResult(events, e);
        }
    }
}
