using System.Net;
using System.Text.Json;
using Gateway.Config;
using Gateway.Http;
using Gateway.Simulation;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Proxy;

/// <summary>
/// A backend that refuses connections costs the client nothing while another backend of the model can take the request, over either
/// upstream client: nothing was sent, so the request goes to the next backend before any byte reached the client.
/// </summary>
public sealed class FailoverTests : IAsyncLifetime
{
    private VllmSimulator _sim = null!;

    public async Task InitializeAsync() => _sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Tokens = 4 });

    public async Task DisposeAsync() => await _sim.DisposeAsync();

    [Theory]
    [InlineData(UpstreamClientKind.Sockets)]
    [InlineData(UpstreamClientKind.Http1)]
    public async Task A_refused_backend_is_failed_over_to_the_next_for_json_and_streams(UpstreamClientKind upstream)
    {
        const string Refused = "http://127.0.0.1:9"; // discard port: nothing listens on loopback
        var options = GatewayFixture.BuildOptions(_sim.BaseUrl) with
        {
            Proxy = new ProxyOptions { UpstreamClient = upstream },
            Models = [new ModelConfig { Name = "qwen", ModelId = GatewayFixture.ModelId, Backends = [new BackendConfig { Url = Refused }, new BackendConfig { Url = _sim.BaseUrl }] }],
        };
        await using var gateway = new GatewayHost(options, logSink: Stream.Null);
        await gateway.StartAsync();
        using var client = GatewayFixture.ClientFor(gateway);

        for (int i = 0; i < 4; i++)
        {
            using (var json = await client.SendAsync(GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"messages\":[]}")))
            {
                Assert.Equal(HttpStatusCode.OK, json.StatusCode);
                using var doc = JsonDocument.Parse(await json.Content.ReadAsStringAsync());
                Assert.Equal("qwen", doc.RootElement.GetProperty("model").GetString());
            }
            using var stream = await client.SendAsync(GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"stream\":true,\"messages\":[]}"));
            Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
            Assert.EndsWith("data: [DONE]\n\n", await stream.Content.ReadAsStringAsync());
        }
        Assert.Equal(8, _sim.RequestCount);

        using var scrape = await client.GetAsync("/metrics");
        var metrics = PrometheusText.Parse(await scrape.Content.ReadAsStringAsync());
        // Smooth round robin over two equal backends picks the refused one for every other request.
        Assert.Equal(4, metrics.Value("gateway_failovers_total", ("model", "qwen")));
        Assert.Equal(4, metrics.Value("gateway_upstream_errors_total", ("model", "qwen"), ("backend_url", Refused), ("kind", "connect")));
    }
}
