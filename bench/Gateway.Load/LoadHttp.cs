using System.Net;
using System.Net.Sockets;

namespace Gateway.Load;

/// <summary>The load tool's HTTP stack: one SocketsHttpHandler, no proxy, no connection cap, optional source-address spreading.</summary>
internal static class LoadHttp
{
    /// <summary>
    /// <paramref name="sourceAddresses"/> &gt; 1 binds each new connection to 127.0.0.1, 127.0.0.2, … in turn. A TCP connection is
    /// identified by (source IP, source port, destination IP, destination port); with one source address every connection to the
    /// gateway draws from the same ~28,000 ephemeral ports (net.ipv4.ip_local_port_range), so thousands of streams plus TIME_WAIT
    /// sockets run out. Each extra loopback source address (all of 127.0.0.0/8 is on lo on Linux) adds a full port range.
    /// </summary>
    public static HttpClient Create(int sourceAddresses, TimeSpan timeout)
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            UseCookies = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            // One connection per concurrent request (HTTP/1.1); the load level, not the pool, must decide concurrency.
            MaxConnectionsPerServer = int.MaxValue,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            ConnectTimeout = TimeSpan.FromSeconds(10),
        };
        if (sourceAddresses > 1)
        {
            var next = -1;
            handler.ConnectCallback = async (context, cancellationToken) =>
            {
                var index = (uint)Interlocked.Increment(ref next) % (uint)sourceAddresses;
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    socket.Bind(new IPEndPoint(SourceAddress((int)index), 0));
                    await socket.ConnectAsync(context.DnsEndPoint, cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
        }
        return new HttpClient(handler) { Timeout = timeout };
    }

    /// <summary>127.0.0.1 for index 0, 127.0.0.2 for 1, …, 127.0.1.0 for 255: every one of them is on lo (127.0.0.0/8).</summary>
    public static IPAddress SourceAddress(int index)
    {
        var host = index + 1;
        return new IPAddress(new byte[] { 127, (byte)(host >> 16), (byte)(host >> 8), (byte)host });
    }
}
