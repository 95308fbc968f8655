using System.Globalization;

namespace Gateway.Http;

/// <summary>Header names the gateway sets or reads beyond the standard ones in <see cref="Microsoft.Net.Http.Headers.HeaderNames"/>.</summary>
public static class GatewayHeaders
{
    public const string RequestId = "X-Request-ID";
    public const string AccelBuffering = "X-Accel-Buffering";
    /// <summary>Milliseconds the gateway itself spent on the request, upstream waits excluded (streams: up to the first byte).</summary>
    public const string OverheadMs = "X-Gateway-Overhead-Ms";

    /// <summary>
    /// Milliseconds to the microsecond with trailing zeros dropped ("0.101", "2.5", "3"): what ToString("0.###") gives, without
    /// its custom-format parser on every response.
    /// </summary>
    public static string FormatMilliseconds(double ms)
    {
        Span<byte> text = stackalloc byte[MaxMillisecondsLength];
        int n = TryFormatMilliseconds(ms, text);
        return n < 0 ? ms.ToString("0.###", CultureInfo.InvariantCulture) : System.Text.Encoding.ASCII.GetString(text[..n]);
    }

    /// <summary>The longest text <see cref="TryFormatMilliseconds"/> writes: 9 digits, a point, 3 digits (or 10 digits when rounding reaches 10⁹).</summary>
    public const int MaxMillisecondsLength = 13;

    /// <summary>
    /// <see cref="FormatMilliseconds"/> as ASCII into <paramref name="destination"/>; returns its length, or -1 for a negative, NaN or
    /// absurd (≥ 10⁹ ms) value, which the caller formats the slow way.
    /// </summary>
    public static int TryFormatMilliseconds(double ms, Span<byte> destination)
    {
        if (!(ms >= 0) || ms >= 1e9) return -1; // rare
        long micros = (long)Math.Round(ms * 1000, MidpointRounding.AwayFromZero);
        long whole = micros / 1000;
        int fraction = (int)(micros % 1000), digits = fraction == 0 ? 0 : fraction % 100 == 0 ? 1 : fraction % 10 == 0 ? 2 : 3;
        whole.TryFormat(destination, out int n, default, CultureInfo.InvariantCulture);
        if (digits == 0) return n;
        destination[n++] = (byte)'.';
        destination[n++] = (byte)('0' + fraction / 100);
        if (digits > 1) destination[n++] = (byte)('0' + fraction / 10 % 10);
        if (digits > 2) destination[n++] = (byte)('0' + fraction % 10);
        return n;
    }
}
