using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Gateway.Proxy.Upstream;
using Gateway.Simulation;
using Gateway.Streaming;

namespace Gateway.IntegrationTests.Upstream;

/// <summary>The response body as the client's own PipeReader: the relay's contract (consumed/examined), growth, no idle buffer.</summary>
public sealed class Http1BodyReaderTests : IDisposable
{
    private static readonly byte[] Body = "{\"stream\":true}"u8.ToArray();
    private readonly ScriptedServer _server = new();
    private readonly Http1Client _client = new();
    private readonly Http1Route _route;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(30));

    public Http1BodyReaderTests() => _route = _client.CreateRoute(_server.Url);

    public void Dispose()
    {
        _client.Dispose();
        _server.Dispose();
        _timeout.Dispose();
    }

    private static string Chunk(string data) => $"{Encoding.UTF8.GetByteCount(data):x}\r\n{data}\r\n";

    private const string SseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n";

    /// <summary>Reads event by event as the relay does: consume whole events, mark the rest examined.</summary>
    private static async Task<List<string>> ReadEventsAsync(PipeReader reader, CancellationToken token)
    {
        var events = new List<string>();
        while (true)
        {
            var read = await reader.ReadAsync(token);
            var buffer = read.Buffer;
            while (buffer.PositionOf((byte)'\n') is { } lf && buffer.Slice(buffer.GetPosition(1, lf)).FirstSpan is [(byte)'\n', ..])
            {
                var end = buffer.GetPosition(2, lf);
                events.Add(Encoding.UTF8.GetString(buffer.Slice(0, end)).TrimEnd('\n'));
                buffer = buffer.Slice(end);
            }
            reader.AdvanceTo(buffer.Start, read.Buffer.End);
            if (read.IsCompleted) return events;
        }
    }

    [Fact]
    public async Task Events_split_at_every_byte_come_out_whole_and_the_connection_is_reused()
    {
        var events = new[] { "data: {\"a\":1}", "data: {\"b\":\"" + new string('x', 300) + "\"}", "data: [DONE]" };
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendByteByByteAsync(SseHead + string.Concat(events.Select(e => Chunk(e + "\n\n"))) + "0\r\n\r\n");
            await c.ReadRequestAsync();
            await c.SendAsync(SseHead + "0\r\n\r\n");
        });
        using (var response = await _client.SendAsync(_route, Body, null, null, _timeout.Token))
            Assert.Equal(events, await ReadEventsAsync(response.BodyReader, _timeout.Token));
        using (var response = await _client.SendAsync(_route, Body, null, null, _timeout.Token))
            Assert.Empty(await ReadEventsAsync(response.BodyReader, _timeout.Token));
        await server;
        Assert.Equal(1, _server.Accepted);
    }

    [Fact]
    public async Task A_burst_that_came_with_the_head_is_one_read()
    {
        // 40 events (~9 KB, more than one 4 KB buffer) sent with the head in one write: the relay gets them all in its first read,
        // so it writes and flushes to the client once, not once per 4 KB.
        var events = Enumerable.Range(0, 40).Select(i => $"data: {{\"i\":{i},\"pad\":\"{new string('p', 200)}\"}}").ToArray();
        var wire = SseHead + string.Concat(events.Select(e => Chunk(e + "\n\n"))) + "0\r\n\r\n";
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync(wire);
        });
        using var response = await _client.SendAsync(_route, Body, null, null, _timeout.Token);
        await server; // one write on loopback: one segment, in hand with the head
        var reader = response.BodyReader;
        var first = await reader.ReadAsync(_timeout.Token);
        var text = Encoding.UTF8.GetString(first.Buffer);
        Assert.Equal(string.Concat(events.Select(e => e + "\n\n")), text);
        reader.AdvanceTo(first.Buffer.End);
        var end = await reader.ReadAsync(_timeout.Token);
        Assert.True(end.IsCompleted);
        Assert.True(end.Buffer.IsEmpty);
    }

    [Fact]
    public async Task An_event_larger_than_the_buffer_grows_it()
    {
        var big = "data: " + new string('y', 100_000);
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync(SseHead + Chunk(big[..50_000]) + Chunk(big[50_000..] + "\n\n") + Chunk("data: [DONE]\n\n") + "0\r\n\r\n");
        });
        using var response = await _client.SendAsync(_route, Body, null, null, _timeout.Token);
        Assert.Equal([big, "data: [DONE]"], await ReadEventsAsync(response.BodyReader, _timeout.Token));
        await server;
    }

    [Fact]
    public async Task A_partial_event_near_the_end_of_the_buffer_moves_to_the_front_so_no_read_is_a_sliver()
    {
        // 30 events of ~900 bytes, all in the socket at once: after each read the relay consumes the whole events and keeps a
        // partial one, often within a few bytes of the buffer's end. Every read but the last must still get room for 1 KB or more.
        var events = Enumerable.Range(0, 30).Select(i => $"data: {{\"i\":{i:00},\"p\":\"{new string('z', 880)}\"}}").ToArray();
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync(SseHead + string.Concat(events.Select(e => Chunk(e + "\n\n"))) + "0\r\n\r\n");
        });
        using var response = await _client.SendAsync(_route, Body, null, null, _timeout.Token);
        await server; // everything is in the socket before the first body read
        var reader = response.BodyReader;
        var received = new List<string>();
        var slivers = new List<long>();
        long carried = 0;
        while (true)
        {
            var read = await reader.ReadAsync(_timeout.Token);
            var buffer = read.Buffer;
            long fresh = buffer.Length - carried;
            if (!read.IsCompleted && fresh < Http1BodyReader.MinimumReadSize) slivers.Add(fresh);
            while (buffer.PositionOf((byte)'\n') is { } lf && buffer.Slice(buffer.GetPosition(1, lf)).FirstSpan is [(byte)'\n', ..])
            {
                var end = buffer.GetPosition(2, lf);
                received.Add(Encoding.UTF8.GetString(buffer.Slice(0, end)).TrimEnd('\n'));
                buffer = buffer.Slice(end);
            }
            carried = buffer.Length;
            reader.AdvanceTo(buffer.Start, read.Buffer.End);
            if (read.IsCompleted) break;
        }
        Assert.Equal(events, received);
        Assert.True(slivers.Count <= 1, "reads of fewer than 1 KB new bytes: " + string.Join(", ", slivers)); // the very last may be short
    }

    [Fact]
    public async Task Between_events_it_waits_without_a_buffer_and_examined_data_waits_for_more()
    {
        var next = new TaskCompletionSource();
        var rest = new TaskCompletionSource();
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync(SseHead + Chunk("data: 1\n\n"));
            await next.Task;
            await c.SendAsync(Chunk("data: 2"));     // half an event
            await rest.Task;
            await c.SendAsync(Chunk("\n\n") + "0\r\n\r\n");
        });
        using var response = await _client.SendAsync(_route, Body, null, null, _timeout.Token);
        var reader = response.BodyReader;
        var read = await reader.ReadAsync(_timeout.Token);
        Assert.Equal("data: 1\n\n", Encoding.UTF8.GetString(read.Buffer));
        reader.AdvanceTo(read.Buffer.End);

        var waiting = reader.ReadAsync(_timeout.Token).AsTask();
        await Task.Delay(200);
        Assert.False(waiting.IsCompleted);
        Assert.False(((Http1BodyReader)reader).HoldsBuffer, "an idle stream must hold no buffer");
        next.SetResult();
        read = await waiting.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("data: 2", Encoding.UTF8.GetString(read.Buffer));
        reader.AdvanceTo(read.Buffer.Start, read.Buffer.End); // nothing consumed, all examined: the next read must wait for more

        Assert.False(reader.TryRead(out _));
        waiting = reader.ReadAsync(_timeout.Token).AsTask();
        await Task.Delay(100);
        Assert.False(waiting.IsCompleted);
        rest.SetResult();
        read = await waiting.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("data: 2\n\n", Encoding.UTF8.GetString(read.Buffer));
        reader.AdvanceTo(read.Buffer.Start, read.Buffer.Start); // examined nothing: the same data comes back at once
        Assert.True(reader.TryRead(out var again));
        Assert.Equal("data: 2\n\n", Encoding.UTF8.GetString(again.Buffer));
        reader.AdvanceTo(again.Buffer.End);
        read = await reader.ReadAsync(_timeout.Token);
        Assert.True(read.IsCompleted);
        Assert.True(read.Buffer.IsEmpty);
        reader.AdvanceTo(read.Buffer.End);
        await server;
    }

    [Fact]
    public async Task A_cancelled_read_closes_the_connection()
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync(SseHead + Chunk("data: 1\n\n"));
            return await c.ClientClosesWithinAsync(TimeSpan.FromSeconds(5));
        });
        using var clientGone = new CancellationTokenSource();
        using var response = await _client.SendAsync(_route, Body, null, null, _timeout.Token);
        var reader = response.BodyReader;
        var read = await reader.ReadAsync(clientGone.Token);
        reader.AdvanceTo(read.Buffer.End);
        var pending = reader.ReadAsync(clientGone.Token).AsTask();
        clientGone.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
        Assert.True(await server);
    }

    [Fact]
    public async Task Cancel_pending_read_is_seen_by_the_next_read()
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync(SseHead + Chunk("data: 1\n\n") + "0\r\n\r\n");
        });
        using var response = await _client.SendAsync(_route, Body, null, null, _timeout.Token);
        var reader = response.BodyReader;
        reader.CancelPendingRead();
        var read = await reader.ReadAsync(_timeout.Token);
        Assert.True(read.IsCanceled);
        reader.AdvanceTo(read.Buffer.Start);
        Assert.Equal(["data: 1"], await ReadEventsAsync(reader, _timeout.Token));
        reader.Complete();
        Assert.Throws<InvalidOperationException>(() => reader.TryRead(out _));
        await server;
    }

    [Fact]
    public async Task The_sse_relay_runs_over_it_against_the_simulator()
    {
        await using var sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Tokens = 20 });
        var route = _client.CreateRoute(new Uri(sim.BaseUrl + "/v1/chat/completions"));
        var body = Encoding.UTF8.GetBytes("{\"model\":\"Qwen/Qwen2.5-7B-Instruct\",\"messages\":[],\"stream\":true,\"stream_options\":{\"include_usage\":true,\"continuous_usage_stats\":true}}");
        for (int round = 0; round < 2; round++)
        {
            using var response = await _client.SendAsync(route, body, null, null, _timeout.Token);
            var output = new Pipe();
            using var state = new StreamState("\"qwen\""u8.ToArray(), clientIncludeUsage: true, clientContinuousUsage: true);
            var outcome = await SseRelay.RunAsync(response.BodyReader, output.Writer, state, _timeout.Token);
            Assert.Equal(RelayOutcome.Completed, outcome);
            await output.Writer.CompleteAsync();
            var relayed = await ReadAllAsync(output.Reader);
            Assert.EndsWith("data: [DONE]\n\n", relayed);
            Assert.Equal(23, relayed.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Length);
            Assert.DoesNotContain("Qwen/", relayed);
            Assert.Equal(20, state.CompletionTokens);
        }
    }

    private static async Task<string> ReadAllAsync(PipeReader reader)
    {
        while (true)
        {
            var read = await reader.ReadAsync();
            if (read.IsCompleted)
            {
                var text = Encoding.UTF8.GetString(read.Buffer);
                reader.AdvanceTo(read.Buffer.End);
                return text;
            }
            reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }
}
