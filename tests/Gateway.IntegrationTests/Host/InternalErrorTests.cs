using System.Net;
using System.Text;
using System.Text.Json;
using Gateway.Http;
using Gateway.Limits;
using Gateway.Observability;
using Gateway.Proxy;
using Gateway.Routing;
using Gateway.Simulation;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Host;

/// <summary>
/// A bug inside the request path (here: a limiter that throws) is answered with an OpenAI-shaped 500 by the proxy handler itself,
/// logged with status 500, and the connection and the process stay usable.
/// </summary>
public sealed class InternalErrorTests
{
    private sealed class ThrowingLimiter : IRateLimiter
    {
        public int Calls;
        public ValueTask<RateDecision> CheckAsync(RateRequest request, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Calls);
            throw new InvalidOperationException("limiter bug");
        }

        public ValueTask<RateDecision> PeekAsync(RateRequest request, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(default(RateDecision) with { Allowed = true });

        public void ChargeTokens(in RateRequest request, long tokens) { }
    }

    [Fact]
    public async Task An_exception_in_the_proxy_path_is_an_openai_500_and_the_server_stays_up()
    {
        await using var simulator = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0 });
        var options = GatewayFixture.BuildOptions(simulator.BaseUrl) with { DefaultRpm = 100 }; // limited keys: the limiter is called
        var snapshots = new SnapshotHolder();
        var snapshot = Snapshot.FromConfig(options);
        using var upstream = new UpstreamClient(options.Proxy);
        upstream.Attach(snapshot);
        snapshots.Swap(snapshot);
        var metrics = new GatewayMetrics();
        metrics.Attach(snapshot);
        var logSink = new MemoryStream();
        var log = new GatewayLog("info", "json", new NonClosingStream(logSink));
        var limiter = new ThrowingLimiter();
        var application = new GatewayApplication(snapshots, new ProxyHandler(snapshots, upstream, limiter, options, metrics, log), metrics, log);
        await using var server = new HttpServer(new IPEndPoint(IPAddress.Loopback, 0));
        await server.StartAsync(application, CancellationToken.None);
        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = new Uri($"http://127.0.0.1:{server.Port}") };

        for (int i = 0; i < 2; i++) // twice on one keep-alive connection: the first did not break it
        {
            using var response = await client.SendAsync(GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"messages\":[]}"));
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var error = body.RootElement.GetProperty("error");
            Assert.Equal("server_error", error.GetProperty("type").GetString());
            Assert.Equal("internal_error", error.GetProperty("code").GetString());
            Assert.DoesNotContain("limiter bug", error.GetProperty("message").GetString()); // no internals leak
        }
        Assert.Equal(2, limiter.Calls);
        Assert.Equal(0L, simulator.RequestCount); // nothing went upstream

        using (var health = await client.GetAsync("/health")) Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        await log.DisposeAsync(); // flushes
        var lines = Encoding.UTF8.GetString(logSink.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => l.Contains("\"msg\":\"request\"")).ToList();
        Assert.Equal(2, lines.Count);
        Assert.All(lines, l => Assert.Contains("\"status\":500", l));
    }

    /// <summary>Keeps the captured log readable after the log disposes its sink.</summary>
    private sealed class NonClosingStream(Stream inner) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) { lock (inner) inner.Write(buffer, offset, count); }
        public override void Write(ReadOnlySpan<byte> buffer) { lock (inner) inner.Write(buffer); }
    }
}
