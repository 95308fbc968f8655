using System.Buffers;
using System.IO.Pipelines;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using Gateway.Streaming;

namespace Gateway.Tests.Streaming;

public sealed class SseRelayTests
{
    private static readonly byte[] Alias = "\"qwen\""u8.ToArray();

    /// <summary>Feeds <paramref name="upstream"/> to the relay in pieces of <paramref name="chunk"/> bytes; returns what the client got.</summary>
    private static async Task<(string Output, RelayOutcome Outcome, StreamState State)> Relay(
        string upstream, bool includeUsage, bool continuous, int chunk = int.MaxValue)
    {
        var bytes = Encoding.UTF8.GetBytes(upstream);
        var source = new Pipe();
        var sink = new Pipe();
        var state = new StreamState(Alias, includeUsage, continuous);
        var relay = SseRelay.RunAsync(source.Reader, sink.Writer, state, CancellationToken.None).AsTask();
        for (int i = 0; i < bytes.Length; i += chunk)
        {
            await source.Writer.WriteAsync(bytes.AsMemory(i, Math.Min(chunk, bytes.Length - i)));
        }
        await source.Writer.CompleteAsync();
        var outcome = await relay;
        await sink.Writer.CompleteAsync();
        var read = await sink.Reader.ReadAtLeastAsync(int.MaxValue);
        var output = Encoding.UTF8.GetString(read.Buffer.ToArray());
        return (output, outcome, state);
    }

    private static List<string> Events(string sse)
    {
        var parser = SseParser.Create(new MemoryStream(Encoding.UTF8.GetBytes(sse)));
        return parser.Enumerate().Select(e => e.Data).ToList();
    }

    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(100)]
    public async Task Rewrites_the_model_in_every_chunk_whatever_the_read_sizes(int chunk)
    {
        var (output, outcome, state) = await Relay(VllmStream.Chat(20), includeUsage: false, continuous: false, chunk);
        Assert.Equal(RelayOutcome.Completed, outcome);
        var events = Events(output);
        Assert.Equal("[DONE]", events[^1]);
        Assert.Equal(22, events.Count); // role + 20 tokens + [DONE]; the usage-only chunk is dropped
        foreach (var data in events.SkipLast(1))
        {
            using var doc = JsonDocument.Parse(data);
            Assert.Equal("qwen", doc.RootElement.GetProperty("model").GetString());
            Assert.False(doc.RootElement.TryGetProperty("usage", out _));
        }
        Assert.DoesNotContain(VllmStream.ModelId, output);
        Assert.Equal(12, state.PromptTokens);
        Assert.Equal(20, state.CompletionTokens);
        Assert.Equal(20, state.ContentChunks);
    }

    [Fact]
    public async Task Include_usage_gets_exactly_the_final_usage_chunk()
    {
        var (output, _, _) = await Relay(VllmStream.Chat(5), includeUsage: true, continuous: false);
        var events = Events(output);
        Assert.Equal(8, events.Count); // role + 5 + usage + [DONE]
        using var usage = JsonDocument.Parse(events[^2]);
        Assert.Equal(0, usage.RootElement.GetProperty("choices").GetArrayLength());
        Assert.Equal(5, usage.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        foreach (var data in events.Take(6))
            Assert.False(JsonDocument.Parse(data).RootElement.TryGetProperty("usage", out _));
    }

    [Fact]
    public async Task Continuous_usage_passes_through_as_vllm_sent_it_apart_from_the_model()
    {
        var upstream = VllmStream.Chat(5);
        var (output, _, _) = await Relay(upstream, includeUsage: true, continuous: true);
        Assert.Equal(upstream.Replace("\"" + VllmStream.ModelId + "\"", "\"qwen\""), output);
    }

    [Fact]
    public async Task Crlf_framing_is_understood_and_kept()
    {
        var (output, outcome, _) = await Relay(VllmStream.Chat(3, newline: "\r\n"), includeUsage: true, continuous: true, chunk: 5);
        Assert.Equal(RelayOutcome.Completed, outcome);
        Assert.Equal(VllmStream.Chat(3, newline: "\r\n").Replace("\"" + VllmStream.ModelId + "\"", "\"qwen\""), output);
    }

    [Fact]
    public async Task An_upstream_that_ends_without_done_gets_an_error_event_and_no_done()
    {
        var (output, outcome, state) = await Relay(VllmStream.Chat(4, done: false, includeUsage: false), includeUsage: false, continuous: false);
        Assert.Equal(RelayOutcome.UpstreamEndedEarly, outcome);
        var events = Events(output);
        Assert.DoesNotContain("[DONE]", events);
        using var error = JsonDocument.Parse(events[^1]);
        Assert.Equal("backend_error", error.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(4, state.CompletionTokens);
    }

    [Fact]
    public async Task A_half_event_at_the_end_is_not_sent_as_if_complete()
    {
        var full = VllmStream.Chat(2, done: false, includeUsage: false);
        var (output, outcome, _) = await Relay(full + "data: {\"id\":\"chatcmpl-1\",\"mod", includeUsage: false, continuous: false);
        Assert.Equal(RelayOutcome.UpstreamEndedEarly, outcome);
        Assert.DoesNotContain("\"mod\n", output);
        Assert.Equal(4, Events(output).Count); // role + 2 tokens + error
    }

    [Fact]
    public async Task An_endless_event_is_cut_off_with_an_error_instead_of_growing_memory()
    {
        // No back-pressure on the source: a write that waited for room when the relay gave up would never be released (the relay
        // stops reading), and the test hung on it now and then.
        var source = new Pipe(new PipeOptions(pauseWriterThreshold: 0));
        var sink = new Pipe();
        using var state = new StreamState(Alias, false, false);
        var relay = SseRelay.RunAsync(source.Reader, sink.Writer, state, CancellationToken.None).AsTask();
        var junk = new byte[64 * 1024];
        Array.Fill(junk, (byte)'x');
        for (int i = 0; i < 20 && !relay.IsCompleted; i++) await source.Writer.WriteAsync(junk);
        Assert.Equal(RelayOutcome.UpstreamFailed, await relay.WaitAsync(TimeSpan.FromSeconds(10)));
        await sink.Writer.CompleteAsync();
        var read = await sink.Reader.ReadAtLeastAsync(int.MaxValue);
        Assert.Contains("backend_error", Encoding.UTF8.GetString(read.Buffer.ToArray()));
    }

    [Theory]
    [InlineData(": keep-alive comment\n\n")]
    [InlineData("event: ping\ndata: {}\n\n")]
    [InlineData("data: not json\n\n")]
    [InlineData("data: {\"error\":{\"message\":\"boom\"}}\n\n")]
    [InlineData("data: {\"model\":\"x\",\"choices\":[]}\ndata: {\"model\":\"y\"}\n\n")] // two data lines: not one vLLM chunk
    public async Task Events_it_does_not_understand_pass_through_unchanged(string evt)
    {
        var (output, _, _) = await Relay(evt + "data: [DONE]\n\n", includeUsage: false, continuous: false);
        Assert.Equal(evt + "data: [DONE]\n\n", output);
    }

    [Fact]
    public async Task A_client_that_stops_reading_ends_the_relay_as_client_gone()
    {
        var source = new Pipe();
        var sink = new Pipe();
        using var state = new StreamState(Alias, false, false);
        await sink.Reader.CompleteAsync(); // the client went away
        // Mid-stream (no [DONE] yet): the flush finds the client gone. (At [DONE] the relay completes the writer and is done.)
        await source.Writer.WriteAsync(Encoding.UTF8.GetBytes(VllmStream.Chat(3, done: false)));
        var outcome = await SseRelay.RunAsync(source.Reader, sink.Writer, state, CancellationToken.None);
        Assert.Equal(RelayOutcome.ClientGone, outcome);
    }

    /// <summary>
    /// The events of one read share the writer's spans (each GetSpan/Advance on Kestrel's writer takes its lock): 200 events in
    /// one read come out whole, rewritten and in order through a handful of spans, across many 4 KB segments.
    /// </summary>
    [Fact]
    public async Task Events_of_one_read_share_the_writers_spans_and_come_out_whole()
    {
        var source = new Pipe();
        var sink = new Pipe(new PipeOptions(minimumSegmentSize: 4096));
        var counting = new CountingWriter(sink.Writer);
        using var state = new StreamState(Alias, true, true);
        var stream = VllmStream.Chat(200);
        await source.Writer.WriteAsync(Encoding.UTF8.GetBytes(stream));
        Assert.Equal(RelayOutcome.Completed, await SseRelay.RunAsync(source.Reader, counting, state, CancellationToken.None));
        var read = await sink.Reader.ReadAtLeastAsync(int.MaxValue);
        var output = Encoding.UTF8.GetString(read.Buffer.ToArray());
        Assert.Equal(stream.Replace(VllmStream.ModelId, "qwen"), output);
        Assert.True(read.Buffer.Length > 10 * 4096);
        Assert.InRange(counting.Spans, 1, Events(stream).Count / 4);
        Assert.Equal(counting.Spans, counting.Advances);
    }

    private sealed class CountingWriter(PipeWriter inner) : PipeWriter
    {
        public int Spans, Advances;
        public override void Advance(int bytes) { Advances++; inner.Advance(bytes); }
        public override Memory<byte> GetMemory(int sizeHint = 0) { Spans++; return inner.GetMemory(sizeHint); }
        public override Span<byte> GetSpan(int sizeHint = 0) { Spans++; return inner.GetSpan(sizeHint); }
        public override void CancelPendingFlush() => inner.CancelPendingFlush();
        public override void Complete(Exception? exception = null) => inner.Complete(exception);
        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);
    }

    /// <summary>
    /// At [DONE] the relay completes the client's writer instead of flushing: over Kestrel that sends the last events together with
    /// the body's end in one send. Here: the sink sees the whole stream and its completion without the test completing anything.
    /// </summary>
    [Fact]
    public async Task Done_completes_the_client_writer_with_the_last_events()
    {
        var source = new Pipe();
        var sink = new Pipe();
        using var state = new StreamState(Alias, true, true);
        var stream = VllmStream.Chat(3);
        await source.Writer.WriteAsync(Encoding.UTF8.GetBytes(stream));
        Assert.Equal(RelayOutcome.Completed, await SseRelay.RunAsync(source.Reader, sink.Writer, state, CancellationToken.None));
        var read = await sink.Reader.ReadAtLeastAsync(int.MaxValue);
        Assert.True(read.IsCompleted);
        var output = Encoding.UTF8.GetString(read.Buffer.ToArray());
        Assert.EndsWith("data: [DONE]\n\n", output);
        Assert.Equal(Events(stream).Count, Events(output).Count);
    }

    [Fact]
    public async Task Cancellation_ends_the_relay_as_client_gone()
    {
        var source = new Pipe();
        var sink = new Pipe();
        using var state = new StreamState(Alias, false, false);
        using var cts = new CancellationTokenSource();
        var relay = SseRelay.RunAsync(source.Reader, sink.Writer, state, cts.Token).AsTask();
        await source.Writer.WriteAsync("data: {\"model\":\"x\",\"choices\":[]}\n\n"u8.ToArray());
        cts.Cancel();
        Assert.Equal(RelayOutcome.ClientGone, await relay);
    }

    [Fact]
    public void Event_framing_resumes_where_it_stopped()
    {
        var bytes = Encoding.UTF8.GetBytes("data: abc\n");
        var seq = new ReadOnlySequence<byte>(bytes);
        long scanned = 0;
        Assert.False(SseRelay.TryFindEvent(seq, ref scanned, out _, out _, out _));
        Assert.Equal(9, scanned); // at the newline that may start the blank line
        var more = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes("data: abc\n\ndata"));
        Assert.True(SseRelay.TryFindEvent(more, ref scanned, out var eventLength, out var frameLength, out _));
        Assert.Equal(9, eventLength);
        Assert.Equal(11, frameLength);
    }

    /// <summary>"One line" is only claimed when the event has no newline of its own; a resumed scan claims nothing.</summary>
    [Theory]
    [InlineData("data: {\"a\":1}\n\n", true)]
    [InlineData("data: {\"a\":1}\r\n\r\n", true)]
    [InlineData("data: a\ndata: b\n\n", false)]
    [InlineData("data: a\r\ndata: b\r\n\r\n", false)]
    [InlineData(": comment\ndata: x\n\n", false)]
    [InlineData("\n\n", true)]
    public void Framing_knows_a_one_line_event(string text, bool oneLine)
    {
        var seq = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(text + "data: next"));
        long scanned = 0;
        Assert.True(SseRelay.TryFindEvent(seq, ref scanned, out var eventLength, out _, out bool found));
        Assert.Equal(oneLine, found);
        Assert.Equal(oneLine, !Encoding.UTF8.GetString(seq.Slice(0, eventLength).ToArray()).Contains('\n'));

        var head = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(text[..(text.IndexOf('\n') + 1)]));
        scanned = 0;
        if (!SseRelay.TryFindEvent(head, ref scanned, out _, out _, out _) && scanned > 0)
        {
            Assert.True(SseRelay.TryFindEvent(seq, ref scanned, out var resumedLength, out _, out bool resumed));
            Assert.Equal(eventLength, resumedLength);
            Assert.False(resumed); // resumed mid-event: unknown, so the relay looks for itself
        }
    }
}
