namespace Gateway.Http;

/// <summary>Header names the gateway sets or reads beyond the standard ones in <see cref="Microsoft.Net.Http.Headers.HeaderNames"/>.</summary>
public static class GatewayHeaders
{
    public const string RequestId = "X-Request-ID";
    public const string AccelBuffering = "X-Accel-Buffering";
    /// <summary>Milliseconds the gateway itself spent on the request, upstream waits excluded (streams: up to the first byte).</summary>
    public const string OverheadMs = "X-Gateway-Overhead-Ms";
}
