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
        if (!(ms >= 0) || ms >= 1e9) return ms.ToString("0.###", CultureInfo.InvariantCulture); // negative, NaN, absurd: rare
        long micros = (long)Math.Round(ms * 1000, MidpointRounding.AwayFromZero);
        long whole = micros / 1000;
        int fraction = (int)(micros % 1000), digits = fraction == 0 ? 0 : fraction % 100 == 0 ? 1 : fraction % 10 == 0 ? 2 : 3;
        if (digits == 0) return whole.ToString(CultureInfo.InvariantCulture);
        Span<char> text = stackalloc char[24];
        whole.TryFormat(text, out int n, default, CultureInfo.InvariantCulture);
        text[n++] = '.';
        text[n++] = (char)('0' + fraction / 100);
        if (digits > 1) text[n++] = (char)('0' + fraction / 10 % 10);
        if (digits > 2) text[n++] = (char)('0' + fraction % 10);
        return new string(text[..n]);
    }
}
