using System.Diagnostics;
using System.Net;
using Gateway.Config;
using Gateway.Http;
using Gateway.IntegrationTests.Fixtures;
using Gateway.Simulation;
using Gateway.Testing;
using Xunit.Abstractions;

namespace Gateway.IntegrationTests.Routing;

/// <summary><c>lb = "p2c"</c>: requests in flight steer traffic away from a slow backend; the counts return to zero whatever happened.</summary>
[Collection(HeavyCollection.Name)]
public sealed class LoadBalancingTests(ITestOutputHelper output)
{
    private static async Task<(GatewayHost, HttpClient)> Gateway(BalancerKind lb, params VllmSimulator[] sims)
    {
        var options = GatewayFixture.BuildOptions(sims[0].BaseUrl) with
        {
            Models = [new ModelConfig { Name = "qwen", ModelId = GatewayFixture.ModelId, Lb = lb, Backends = sims.Select(s => new BackendConfig { Url = s.BaseUrl }).ToList() }],
        };
        var gateway = new GatewayHost(options, logSink: Stream.Null);
        await gateway.StartAsync();
        return (gateway, new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{gateway.Port}"), Timeout = TimeSpan.FromSeconds(60) });
    }

    private static async Task<HttpStatusCode> Chat(HttpClient client)
    {
        using var response = await client.SendAsync(GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"messages\":[]}"));
        await response.Content.ReadAsByteArrayAsync();
        return response.StatusCode;
    }

    [Fact]
    public async Task P2c_sends_most_traffic_to_the_fast_backend()
    {
        await using var fast = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0 });
        await using var slow = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, TtftMs = 1000 });
        var (gateway, client) = await Gateway(BalancerKind.LeastOutstanding, fast, slow);
        await using var _ = gateway;
        using var __ = client;

        // 8 clients, 200 requests. Round robin would give the slow backend exactly half; least-outstanding lets it hold about half
        // of what is in flight, and those requests take a second each while the fast backend turns its over in milliseconds.
        int errors = 0;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            for (int i = 0; i < 25; i++)
                if (await Chat(client) != HttpStatusCode.OK) Interlocked.Increment(ref errors);
        }));
        output.WriteLine($"fast served {fast.RequestCount}, slow served {slow.RequestCount}");
        Assert.Equal(0, errors);
        Assert.Equal(200, fast.RequestCount + slow.RequestCount);
        Assert.True(fast.RequestCount >= 150, $"fast served {fast.RequestCount} of 200");
        Assert.Equal(0, await Settled(gateway.Health.LoadFor(fast.BaseUrl)));
        Assert.Equal(0, await Settled(gateway.Health.LoadFor(slow.BaseUrl)));
    }

    [Fact]
    public async Task A_stream_counts_as_in_flight_until_it_ends_also_when_the_client_leaves()
    {
        await using var sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, ItlMs = 50, Tokens = 400 });
        var (gateway, client) = await Gateway(BalancerKind.LeastOutstanding, sim);
        await using var _ = gateway;
        using var __ = client;
        var load = gateway.Health.LoadFor(sim.BaseUrl);

        using (var response = await client.SendAsync(GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"stream\":true,\"messages\":[]}"),
                   HttpCompletionOption.ResponseHeadersRead))
        {
            var stream = await response.Content.ReadAsStreamAsync();
            Assert.True(await stream.ReadAsync(new byte[256]) > 0);
            Assert.Equal(1, load.Outstanding); // headers and a first event are through: the stream is still in flight
        } // the client leaves mid-stream

        Assert.Equal(0, await Settled(load));

        // Completed streams, errors and refusals release their count too.
        sim.Options.Tokens = 3;
        sim.Options.ItlMs = 0;
        using (var done = await client.SendAsync(GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"stream\":true,\"messages\":[]}")))
            Assert.EndsWith("data: [DONE]\n\n", await done.Content.ReadAsStringAsync());
        sim.Options.FailRate = 1;
        Assert.Equal(HttpStatusCode.InternalServerError, await Chat(client));
        Assert.Equal(0, await Settled(load));
    }

    /// <summary>The count once step 11 ran: the client may see the end of a response just before the gateway's finally does.</summary>
    private static async Task<int> Settled(Gateway.Routing.BackendLoad load)
    {
        var wait = Stopwatch.StartNew();
        while (load.Outstanding != 0 && wait.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(20);
        return load.Outstanding;
    }
}
