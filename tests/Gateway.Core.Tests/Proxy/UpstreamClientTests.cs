using System.Net.ServerSentEvents;
using System.Text;
using Gateway.Config;
using Gateway.Proxy;
using Gateway.Simulation;

namespace Gateway.Tests.Proxy;

/// <summary>The upstream pool must never keep an abandoned stream alive: vLLM stops generating only when its socket closes.</summary>
public sealed class UpstreamClientTests : IAsyncLifetime
{
    private VllmSimulator _sim = null!;

    public async Task InitializeAsync() =>
        // Short enough (50 × 10 ms, ~15 KB) that a draining pool would read it to its end within SocketsHttpHandler's default limits.
        _sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Tokens = 50, ItlMs = 10 });

    public async Task DisposeAsync() => await _sim.DisposeAsync();

    [Fact]
    public async Task A_response_disposed_mid_stream_without_a_pending_read_closes_its_connection()
    {
        // The relay finds a gone client on a flush, not only on a cancelled read: then disposing the unread response is what must
        // close the upstream socket. A pool that drained it to reuse the connection would let the simulator finish the stream.
        using var upstream = new UpstreamClient(new ProxyOptions());
        using (var request = new HttpRequestMessage(HttpMethod.Post, $"{_sim.BaseUrl}/v1/completions")
        {
            Content = new StringContent("""{"prompt":"x","stream":true}""", Encoding.UTF8, "application/json"),
        })
        using (var response = await upstream.Invoker.SendAsync(request, CancellationToken.None))
        {
            var body = await response.Content.ReadAsStreamAsync();
            using var stuck = new CancellationTokenSource(TimeSpan.FromSeconds(30)); // a broken stream fails the test, never hangs it
            await using var events = SseParser.Create(body).EnumerateAsync(stuck.Token).GetAsyncEnumerator();
            for (int i = 0; i < 3; i++) Assert.True(await events.MoveNextAsync());
        }

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (_sim.CancelledStreams == 0 && _sim.StatsFor(_sim.Options.Models[0]).Success == 0 && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.Equal(0, _sim.StatsFor(_sim.Options.Models[0]).Success);
        Assert.Equal(1, _sim.CancelledStreams);
    }
}
