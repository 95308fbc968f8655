using System.Buffers;
using System.IO.Pipelines;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using Gateway.Proxy.Upstream;
using Gateway.Simulation;

namespace Gateway.IntegrationTests.Upstream;

/// <summary>The HTTP/1.1 upstream client against the built-in vLLM simulator (Kestrel: Content-Length JSON, chunked SSE).</summary>
public sealed class Http1ClientSimulatorTests : IAsyncLifetime
{
    private const string Model = "Qwen/Qwen2.5-7B-Instruct";
    private VllmSimulator _sim = null!;
    private readonly Http1Client _client = new();
    private Http1Route _chat = null!;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(60));

    public async Task InitializeAsync()
    {
        _sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Tokens = 20 });
        _chat = _client.CreateRoute(new Uri(_sim.BaseUrl + "/v1/chat/completions"));
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _sim.DisposeAsync();
        _timeout.Dispose();
    }

    private static byte[] ChatBody(bool stream, int maxTokens = 20, string content = "Hello!") => Encoding.UTF8.GetBytes(
        $"{{\"model\":\"{Model}\",\"messages\":[{{\"role\":\"user\",\"content\":{JsonSerializer.Serialize(content)}}}],\"max_tokens\":{maxTokens}" +
        (stream ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}}" : "}"));

    [Fact]
    public async Task Json_completion_is_read_and_the_connection_reused()
    {
        for (int i = 0; i < 3; i++)
        {
            using var response = await _client.SendAsync(_chat, ChatBody(false), $"req-{i}", [new("Accept", "application/json")], _timeout.Token);
            Assert.Equal(200, response.StatusCode);
            Assert.Equal("application/json", response.GetContentTypeString());
            Assert.True(response.ContentLength > 0);
            var json = await Http1ClientEdgeTests.ReadToEndAsync(response);
            Assert.Equal(response.ContentLength, Encoding.UTF8.GetByteCount(json));
            using var doc = JsonDocument.Parse(json);
            Assert.Equal(20, doc.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        }
        Assert.Equal(1, _client.ConnectionsOpened(_chat));
        var captured = _sim.Captured[^1];
        Assert.Equal("req-2", captured.Headers["x-request-id"]);
        Assert.Equal("application/json", captured.Headers["accept"]);
        Assert.Equal("application/json", captured.Headers["content-type"]);
        Assert.False(captured.Headers.ContainsKey("authorization"));
    }

    [Fact]
    public async Task Sse_stream_reads_to_done_through_a_zero_byte_read_pipe_reader_and_the_connection_is_reused()
    {
        for (int round = 0; round < 2; round++)
        {
            using var response = await _client.SendAsync(_chat, ChatBody(true), "sse", null, _timeout.Token);
            Assert.Equal(200, response.StatusCode);
            Assert.True(response.IsEventStream);
            Assert.Equal(-1, response.ContentLength);
            // As the relay reads it: small buffers, zero-byte reads between events.
            var reader = PipeReader.Create(response.Body, new StreamPipeReaderOptions(bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: true));
            var text = new StringBuilder();
            while (true)
            {
                var read = await reader.ReadAsync(_timeout.Token);
                foreach (var segment in read.Buffer) text.Append(Encoding.UTF8.GetString(segment.Span));
                reader.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted) break;
            }
            await reader.CompleteAsync();
            var events = text.ToString().Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(23, events.Length); // role + 20 tokens + usage + [DONE]
            Assert.Equal("data: [DONE]", events[^1]);
            Assert.All(events[..^1], e => JsonDocument.Parse(e["data: ".Length..]).Dispose());
        }
        Assert.Equal(1, _client.ConnectionsOpened(_chat));
    }

    [Fact]
    public async Task Sse_stream_parses_with_the_framework_sse_parser()
    {
        using var response = await _client.SendAsync(_chat, ChatBody(true, maxTokens: 5), null, null, _timeout.Token);
        var data = new List<string>();
        await foreach (var item in SseParser.Create(response.Body).EnumerateAsync(_timeout.Token)) data.Add(item.Data);
        Assert.Equal(8, data.Count);
        Assert.Equal("[DONE]", data[^1]);
    }

    [Fact]
    public async Task A_large_body_goes_out_intact()
    {
        var body = ChatBody(false, 2, new string('x', 200_000)); // beyond the one-buffer copy: head and body in two sends
        using (var response = await _client.SendAsync(_chat, body, null, null, _timeout.Token))
        {
            Assert.Equal(200, response.StatusCode);
            await Http1ClientEdgeTests.ReadToEndAsync(response);
        }
        Assert.Equal(body, _sim.Captured[^1].Body);
    }

    [Fact]
    public async Task An_upstream_dying_mid_stream_is_an_incomplete_body()
    {
        _sim.Options.DieAfterEvents = 3;
        using var response = await _client.SendAsync(_chat, ChatBody(true), null, null, _timeout.Token);
        var e = await Assert.ThrowsAsync<UpstreamException>(() => Http1ClientEdgeTests.ReadToEndAsync(response));
        Assert.Equal(UpstreamFailure.BodyIncomplete, e.Failure);
    }

    [Fact]
    public async Task A_host_name_is_resolved_at_connect()
    {
        var route = _client.CreateRoute(new Uri($"http://localhost:{_sim.Port}/v1/chat/completions"));
        using var response = await _client.SendAsync(route, ChatBody(false), null, null, _timeout.Token);
        Assert.Equal(200, response.StatusCode);
        await Http1ClientEdgeTests.ReadToEndAsync(response);
        Assert.Equal($"localhost:{_sim.Port}", _sim.Captured[^1].Headers["host"]);
    }

    [Fact]
    public async Task Error_statuses_come_back_with_their_body()
    {
        var route = _client.CreateRoute(new Uri(_sim.BaseUrl + "/v1/nope"));
        using var response = await _client.SendAsync(route, ChatBody(false), null, null, _timeout.Token);
        Assert.Equal(404, response.StatusCode);
        Assert.Equal("{\"detail\":\"Not Found\"}", await Http1ClientEdgeTests.ReadToEndAsync(response));
    }

    [Fact]
    public async Task Cancelling_a_stream_stops_the_generation()
    {
        _sim.Options.ItlMs = 50; // 200 tokens: 10 s if nobody stops it
        using var cts = new CancellationTokenSource();
        using (var response = await _client.SendAsync(_chat, ChatBody(true, maxTokens: 200), null, null, cts.Token))
        {
            Assert.True(await response.ReadAsync(new byte[4096]) > 0);
            Assert.Equal(1, Running());
            cts.Cancel();
        }
        // The simulator's generation loop ends when it sees the connection go (its CancelledStreams count is best-effort: a write
        // that fails before Kestrel reports the abort is not counted, so the test watches the running count instead).
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (Running() != 0 && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(0, Running());
    }

    private long Running() => _sim.Stats.TryGetValue(Model, out var stats) ? Interlocked.Read(ref stats.Running) : 0;

    [Fact]
    public async Task Concurrent_requests_share_the_pool_without_mixing_bodies()
    {
        var tasks = Enumerable.Range(0, 16).Select(async worker =>
        {
            for (int i = 0; i < 10; i++)
            {
                var id = $"w{worker}-{i}";
                using var response = await _client.SendAsync(_chat, ChatBody(i % 2 == 0, maxTokens: 3 + worker % 5), id, null, _timeout.Token);
                var text = await Http1ClientEdgeTests.ReadToEndAsync(response);
                if (i % 2 == 0) Assert.EndsWith("data: [DONE]\n\n", text);
                else Assert.Equal(3 + worker % 5, JsonDocument.Parse(text).RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
            }
        });
        await Task.WhenAll(tasks);
        // Idle connections are kept per event loop, and a request resumed on a loop rents only that loop's: each loop opens at
        // most as many as its requests ever had in flight at once (16), never one per request (160).
        Assert.InRange(_client.ConnectionsOpened(_chat), 1, 16 * Gateway.Net.EventLoops.Count);
    }
}
