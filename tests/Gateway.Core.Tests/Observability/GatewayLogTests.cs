using System.Diagnostics;
using Gateway.Observability;
using Prometheus;

namespace Gateway.Tests.Observability;

public sealed class GatewayLogTests
{
    /// <summary>A stdout that never accepts a byte until released: the log must drop, count and never block the caller.</summary>
    private sealed class StuckStream : Stream
    {
        public readonly TaskCompletionSource Release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => await Release.Task;
        public override void Write(byte[] buffer, int offset, int count) => Release.Task.Wait();
        public override void Flush() { }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => 0;
        public override long Position { get => 0; set { } }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    [Fact]
    public async Task A_full_queue_drops_and_counts_lines_without_blocking()
    {
        var dropped = Metrics.WithCustomRegistry(Metrics.NewCustomRegistry()).CreateCounter("dropped", "test");
        var sink = new StuckStream();
        var log = new GatewayLog("info", "json", sink, dropped);
        var record = new RequestRecord();
        record.Reset(Stopwatch.GetTimestamp());
        record.Status = 200;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < GatewayLog.Capacity * 2; i++) log.Request(record, Stopwatch.GetTimestamp());
        Assert.True(clock.ElapsedMilliseconds < 5000);
        // The writer may take a batch before the sink blocks, so not every line beyond the capacity is dropped; most must be.
        Assert.True(dropped.Value >= GatewayLog.Capacity / 2, $"dropped {dropped.Value}");
        sink.Release.SetResult();
        await log.DisposeAsync();
    }

    [Theory]
    [InlineData(200, LogLevel.Info)]
    [InlineData(302, LogLevel.Info)]
    [InlineData(401, LogLevel.Warn)]
    [InlineData(429, LogLevel.Warn)]
    [InlineData(499, LogLevel.Warn)]
    [InlineData(500, LogLevel.Error)]
    [InlineData(504, LogLevel.Error)]
    public void Level_follows_the_status(int status, LogLevel level) => Assert.Equal(level, GatewayLog.LevelOf(status));

    [Theory]
    [InlineData("2026-11-25T19:54:57.0010000Z")]
    [InlineData("0001-01-01T00:00:00.0000000Z")]
    [InlineData("9999-12-31T23:59:59.9990000Z")]
    [InlineData("2024-02-29T07:08:09.120Z")]
    public void Timestamp_matches_the_framework_format(string iso)
    {
        var t = DateTime.Parse(iso, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AdjustToUniversal | System.Globalization.DateTimeStyles.AssumeUniversal);
        Span<byte> ts = stackalloc byte[24];
        LogFormat.FormatTimestamp(t, ts);
        Assert.Equal(t.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture), System.Text.Encoding.ASCII.GetString(ts));
    }

    /// <summary>Durations go out as JSON numbers to the microsecond, trailing zeros dropped; a negative one the slow way, still a number.</summary>
    [Theory]
    [InlineData(212.3456, "212.346")]
    [InlineData(0.0871, "0.087")]
    [InlineData(2.5, "2.5")]
    [InlineData(3.0, "3")]
    [InlineData(0.0, "0")]
    [InlineData(0.0004, "0")]
    [InlineData(999999999.9994, "999999999.999")]
    [InlineData(-1.25, "-1.25")]
    public void Durations_are_json_numbers_to_the_microsecond(double ms, string expected)
    {
        var line = new LogLine { Timestamp = DateTime.UtcNow, Level = LogLevel.Info, Msg = "request", IsRequest = true, RequestId = "r",
            Method = "POST", Path = "/", Status = 200, DurationMs = ms, OverheadMs = ms, Model = "", BackendUrl = "", KeyPrefix = "" };
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        LogFormat.WriteJson(line, output);
        var text = System.Text.Encoding.UTF8.GetString(output.WrittenSpan);
        Assert.Contains($"\"duration_ms\":{expected},\"overhead_ms\":{expected},", text);
        using var doc = System.Text.Json.JsonDocument.Parse(text);
        Assert.Equal(double.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), doc.RootElement.GetProperty("duration_ms").GetDouble());
    }

    [Fact]
    public void Text_lines_escape_control_characters_so_a_path_cannot_forge_an_entry()
    {
        var line = new LogLine { Timestamp = DateTime.UtcNow, Level = LogLevel.Warn, Msg = "request", IsRequest = true, RequestId = "r",
            Method = "GET", Path = "/x\n2026-11-26T00:00:00.000Z ERROR forged\r\u001b[31m", Status = 404, Model = "m\tx", BackendUrl = "", KeyPrefix = "" };
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        LogFormat.WriteText(line, output);
        var text = System.Text.Encoding.UTF8.GetString(output.WrittenSpan);
        Assert.Equal(1, text.Count(c => c == '\n')); // the entry's own end only
        Assert.EndsWith("\n", text);
        Assert.Contains("GET /x\\n2026-11-26T00:00:00.000Z ERROR forged\\r\\x1b[31m 404", text);
        Assert.Contains("model=m\\tx", text);
        Assert.DoesNotContain(text[..^1], c => c < 0x20);
    }

    [Fact]
    public async Task Request_lines_reach_the_sink_without_a_wake_up_and_dispose_writes_the_rest()
    {
        var sink = new MemoryStream();
        var log = new GatewayLog("info", "json", sink);
        var record = new RequestRecord();
        record.Reset(Stopwatch.GetTimestamp());
        record.Status = 200;
        log.Request(record, Stopwatch.GetTimestamp());
        // The writer wakes by itself every FlushInterval: the single line shows up without anything else happening.
        var clock = Stopwatch.StartNew();
        while (Lines(sink) < 1 && clock.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(10);
        Assert.Equal(1, Lines(sink));
        for (int i = 0; i < 1000; i++) log.Request(record, Stopwatch.GetTimestamp());
        await log.DisposeAsync();
        Assert.Equal(1001, Lines(sink));
        var last = System.Text.Encoding.UTF8.GetString(sink.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1];
        using var doc = System.Text.Json.JsonDocument.Parse(last);
        Assert.Equal("request", doc.RootElement.GetProperty("msg").GetString());
        Assert.Matches(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$", doc.RootElement.GetProperty("ts").GetString());

        static int Lines(MemoryStream s) => s.ToArray().Count(b => b == (byte)'\n');
    }

    [Fact]
    public async Task A_message_with_a_lone_surrogate_still_gives_valid_json_lines()
    {
        var sink = new MemoryStream();
        var log = new GatewayLog("info", "json", sink);
        log.Info("a lone surrogate \ud800 in a message");
        log.Info("after");
        await log.DisposeAsync();
        var lines = System.Text.Encoding.UTF8.GetString(sink.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        foreach (var line in lines) using (System.Text.Json.JsonDocument.Parse(line)) { }
        Assert.Contains("\"msg\":\"after\"", lines[1]);
    }

    /// <summary>The JSON line is written by hand; it must be the text Utf8JsonWriter (default escaping) gives for the same fields.</summary>
    [Theory]
    [InlineData("/v1/chat/completions", "qwen", "req-1")]
    [InlineData("/x?a=<b>&c='d'+`e`", "m\"q\\", "id\"with\\quotes")]
    [InlineData("/ünïcode/模型", "Qwen/Qwen2.5-7B-Instruct\u2028", "tab\there")]
    [InlineData("/ctrl\u0001\u001f\u007f", "emoji 😀", null)]
    [InlineData("", "", "")]
    public void Json_lines_are_what_the_framework_writer_gives(string path, string model, string? requestId)
    {
        var line = new LogLine
        {
            Timestamp = new DateTime(2026, 11, 26, 13, 5, 7, 123, DateTimeKind.Utc), Level = LogLevel.Warn, Msg = "request", IsRequest = true,
            RequestId = requestId, Method = "POST", Path = path, Status = 429, DurationMs = 12.3456, OverheadMs = -0.5, Model = model,
            BackendUrl = "http://10.0.0.1:8000", Streaming = true, KeyPrefix = "ml-abcdef01", PromptTokens = 1234567890123, CompletionTokens = 0,
            Error = "upstream_ended_early",
        };
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        LogFormat.WriteJson(line, output);

        var expected = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new System.Text.Json.Utf8JsonWriter(expected))
        {
            w.WriteStartObject();
            w.WriteString("ts", "2026-11-26T13:05:07.123Z");
            w.WriteString("level", "warn");
            w.WriteString("msg", "request");
            w.WriteString("request_id", requestId);
            w.WriteString("method", "POST");
            w.WriteString("path", path);
            w.WriteNumber("status", 429);
            w.WriteNumber("duration_ms", 12.346);
            w.WriteNumber("overhead_ms", -0.5);
            w.WriteString("model", model);
            w.WriteString("backend_url", "http://10.0.0.1:8000");
            w.WriteBoolean("streaming", true);
            w.WriteString("key_prefix", "ml-abcdef01");
            w.WriteNumber("prompt_tokens", 1234567890123);
            w.WriteNumber("completion_tokens", 0);
            w.WriteString("error", "upstream_ended_early");
            w.WriteEndObject();
        }
        Assert.Equal(System.Text.Encoding.UTF8.GetString(expected.WrittenSpan) + "\n", System.Text.Encoding.UTF8.GetString(output.WrittenSpan));
    }
}
