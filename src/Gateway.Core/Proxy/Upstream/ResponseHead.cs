using System.Text;

namespace Gateway.Proxy.Upstream;

/// <summary>The parts of a response head the client acts on; offsets point into the bytes that were parsed.</summary>
internal struct ResponseHead
{
    public int StatusCode;

    /// <summary>Bytes of the head, through its empty line; the body starts right after.</summary>
    public int Length;

    /// <summary>-1 when the response gave none.</summary>
    public long ContentLength;

    /// <summary>Transfer-Encoding ends in <c>chunked</c>.</summary>
    public bool Chunked;

    /// <summary>Transfer-Encoding present but not ending in <c>chunked</c>: the body ends when the server closes (RFC 9112 §6.3).</summary>
    public bool OtherTransferCoding;

    public bool ConnectionClose;
    public bool Http10;
    public int ContentTypeOffset;
    public int ContentTypeLength;
}

internal enum HeadStatus { Incomplete, Complete, Invalid }

/// <summary>
/// Parses an HTTP/1.x response head from raw bytes without allocating: the status line, then only the headers that decide framing
/// and reuse (Content-Length, Transfer-Encoding, Connection) and the Content-Type the caller relays. Strict where leniency would let
/// a broken or hostile upstream confuse the framing (conflicting lengths, line folding, bare CR); lenient about bare LF line ends.
/// </summary>
internal static class ResponseHeadParser
{
    private static ReadOnlySpan<byte> HttpPrefix => "HTTP/1."u8;

    /// <summary>
    /// <see cref="HeadStatus.Incomplete"/> until the empty line that ends the head is in <paramref name="input"/>; the caller bounds
    /// how long it keeps reading. <paramref name="error"/> is a constant string (no allocation) when the head is invalid.
    /// </summary>
    public static HeadStatus TryParse(ReadOnlySpan<byte> input, out ResponseHead head, out string? error)
    {
        head = default;
        head.ContentLength = -1;
        error = null;

        int lf = input.IndexOf((byte)'\n');
        if (lf < 0)
        {
            // Fail fast on a server that does not speak HTTP/1.x at all instead of waiting for a line end that may never come.
            var start = input[..Math.Min(input.Length, HttpPrefix.Length)];
            if (!HttpPrefix.StartsWith(start)) return Fail("the response does not start with HTTP/1.x", out error);
            return HeadStatus.Incomplete;
        }
        if (!ParseStatusLine(TrimCr(input[..lf]), ref head)) return Fail("malformed status line", out error);

        int pos = lf + 1;
        while (true)
        {
            lf = input[pos..].IndexOf((byte)'\n');
            if (lf < 0) return HeadStatus.Incomplete;
            int lineStart = pos;
            var line = TrimCr(input.Slice(pos, lf));
            pos += lf + 1;
            if (line.IsEmpty)
            {
                head.Length = pos;
                if (head.Chunked && head.ContentLength >= 0) head.ConnectionClose = true; // RFC 9112 §6.3: chunked wins, then close
                return HeadStatus.Complete;
            }
            if (line[0] is (byte)' ' or (byte)'\t') return Fail("obsolete header line folding", out error);
            if (line.IndexOfAny((byte)'\r', (byte)0) >= 0) return Fail("bare CR or NUL in a header line", out error);
            int colon = line.IndexOf((byte)':');
            if (colon <= 0) return Fail("header line without a name", out error);
            var name = line[..colon];
            if (name.IndexOfAny((byte)' ', (byte)'\t') >= 0) return Fail("whitespace in a header name", out error);

            var rest = line[(colon + 1)..];
            int leading = rest.Length - rest.TrimStart(" \t"u8).Length;
            var value = rest[leading..].TrimEnd(" \t"u8);
            if (!Apply(name, value, lineStart + colon + 1 + leading, ref head, out error)) return HeadStatus.Invalid;
        }
    }

    private static bool Apply(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int valueOffset, ref ResponseHead head, out string? error)
    {
        error = null;
        switch (name.Length)
        {
            case 14 when Ascii.EqualsIgnoreCase(name, "content-length"u8):
                if (!TryParseLength(value, out long length)) { error = "invalid Content-Length"; return false; }
                if (head.ContentLength >= 0 && head.ContentLength != length) { error = "conflicting Content-Length headers"; return false; }
                head.ContentLength = length;
                return true;
            case 17 when Ascii.EqualsIgnoreCase(name, "transfer-encoding"u8):
                // Only the last coding decides the framing; a later header line appends to earlier ones.
                int comma = value.LastIndexOf((byte)',');
                var last = (comma < 0 ? value : value[(comma + 1)..]).Trim(" \t"u8);
                head.Chunked = Ascii.EqualsIgnoreCase(last, "chunked"u8);
                head.OtherTransferCoding = !head.Chunked;
                return true;
            case 10 when Ascii.EqualsIgnoreCase(name, "connection"u8):
                if (HasToken(value, "close"u8)) head.ConnectionClose = true;
                return true;
            case 12 when Ascii.EqualsIgnoreCase(name, "content-type"u8):
                head.ContentTypeOffset = valueOffset;
                head.ContentTypeLength = value.Length;
                return true;
            default:
                return true;
        }
    }

    /// <summary><c>HTTP/1.x SSS[ reason]</c>; the reason phrase is free text and ignored.</summary>
    private static bool ParseStatusLine(ReadOnlySpan<byte> line, ref ResponseHead head)
    {
        if (line.Length < 12 || !line.StartsWith(HttpPrefix)) return false;
        if (!char.IsAsciiDigit((char)line[7]) || line[8] != ' ') return false;
        int status = 0;
        for (int i = 9; i < 12; i++)
        {
            if (!char.IsAsciiDigit((char)line[i])) return false;
            status = status * 10 + (line[i] - '0');
        }
        // RFC 9110 statuses are 100–599; a "999" relayed as it is would reach clients that expect HTTP's classes.
        if (status is < 100 or > 599 || (line.Length > 12 && line[12] != ' ')) return false;
        head.StatusCode = status;
        head.Http10 = line[7] == '0';
        return true;
    }

    private static bool TryParseLength(ReadOnlySpan<byte> value, out long length)
    {
        length = 0;
        if (value.IsEmpty || value.Length > 18) return false; // 18 digits cannot overflow a long
        foreach (var b in value)
        {
            if (!char.IsAsciiDigit((char)b)) return false;
            length = length * 10 + (b - '0');
        }
        return true;
    }

    private static bool HasToken(ReadOnlySpan<byte> list, ReadOnlySpan<byte> token)
    {
        while (!list.IsEmpty)
        {
            int comma = list.IndexOf((byte)',');
            var item = (comma < 0 ? list : list[..comma]).Trim(" \t"u8);
            if (Ascii.EqualsIgnoreCase(item, token)) return true;
            list = comma < 0 ? default : list[(comma + 1)..];
        }
        return false;
    }

    private static ReadOnlySpan<byte> TrimCr(ReadOnlySpan<byte> line) => line.Length > 0 && line[^1] == '\r' ? line[..^1] : line;

    private static HeadStatus Fail(string message, out string? error)
    {
        error = message;
        return HeadStatus.Invalid;
    }
}
