using System.Diagnostics;
using System.Net.ServerSentEvents;
using Gateway.Http;
using Gateway.Simulation;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Host;

/// <summary>Stopping the gateway lets in-flight streams finish (up to the drain limit) and refuses new connections.</summary>
public sealed class GracefulShutdownTests
{
    [Fact]
    public async Task Stop_drains_in_flight_streams_to_their_done()
    {
        await using var simulator = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, ItlMs = 50, Tokens = 20 });
        var gateway = new GatewayHost(GatewayFixture.BuildOptions(simulator.BaseUrl));
        await gateway.StartAsync();
        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = new Uri($"http://127.0.0.1:{gateway.Port}") };

        async Task<List<string>> StreamAsync()
        {
            using var request = GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"stream\":true,\"messages\":[]}");
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            var events = new List<string>();
            await foreach (var item in SseParser.Create(await response.Content.ReadAsStreamAsync()).EnumerateAsync()) events.Add(item.Data);
            return events;
        }

        var streams = Enumerable.Range(0, 5).Select(_ => StreamAsync()).ToArray();
        // Every stream is under way (20 tokens × 50 ms ≈ 1 s each) once the upstream has them all.
        var wait = Stopwatch.StartNew();
        while (simulator.RequestCount < 5 && wait.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(10);
        Assert.Equal(5, simulator.RequestCount);
        var clock = Stopwatch.StartNew();
        using var drain = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await gateway.StopAsync(drain.Token);
        clock.Stop();

        foreach (var events in await Task.WhenAll(streams)) Assert.Equal("[DONE]", events[^1]);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(9), $"drain took {clock.Elapsed}");
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => new HttpClient().GetAsync($"http://127.0.0.1:{gateway.Port}/health"));
        await gateway.DisposeAsync();
    }
}
