using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Gateway.Observability;

/// <summary>The two line formats of <see cref="GatewayLog"/>: JSON (one object per line) and a human text format.</summary>
internal static class LogFormat
{
    private static readonly JsonEncodedText[] Levels = [JsonEncodedText.Encode("debug"), JsonEncodedText.Encode("info"), JsonEncodedText.Encode("warn"), JsonEncodedText.Encode("error")];
    private static readonly string[] TextLevels = ["DEBUG", "INFO", "WARN", "ERROR"];

    /// <summary>
    /// One JSON object per line, written byte by byte: the same text Utf8JsonWriter gave (its default escaping, see
    /// <see cref="Escaped"/>) for less of the log thread's time per line.
    /// </summary>
    public static void WriteJson(in LogLine line, IBufferWriter<byte> output)
    {
        var w = new LineWriter(output);
        w.Raw("{\"ts\":\""u8);
        FormatTimestamp(line.Timestamp, w.Take(TimestampLength));
        w.Raw("\",\"level\":"u8);
        w.Raw(Levels[(int)line.Level].EncodedUtf8Bytes, quoted: true);
        w.Raw(",\"msg\":"u8);
        w.String(line.Msg);
        if (line.IsRequest)
        {
            w.Raw(",\"request_id\":"u8); w.String(line.RequestId);
            w.Raw(",\"method\":"u8); w.String(line.Method);
            w.Raw(",\"path\":"u8); w.String(line.Path);
            w.Raw(",\"status\":"u8); w.Number(line.Status);
            w.Raw(",\"duration_ms\":"u8); w.Milliseconds(line.DurationMs);
            w.Raw(",\"overhead_ms\":"u8); w.Milliseconds(line.OverheadMs);
            w.Raw(",\"model\":"u8); w.String(line.Model);
            w.Raw(",\"backend_url\":"u8); w.String(line.BackendUrl);
            w.Raw(line.Streaming ? ",\"streaming\":true"u8 : ",\"streaming\":false"u8);
            w.Raw(",\"key_prefix\":"u8); w.String(line.KeyPrefix);
            w.Raw(",\"prompt_tokens\":"u8); w.Number(line.PromptTokens);
            w.Raw(",\"completion_tokens\":"u8); w.Number(line.CompletionTokens);
            if (line.Error is not null) { w.Raw(",\"error\":"u8); w.String(line.Error); } // only on a stream that broke after its 200
        }
        w.Raw("}\n"u8);
    }

    /// <summary>
    /// Printable ASCII the default JSON encoder writes as it is: it escapes quotes, backslashes and the HTML-sensitive <c>&lt; &gt; &amp; ' + `</c>,
    /// as well as control characters and everything past ASCII.
    /// </summary>
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    private static readonly SearchValues<char> Escaped = SearchValues.Create("\"\\<>&'+`");

    private readonly ref struct LineWriter(IBufferWriter<byte> output)
    {
        public Span<byte> Take(int length)
        {
            var span = output.GetSpan(length)[..length];
            output.Advance(length);
            return span;
        }

        public void Raw(ReadOnlySpan<byte> bytes, bool quoted = false)
        {
            if (!quoted)
            {
                output.Write(bytes);
                return;
            }
            var span = Take(bytes.Length + 2);
            span[0] = (byte)'"';
            bytes.CopyTo(span[1..]);
            span[^1] = (byte)'"';
        }

        /// <summary>A JSON string (or null): plain printable ASCII is copied, anything else goes through the default encoder.</summary>
        public void String(string? value)
        {
            if (value is null)
            {
                Raw("null"u8);
                return;
            }
            var chars = value.AsSpan();
            if (chars.ContainsAnyExceptInRange((char)0x20, (char)0x7e) || chars.ContainsAny(Escaped))
            {
                // Rare: the writer's own escaping (a lone surrogate too, which JsonEncodedText would refuse).
                var writer = t_writer ??= new Utf8JsonWriter(output);
                writer.Reset(output);
                writer.WriteStringValue(value);
                writer.Flush();
                return;
            }
            var span = Take(chars.Length + 2);
            span[0] = (byte)'"';
            Encoding.ASCII.GetBytes(chars, span[1..]);
            span[^1] = (byte)'"';
        }

        public void Number(long value)
        {
            var span = output.GetSpan(20);
            value.TryFormat(span, out int n, default, CultureInfo.InvariantCulture);
            output.Advance(n);
        }

        /// <summary>To the microsecond, as the overhead header writes it: a double's shortest round-trip text cost more than the rest of the line.</summary>
        public void Milliseconds(double ms)
        {
            var span = output.GetSpan(32);
            int n = Http.GatewayHeaders.TryFormatMilliseconds(ms, span);
            if (n < 0) Math.Round(ms, 3).TryFormat(span, out n, default, CultureInfo.InvariantCulture); // negative or absurd: never on a real request
            output.Advance(n);
        }
    }

    private const int TimestampLength = 24;

    /// <summary>"yyyy-MM-ddTHH:mm:ss.fffZ" written digit by digit: the culture-aware custom-format path cost more than the rest of the line.</summary>
    internal static void FormatTimestamp(DateTime t, Span<byte> dest)
    {
        // The date's parts in one calendar computation (Year, Month and Day each redo it), the time's from the ticks of the day.
        var (year, month, day) = DateOnly.FromDateTime(t);
        long ms = t.Ticks % TimeSpan.TicksPerDay / TimeSpan.TicksPerMillisecond;
        Digits(dest[..4], year); dest[4] = (byte)'-'; Digits(dest.Slice(5, 2), month); dest[7] = (byte)'-'; Digits(dest.Slice(8, 2), day);
        dest[10] = (byte)'T'; Digits(dest.Slice(11, 2), (int)(ms / 3_600_000)); dest[13] = (byte)':'; Digits(dest.Slice(14, 2), (int)(ms / 60_000 % 60));
        dest[16] = (byte)':'; Digits(dest.Slice(17, 2), (int)(ms / 1000 % 60)); dest[19] = (byte)'.'; Digits(dest.Slice(20, 3), (int)(ms % 1000));
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
