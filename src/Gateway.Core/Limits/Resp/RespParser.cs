using System.Buffers.Text;
using System.Text;

namespace Gateway.Limits.Resp;

/// <summary>
/// RESP2 replies: +simple, -error, :integer, $bulk, *array (nested). Parses one whole reply from the start of what was read, or
/// reports that more bytes are needed; the caller keeps the bytes and tries again after the next read (our replies are tens of
/// bytes, so scanning one again is cheaper than keeping a resumable state).
/// </summary>
internal static class RespParser
{
    /// <summary>Deeper nesting than Redis ever sends is taken as garbage.</summary>
    private const int MaxDepth = 8;

    /// <summary>The longest bulk string accepted (Redis's own default limit).</summary>
    private const long MaxBulk = 512L * 1024 * 1024;

    /// <summary>
    /// The bytes one complete reply took from <paramref name="data"/> (filled into <paramref name="reply"/>), 0 when it is not all
    /// there yet. Throws <see cref="InvalidDataException"/> for bytes that are not RESP: the connection cannot be trusted after them.
    /// </summary>
    public static int TryParse(ReadOnlySpan<byte> data, out RespReply reply)
    {
        reply = default;
        int pos = 0;
        return Element(data, ref pos, 0, ref reply) ? pos : 0;
    }

    private static bool Element(ReadOnlySpan<byte> data, ref int pos, int depth, ref RespReply reply)
    {
        if (pos >= data.Length) return false;
        byte type = data[pos];
        int end = data[pos..].IndexOf("\r\n"u8);
        if (end < 0) return false;
        var line = data.Slice(pos + 1, end - 1);
        int next = pos + end + 2;
        switch (type)
        {
            case (byte)'+':
                if (depth == 0) reply.Kind = RespKind.Simple;
                pos = next;
                return true;
            case (byte)'-':
                if (depth == 0)
                {
                    reply.Kind = RespKind.Error;
                    reply.Error = Encoding.UTF8.GetString(line);
                }
                pos = next;
                return true;
            case (byte)':':
                if (depth == 0) reply.Kind = RespKind.Integer;
                reply.Add(Number(line));
                pos = next;
                return true;
            case (byte)'$':
            {
                long length = Number(line);
                if (length < 0)
                {
                    if (depth == 0) reply.Kind = RespKind.Null;
                    pos = next;
                    return true;
                }
                if (length > MaxBulk) throw new InvalidDataException($"a bulk string of {length} bytes");
                if (data.Length - next < length + 2) return false;
                if (data[next + (int)length] != '\r' || data[next + (int)length + 1] != '\n') throw new InvalidDataException("a bulk string without its CRLF");
                if (depth == 0) reply.Kind = RespKind.Bulk;
                pos = next + (int)length + 2;
                return true;
            }
            case (byte)'*':
            {
                long count = Number(line);
                if (depth == 0) reply.Kind = count < 0 ? RespKind.Null : RespKind.Array;
                if (depth >= MaxDepth) throw new InvalidDataException("arrays nested too deep");
                int at = next;
                for (long i = 0; i < count; i++)
                    if (!Element(data, ref at, depth + 1, ref reply)) return false;
                pos = at;
                return true;
            }
            default:
                throw new InvalidDataException($"a reply starting with 0x{type:x2}");
        }
    }

    private static long Number(ReadOnlySpan<byte> line) =>
        Utf8Parser.TryParse(line, out long value, out int used) && used == line.Length ? value : throw new InvalidDataException("a malformed number");
}
