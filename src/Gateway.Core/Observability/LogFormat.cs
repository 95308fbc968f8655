using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Gateway.Observability;

/// <summary>The two line formats of <see cref="GatewayLog"/>: JSON (one object per line) and a human text format.</summary>
internal static class LogFormat
{
    private static readonly JsonEncodedText Ts = JsonEncodedText.Encode("ts");
    private static readonly JsonEncodedText Level = JsonEncodedText.Encode("level");
    private static readonly JsonEncodedText Msg = JsonEncodedText.Encode("msg");
    private static readonly JsonEncodedText RequestId = JsonEncodedText.Encode("request_id");
    private static readonly JsonEncodedText Method = JsonEncodedText.Encode("method");
    private static readonly JsonEncodedText Path = JsonEncodedText.Encode("path");
    private static readonly JsonEncodedText Status = JsonEncodedText.Encode("status");
    private static readonly JsonEncodedText DurationMs = JsonEncodedText.Encode("duration_ms");
    private static readonly JsonEncodedText OverheadMs = JsonEncodedText.Encode("overhead_ms");
    private static readonly JsonEncodedText Model = JsonEncodedText.Encode("model");
    private static readonly JsonEncodedText BackendUrl = JsonEncodedText.Encode("backend_url");
    private static readonly JsonEncodedText Streaming = JsonEncodedText.Encode("streaming");
    private static readonly JsonEncodedText KeyPrefix = JsonEncodedText.Encode("key_prefix");
    private static readonly JsonEncodedText PromptTokens = JsonEncodedText.Encode("prompt_tokens");
    private static readonly JsonEncodedText CompletionTokens = JsonEncodedText.Encode("completion_tokens");
    private static readonly JsonEncodedText[] Levels = [JsonEncodedText.Encode("debug"), JsonEncodedText.Encode("info"), JsonEncodedText.Encode("warn"), JsonEncodedText.Encode("error")];
    private static readonly string[] TextLevels = ["DEBUG", "INFO", "WARN", "ERROR"];

    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    public static void WriteJson(in LogLine line, IBufferWriter<byte> output)
    {
        var w = t_writer ??= new Utf8JsonWriter(output);
        w.Reset(output);
        w.WriteStartObject();
        Span<byte> ts = stackalloc byte[TimestampLength];
        FormatTimestamp(line.Timestamp, ts);
        w.WriteString(Ts, ts);
        w.WriteString(Level, Levels[(int)line.Level]);
        w.WriteString(Msg, line.Msg);
        if (line.IsRequest)
        {
            w.WriteString(RequestId, line.RequestId);
            w.WriteString(Method, line.Method);
            w.WriteString(Path, line.Path);
            w.WriteNumber(Status, line.Status);
            WriteMilliseconds(w, DurationMs, line.DurationMs);
            WriteMilliseconds(w, OverheadMs, line.OverheadMs);
            w.WriteString(Model, line.Model);
            w.WriteString(BackendUrl, line.BackendUrl);
            w.WriteBoolean(Streaming, line.Streaming);
            w.WriteString(KeyPrefix, line.KeyPrefix);
            w.WriteNumber(PromptTokens, line.PromptTokens);
            w.WriteNumber(CompletionTokens, line.CompletionTokens);
            if (line.Error is not null) w.WriteString("error"u8, line.Error); // only on a stream that broke after its 200
        }
        w.WriteEndObject();
        w.Flush();
        output.Write("\n"u8);
    }

    /// <summary>To the microsecond, as the overhead header writes it: a double's shortest round-trip text cost more than the rest of the line.</summary>
    private static void WriteMilliseconds(Utf8JsonWriter w, JsonEncodedText name, double ms)
    {
        Span<byte> text = stackalloc byte[Http.GatewayHeaders.MaxMillisecondsLength];
        int n = Http.GatewayHeaders.TryFormatMilliseconds(ms, text);
        if (n < 0)
        {
            w.WriteNumber(name, Math.Round(ms, 3)); // negative or absurd: never on a real request
            return;
        }
        w.WritePropertyName(name);
        w.WriteRawValue(text[..n], skipInputValidation: true); // digits, at most one point: a valid JSON number
    }

    private const int TimestampLength = 24;

    /// <summary>"yyyy-MM-ddTHH:mm:ss.fffZ" written digit by digit: the culture-aware custom-format path cost more than the rest of the line.</summary>
    internal static void FormatTimestamp(DateTime t, Span<byte> dest)
    {
        Digits(dest[..4], t.Year); dest[4] = (byte)'-'; Digits(dest.Slice(5, 2), t.Month); dest[7] = (byte)'-'; Digits(dest.Slice(8, 2), t.Day);
        dest[10] = (byte)'T'; Digits(dest.Slice(11, 2), t.Hour); dest[13] = (byte)':'; Digits(dest.Slice(14, 2), t.Minute);
        dest[16] = (byte)':'; Digits(dest.Slice(17, 2), t.Second); dest[19] = (byte)'.'; Digits(dest.Slice(20, 3), t.Millisecond);
        dest[23] = (byte)'Z';

        static void Digits(Span<byte> d, int value)
        {
            for (int i = d.Length - 1; i >= 0; i--, value /= 10) d[i] = (byte)('0' + value % 10);
        }
    }

    public static void WriteText(in LogLine line, IBufferWriter<byte> output)
    {
        var sb = new StringBuilder(160);
        Span<byte> ts = stackalloc byte[TimestampLength];
        FormatTimestamp(line.Timestamp, ts);
        sb.Append(Encoding.ASCII.GetString(ts)).Append(' ')
          .Append(TextLevels[(int)line.Level].PadRight(5)).Append(' ');
        if (line.IsRequest)
        {
            var c = CultureInfo.InvariantCulture;
            sb.Append(line.Method).Append(' ').Append(line.Path).Append(' ').Append(line.Status)
              .Append(c, $" {line.DurationMs:0.###}ms overhead={line.OverheadMs:0.###}ms model={line.Model} backend={line.BackendUrl}")
              .Append(c, $" stream={(line.Streaming ? "true" : "false")} key={line.KeyPrefix} tokens={line.PromptTokens}/{line.CompletionTokens} id={line.RequestId}");
            if (line.Error is not null) sb.Append(" error=").Append(line.Error);
        }
        else sb.Append(line.Msg);
        // One entry, one line: a path, model name or message with a line break or an escape sequence would forge entries or
        // drive the reader's terminal (the JSON format escapes them itself).
        for (int i = 0; i < sb.Length; i++)
        {
            char ch = sb[i];
            if (ch >= 0x20 && ch != 0x7f) continue;
            var escaped = ch switch { '\n' => "\\n", '\r' => "\\r", '\t' => "\\t", _ => $"\\x{(int)ch:x2}" };
            sb.Remove(i, 1).Insert(i, escaped);
            i += escaped.Length - 1;
        }
        sb.Append('\n');
        var text = sb.ToString();
        var span = output.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        output.Advance(Encoding.UTF8.GetBytes(text, span));
    }
}
