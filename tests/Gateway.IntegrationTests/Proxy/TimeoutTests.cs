using System.Diagnostics;
using System.Net;
using System.Net.ServerSentEvents;
using System.Net.Sockets;
using System.Text.Json;
using Gateway.Config;
using Gateway.Http;
using Gateway.Simulation;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Proxy;

/// <summary>
/// proxy.first_byte_timeout and proxy.stream_idle_timeout against a slow simulator: a 504 while nothing reached the client, an error
/// event and no [DONE] once the stream started; over both upstream clients. Bounds are generous (a loaded machine); timing targets
/// live in benchmarks.
/// </summary>
public sealed class TimeoutTests : IAsyncLifetime
{
    private VllmSimulator _sim = null!;
    private GatewayHost? _gateway;
    private HttpClient? _client;

    public async Task InitializeAsync() => _sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0 });

    public async Task DisposeAsync()
    {
        _client?.Dispose();
        if (_gateway is not null) await _gateway.DisposeAsync();
        await _sim.DisposeAsync();
    }

    private async Task<HttpClient> Gateway(UpstreamClientKind upstream, TimeSpan firstByte, TimeSpan idle, bool healthChecks = false, TimeSpan? connect = null,
        string[]? backends = null)
    {
        var options = GatewayFixture.BuildOptions(_sim.BaseUrl) with
        {
            Proxy = new ProxyOptions
            {
                FirstByteTimeout = firstByte, StreamIdleTimeout = idle, PassiveFailureThreshold = 1, ConnectTimeout = connect ?? TimeSpan.FromSeconds(5),
                UpstreamClient = upstream,
            },
            Models = [new ModelConfig { Name = "qwen", ModelId = GatewayFixture.ModelId, Backends = (backends ?? [_sim.BaseUrl]).Select(u => new BackendConfig { Url = u }).ToList() }],
            // Checks on but rare: the first round marks the backend healthy, then only passive marks move it within a test.
            HealthCheck = healthChecks
                ? new HealthCheckOptions { Interval = TimeSpan.FromHours(1), HealthyThreshold = 3 }
                : new HealthCheckOptions { Interval = TimeSpan.Zero },
        };
        _gateway = new GatewayHost(options, logSink: Stream.Null);
        await _gateway.StartAsync();
        return _client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_gateway.Port}"), Timeout = TimeSpan.FromSeconds(60) };
    }

    private static async Task<(List<string> Events, TimeSpan Elapsed)> ReadStream(HttpClient client)
    {
        var clock = Stopwatch.StartNew();
        using var response = await client.SendAsync(GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"stream\":true,\"messages\":[]}"),
            HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = new List<string>();
        // A cut (no chunked end) would throw here and fail the test: a timeout must end the stream cleanly, with its error event.
        await foreach (var item in SseParser.Create(await response.Content.ReadAsStreamAsync()).EnumerateAsync()) events.Add(item.Data);
        return (events, clock.Elapsed);
    }

    private static void AssertTimeoutEvent(List<string> events)
    {
        Assert.DoesNotContain("[DONE]", events);
        using var doc = JsonDocument.Parse(events[^1]);
        var error = doc.RootElement.GetProperty("error");
        Assert.Equal("backend_timeout", error.GetProperty("code").GetString());
        Assert.Equal("upstream_error", error.GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
    }

    [Theory]
    [InlineData(UpstreamClientKind.Sockets)]
    [InlineData(UpstreamClientKind.Http1)]
    public async Task A_backend_slower_than_the_first_byte_timeout_is_a_504_within_the_timeout_and_a_passive_failure(UpstreamClientKind upstream)
    {
        var client = await Gateway(upstream, firstByte: TimeSpan.FromMilliseconds(500), idle: TimeSpan.FromSeconds(30), healthChecks: true);
        _sim.Options.TtftMs = 10_000; // non-stream: the whole answer, headers included, comes after TTFT
        var clock = Stopwatch.StartNew();
        using var response = await client.SendAsync(GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"messages\":[]}"));
        clock.Stop();
        var error = await BadInputTests.AssertError(response, 504, "backend_timeout", null);
        Assert.Equal("upstream_error", error.GetProperty("type").GetString());
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(450), TimeSpan.FromSeconds(5));
        Assert.Equal(1, _sim.RequestCount); // not retried
        Assert.False(_gateway!.Health.For(GatewayFixture.ModelId, _sim.BaseUrl).Healthy);
    }

    [Theory]
    [InlineData(UpstreamClientKind.Sockets)]
    [InlineData(UpstreamClientKind.Http1)]
    public async Task A_stream_that_stalls_ends_with_a_timeout_event_no_done_and_the_upstream_is_cancelled(UpstreamClientKind upstream)
    {
        // 10× the simulator's gap: a full test run on 2 cores once stalled a 100 ms gap past a 500 ms limit.
        var client = await Gateway(upstream, firstByte: TimeSpan.FromSeconds(30), idle: TimeSpan.FromSeconds(1));

        // Gaps under the idle limit: the stream completes.
        _sim.Options.ItlMs = 100;
        _sim.Options.Tokens = 8;
        var (events, _) = await ReadStream(client);
        Assert.Equal("[DONE]", events[^1]);

        // The role chunk and the first token come at once, then the upstream goes quiet for 20 s.
        _sim.Options.ItlMs = 20_000;
        _sim.Options.Tokens = 4;
        var cancelledBefore = _sim.CancelledStreams;
        (events, var elapsed) = await ReadStream(client);
        AssertTimeoutEvent(events);
        Assert.Equal(3, events.Count); // role, first token, error
        Assert.InRange(elapsed, TimeSpan.FromMilliseconds(950), TimeSpan.FromSeconds(8));
        var wait = Stopwatch.StartNew();
        while (_sim.CancelledStreams == cancelledBefore && wait.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(20);
        Assert.Equal(cancelledBefore + 1, _sim.CancelledStreams);
    }

    [Theory]
    [InlineData(UpstreamClientKind.Sockets)]
    [InlineData(UpstreamClientKind.Http1)]
    public async Task A_streams_first_event_may_take_the_first_byte_timeout_but_not_longer(UpstreamClientKind upstream)
    {
        // The idle limit leaves room for a stall of up to a second on the loaded test machine (the test projects run in parallel
        // on 2 cores; once, 300 ms was not enough); what matters is that the first event may take longer than it.
        var client = await Gateway(upstream, firstByte: TimeSpan.FromSeconds(3), idle: TimeSpan.FromSeconds(1));

        // vLLM sends a stream's headers at once and its first event after queueing and prefill: longer than the idle limit is fine.
        _sim.Options.TtftMs = 1_500;
        _sim.Options.Tokens = 3;
        var (events, _) = await ReadStream(client);
        Assert.Equal("[DONE]", events[^1]);

        _sim.Options.TtftMs = 20_000;
        (events, var elapsed) = await ReadStream(client);
        AssertTimeoutEvent(events);
        Assert.Single(events);
        Assert.InRange(elapsed, TimeSpan.FromMilliseconds(2900), TimeSpan.FromSeconds(12));
    }

    [Theory]
    [InlineData(UpstreamClientKind.Sockets)]
    [InlineData(UpstreamClientKind.Http1)]
    public async Task A_backend_that_accepts_no_connection_times_out_after_connect_timeout_and_is_failed_over(UpstreamClientKind upstream)
    {
        using var silent = await UnacceptingListener.StartAsync();
        var client = await Gateway(upstream, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30), connect: TimeSpan.FromMilliseconds(500), backends: [silent.Url]);
        var clock = Stopwatch.StartNew();
        using (var response = await client.SendAsync(GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"messages\":[]}")))
        {
            clock.Stop();
            await BadInputTests.AssertError(response, 504, "backend_timeout", null);
        }
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(450), TimeSpan.FromSeconds(5));

        // Nothing reached a model, so another backend takes the request: no client sees the silent one.
        await _gateway!.DisposeAsync();
        _client!.Dispose();
        client = await Gateway(upstream, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30), connect: TimeSpan.FromMilliseconds(300), backends: [silent.Url, _sim.BaseUrl]);
        for (int i = 0; i < 4; i++)
        {
            using var response = await client.SendAsync(GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"messages\":[]}"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        Assert.Equal(4, _sim.RequestCount);
    }

    /// <summary>
    /// A port that never completes a TCP handshake: listen(0) and one connection nobody accepts fill the queue, so Linux drops later
    /// SYNs and a connect hangs until the client's own timeout (as with a firewalled or unreachable host).
    /// </summary>
    private sealed class UnacceptingListener : IDisposable
    {
        private readonly List<Socket> _sockets = [];

        public string Url { get; private set; } = "";

        public static async Task<UnacceptingListener> StartAsync()
        {
            var l = new UnacceptingListener();
            var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            l._sockets.Add(listener);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(0);
            var endpoint = (IPEndPoint)listener.LocalEndPoint!;
            l.Url = $"http://127.0.0.1:{endpoint.Port}";
            for (int i = 0; i < 8; i++)
            {
                var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                l._sockets.Add(filler);
                var connect = filler.ConnectAsync(endpoint);
                if (await Task.WhenAny(connect, Task.Delay(300)) != connect) return l; // the queue is full
            }
            throw new InvalidOperationException("the accept queue never filled");
        }

        public void Dispose()
        {
            foreach (var s in _sockets) s.Dispose();
        }
    }
}
