using System.Diagnostics;
using System.Net;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Proxy;

/// <summary>SSE relay end to end, over each upstream client (the subclasses at the end pick the fixture).</summary>
public abstract class StreamingTests(GatewayFixture fx) : SimulatorResetting(fx)
{
    private async Task<(HttpResponseMessage Response, List<string> Events)> Stream(string body)
    {
        var response = await _fx.Client.SendAsync(_fx.Post("/v1/chat/completions", body), HttpCompletionOption.ResponseHeadersRead);
        var events = new List<string>();
        try
        {
            await foreach (var item in SseParser.Create(await response.Content.ReadAsStreamAsync()).EnumerateAsync())
                events.Add(item.Data);
        }
        catch (HttpRequestException) { } // a stream the gateway had to cut still returns what arrived
        catch (IOException) { }
        return (response, events);
    }

    [Theory]
    [InlineData("", false, false)]
    [InlineData(",\"stream_options\":{\"include_usage\":true}", true, false)]
    [InlineData(",\"stream_options\":{\"include_usage\":true,\"continuous_usage_stats\":true}", true, true)]
    [InlineData(",\"stream_options\":{\"include_usage\":false}", false, false)]
    public async Task Stream_has_the_alias_in_every_chunk_usage_exactly_as_asked_and_ends_with_done(string options, bool usageChunk, bool perChunkUsage)
    {
        var (response, events) = await Stream("{\"model\":\"qwen\",\"stream\":true,\"max_tokens\":6,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]" + options + "}");
        using (response)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal("no-cache", response.Headers.CacheControl?.ToString());
            Assert.Equal("no", response.Headers.GetValues("X-Accel-Buffering").Single());
        }
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events.SkipLast(1).Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("qwen", c.GetProperty("model").GetString()));
        var usageOnly = chunks.Where(c => c.GetProperty("choices").GetArrayLength() == 0).ToList();
        Assert.Equal(usageChunk ? 1 : 0, usageOnly.Count);
        if (usageChunk) Assert.Equal(6, usageOnly[0].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        var withChoices = chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0).ToList();
        Assert.Equal(7, withChoices.Count); // role chunk + 6 tokens
        Assert.All(withChoices, c => Assert.Equal(perChunkUsage, c.TryGetProperty("usage", out _)));

        // Upstream always streams usage for accounting, merged with what the client sent.
        var upstream = JsonDocument.Parse(_fx.Simulator.Captured[^1].Body).RootElement.GetProperty("stream_options");
        Assert.True(upstream.GetProperty("include_usage").GetBoolean());
        Assert.True(upstream.GetProperty("continuous_usage_stats").GetBoolean());
    }

    [Fact]
    public async Task Completions_stream_too()
    {
        var response = await _fx.Client.SendAsync(_fx.Post("/v1/completions", "{\"model\":\"qwen\",\"prompt\":\"x\",\"stream\":true,\"max_tokens\":3}"), HttpCompletionOption.ResponseHeadersRead);
        var text = await response.Content.ReadAsStringAsync();
        Assert.EndsWith("data: [DONE]\n\n", text);
        Assert.DoesNotContain("Qwen/", text);
        Assert.Contains("\"model\":\"qwen\"", text);
    }

    [Fact]
    public async Task An_upstream_that_dies_mid_stream_ends_with_an_error_event_and_no_done()
    {
        _fx.Simulator.Options.DieAfterEvents = 3;
        var (response, events) = await Stream("{\"model\":\"qwen\",\"stream\":true,\"max_tokens\":10,\"messages\":[]}");
        response.Dispose();
        Assert.DoesNotContain("[DONE]", events);
        Assert.True(events.Count >= 2, string.Join(" | ", events));
        var last = JsonDocument.Parse(events[^1]).RootElement;
        Assert.Equal("backend_error", last.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Tokens_are_relayed_as_they_come_not_buffered()
    {
        _fx.Simulator.Options.ItlMs = 150;
        _fx.Simulator.Options.Tokens = 6;
        using var response = await _fx.Client.SendAsync(_fx.Post("/v1/chat/completions", "{\"model\":\"qwen\",\"stream\":true,\"messages\":[]}"), HttpCompletionOption.ResponseHeadersRead);
        var arrivals = new List<long>();
        var clock = Stopwatch.StartNew();
        await foreach (var item in SseParser.Create(await response.Content.ReadAsStreamAsync()).EnumerateAsync())
            arrivals.Add(clock.ElapsedMilliseconds);
        // 6 tokens 150 ms apart: if the gateway buffered, they would arrive together at the end.
        Assert.True(arrivals[^1] - arrivals[1] >= 500, string.Join(",", arrivals));
    }

    [Fact]
    public async Task A_client_that_disconnects_cancels_the_upstream_stream()
    {
        _fx.Simulator.Options.ItlMs = 50;
        _fx.Simulator.Options.Tokens = 200;
        var before = _fx.Simulator.CancelledStreams;
        // No draining on dispose: the connection must really close, as a client that goes away would.
        using var client = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0, UseProxy = false }) { BaseAddress = _fx.Client.BaseAddress };
        using (var response = await client.SendAsync(_fx.Post("/v1/chat/completions", "{\"model\":\"qwen\",\"stream\":true,\"messages\":[]}"), HttpCompletionOption.ResponseHeadersRead))
        {
            var stream = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[256];
            Assert.True(await stream.ReadAsync(buffer) > 0);
        } // disposing the response closes the connection mid-stream
        var deadline = Stopwatch.StartNew();
        while (_fx.Simulator.CancelledStreams == before && deadline.ElapsedMilliseconds < 5000) await Task.Delay(20);
        Assert.Equal(before + 1, _fx.Simulator.CancelledStreams);
        Assert.True(deadline.ElapsedMilliseconds < 2000, $"upstream cancelled after {deadline.ElapsedMilliseconds} ms");
    }
}

[Collection("gateway")]
public sealed class StreamingTestsOverHttp1(GatewayFixture fx) : StreamingTests(fx);

[Collection("gateway-sockets")]
public sealed class StreamingTestsOverSockets(SocketsGatewayFixture fx) : StreamingTests(fx);
