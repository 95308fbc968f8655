using System.Net;
using Gateway.Config;
using Gateway.Http;
using Gateway.Simulation;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Proxy;

/// <summary>
/// <c>proxy.pass_through_headers</c>: the configured client headers reach the backend as they are, over either upstream client;
/// nothing else does (never the client's Authorization).
/// </summary>
public sealed class PassThroughHeaderTests : IAsyncLifetime
{
    private VllmSimulator _sim = null!;

    public async Task InitializeAsync() => _sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Tokens = 4 });

    public async Task DisposeAsync() => await _sim.DisposeAsync();

    [Theory]
    [InlineData(UpstreamClientKind.Sockets, false)]
    [InlineData(UpstreamClientKind.Http1, false)]
    [InlineData(UpstreamClientKind.Sockets, true)]
    [InlineData(UpstreamClientKind.Http1, true)]
    public async Task Configured_headers_are_forwarded_and_nothing_else(UpstreamClientKind upstream, bool stream)
    {
        var options = GatewayFixture.BuildOptions(_sim.BaseUrl) with
        {
            Proxy = new ProxyOptions { UpstreamClient = upstream, PassThroughHeaders = ["X-Tenant", "traceparent", "X-Absent"] },
        };
        await using var gateway = new GatewayHost(options, logSink: Stream.Null);
        await gateway.StartAsync();
        using var client = GatewayFixture.ClientFor(gateway);

        var request = GatewayFixture.CreatePost("/v1/chat/completions", $$"""{"model":"qwen","messages":[],"stream":{{(stream ? "true" : "false")}}}""");
        request.Headers.TryAddWithoutValidation("X-Tenant", "acme-42");
        request.Headers.TryAddWithoutValidation("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        request.Headers.TryAddWithoutValidation("X-Other", "not configured");
        using (var response = await client.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await response.Content.ReadAsStringAsync();
        }

        var headers = Assert.Single(_sim.Captured).Headers;
        Assert.Equal("acme-42", headers["x-tenant"]);
        Assert.Equal("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", headers["traceparent"]);
        Assert.False(headers.ContainsKey("x-absent"));
        Assert.False(headers.ContainsKey("x-other"));
        Assert.False(headers.ContainsKey("authorization"));

        // A tab inside a value is legal HTTP and goes through as it is. (Control bytes and non-ASCII never get this far: Kestrel
        // refuses such a request line with 400 before the gateway sees it.)
        var tabbed = GatewayFixture.CreatePost("/v1/chat/completions", """{"model":"qwen","messages":[]}""");
        tabbed.Headers.TryAddWithoutValidation("X-Tenant", "a\tb");
        using (var response = await client.SendAsync(tabbed))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        Assert.Equal("a\tb", _sim.Captured[^1].Headers["x-tenant"]);
    }
}
