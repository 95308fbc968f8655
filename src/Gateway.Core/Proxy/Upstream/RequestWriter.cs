using System.Text;

namespace Gateway.Proxy.Upstream;

/// <summary>
/// Formats the per-request part of the head after the route's pre-encoded prefix: the length, X-Request-ID, extra headers. Values
/// are checked first (<see cref="Measure"/>), before a connection is taken, so a bad header never leaves half a request on a socket.
/// </summary>
internal static class RequestWriter
{
    private static ReadOnlySpan<byte> Crlf => "\r\n"u8;
    private static ReadOnlySpan<byte> RequestIdName => "X-Request-ID: "u8;
    private static ReadOnlySpan<byte> Separator => ": "u8;

    /// <summary>The head's length in bytes; throws <see cref="ArgumentException"/> for a header that would corrupt the request.</summary>
    public static int Measure(Http1Route route, int bodyLength, string? requestId, IReadOnlyList<KeyValuePair<string, string>>? headers)
    {
        int length = route.Prefix.Length + CountDigits(bodyLength) + Crlf.Length;
        if (requestId is not null)
        {
            CheckValue(requestId);
            length += RequestIdName.Length + requestId.Length + Crlf.Length;
        }
        if (headers is not null)
        {
            for (int i = 0; i < headers.Count; i++)
            {
                var (name, value) = headers[i];
                CheckName(name);
                CheckValue(value);
                length += name.Length + Separator.Length + value.Length + Crlf.Length;
            }
        }
        return length + Crlf.Length;
    }

    /// <summary>Writes the head measured by <see cref="Measure"/> into <paramref name="destination"/>; returns its length.</summary>
    public static int Write(Span<byte> destination, Http1Route route, int bodyLength, string? requestId, IReadOnlyList<KeyValuePair<string, string>>? headers)
    {
        route.Prefix.CopyTo(destination);
        int n = route.Prefix.Length;
        bodyLength.TryFormat(destination[n..], out int digits);
        n += digits;
        n += Put(destination[n..], Crlf);
        if (requestId is not null)
        {
            n += Put(destination[n..], RequestIdName);
            n += Encoding.Latin1.GetBytes(requestId, destination[n..]);
            n += Put(destination[n..], Crlf);
        }
        if (headers is not null)
        {
            for (int i = 0; i < headers.Count; i++)
            {
                var (name, value) = headers[i];
                n += Encoding.Latin1.GetBytes(name, destination[n..]);
                n += Put(destination[n..], Separator);
                n += Encoding.Latin1.GetBytes(value, destination[n..]);
                n += Put(destination[n..], Crlf);
            }
        }
        return n + Put(destination[n..], Crlf);
    }

    private static int Put(Span<byte> destination, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(destination);
        return bytes.Length;
    }

    private static int CountDigits(int value)
    {
        int digits = 1;
        while (value >= 10) { value /= 10; digits++; }
        return digits;
    }

    /// <summary>A token (RFC 9110 §5.6.2), and not one of the headers this client owns: a caller's Content-Length would break the framing.</summary>
    private static void CheckName(string name)
    {
        if (name.Length == 0) throw new ArgumentException("A header name is empty.");
        foreach (char c in name)
        {
            if (c <= ' ' || c >= 0x7F || "\"(),/:;<=>?@[\\]{}".Contains(c))
                throw new ArgumentException($"The header name '{name}' is not an HTTP token.");
        }
        if (name.Equals("Host", StringComparison.OrdinalIgnoreCase) || name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) ||
            name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase) || name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) ||
            name.Equals("Connection", StringComparison.OrdinalIgnoreCase) || name.Equals("X-Request-ID", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"The header '{name}' is set by the client itself.");
    }

    /// <summary>Latin-1 without CR, LF or NUL: anything else could end the header early and smuggle a second request.</summary>
    private static void CheckValue(string value)
    {
        foreach (char c in value)
        {
            if (c > 0xFF || c == '\r' || c == '\n' || c == '\0')
                throw new ArgumentException("A header value contains CR, LF, NUL or a character outside Latin-1.");
        }
    }
}
