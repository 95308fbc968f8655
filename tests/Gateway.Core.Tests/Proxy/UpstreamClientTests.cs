using System.Net.ServerSentEvents;
using System.Text;
using Gateway.Config;
using Gateway.Proxy;
using Gateway.Routing;
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

    private static Snapshot SnapshotWith(params string[] urls) => Snapshot.FromConfig(new GatewayOptions
    {
        Models = [new ModelConfig { Name = "m", ModelId = "m", Backends = urls.Select(u => new BackendConfig { Url = u }).ToArray() }],
    });

    [Fact]
    public void With_sockets_every_backend_goes_through_the_handler()
    {
        using var upstream = new UpstreamClient(new ProxyOptions { UpstreamClient = UpstreamClientKind.Sockets });
        var snapshot = SnapshotWith("http://127.0.0.1:8000");
        upstream.Attach(snapshot);
        Assert.Null(upstream.Http1);
        Assert.Null(upstream.RouteFor(snapshot.Models[0].Backends[0], ProxyEndpoint.ChatCompletions));
    }

    [Fact]
    public void With_http1_http_backends_get_a_route_per_endpoint_resolved_when_attached_and_https_ones_stay_on_the_handler()
    {
        using var upstream = new UpstreamClient(new ProxyOptions { UpstreamClient = UpstreamClientKind.Http1 });
        var snapshot = SnapshotWith("http://127.0.0.1:8000/", "https://vllm.example:8443");
        upstream.Attach(snapshot);
        var (plain, tls) = (snapshot.Models[0].Backends[0], snapshot.Models[0].Backends[1]);
        Assert.NotNull(plain.UpstreamSlot);
        Assert.Equal("http://127.0.0.1:8000/v1/chat/completions", upstream.RouteFor(plain, ProxyEndpoint.ChatCompletions)!.Uri.ToString());
        Assert.Equal("http://127.0.0.1:8000/v1/completions", upstream.RouteFor(plain, ProxyEndpoint.Completions)!.Uri.ToString());
        Assert.Equal("http://127.0.0.1:8000/v1/embeddings", upstream.RouteFor(plain, ProxyEndpoint.Embeddings)!.Uri.ToString());
        Assert.Same(upstream.RouteFor(plain, ProxyEndpoint.ChatCompletions), upstream.RouteFor(plain, ProxyEndpoint.ChatCompletions));
        Assert.Null(upstream.RouteFor(tls, ProxyEndpoint.ChatCompletions));

        // A snapshot nobody attached (or another gateway's routes in the slot) resolves on first use, for this client.
        var unattached = SnapshotWith("http://127.0.0.1:8001").Models[0].Backends[0];
        Assert.Equal("http://127.0.0.1:8001/v1/completions", upstream.RouteFor(unattached, ProxyEndpoint.Completions)!.Uri.ToString());
        using var other = new UpstreamClient(new ProxyOptions { UpstreamClient = UpstreamClientKind.Http1 });
        Assert.NotSame(upstream.RouteFor(plain, ProxyEndpoint.Embeddings), other.RouteFor(plain, ProxyEndpoint.Embeddings));
    }
}
