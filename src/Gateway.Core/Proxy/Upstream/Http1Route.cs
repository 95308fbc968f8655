using System.Text;

namespace Gateway.Proxy.Upstream;

/// <summary>
/// One upstream URL (backend × endpoint path), resolved once when the backend is configured: its connection pool and the request
/// head bytes that never change (<c>POST {path} HTTP/1.1</c>, Host, Content-Type), so a request formats only its length and id.
/// </summary>
public sealed class Http1Route
{
    internal Http1Route(Uri uri, Http1Pool pool)
    {
        Uri = uri;
        Pool = pool;
        // Uri.PathAndQuery is already percent-encoded ASCII; Host is the authority as SocketsHttpHandler sends it (port only when not 80).
        var host = uri.IsDefaultPort ? uri.IdnHost : $"{uri.IdnHost}:{uri.Port}";
        if (uri.HostNameType == UriHostNameType.IPv6 && !host.StartsWith('[')) host = uri.IsDefaultPort ? $"[{uri.IdnHost}]" : $"[{uri.IdnHost}]:{uri.Port}";
        Prefix = Encoding.ASCII.GetBytes($"POST {uri.PathAndQuery} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: ");
    }

    public Uri Uri { get; }

    internal Http1Pool Pool { get; }

    /// <summary>Everything of the request head up to the Content-Length value.</summary>
    internal byte[] Prefix { get; }

    public override string ToString() => Uri.ToString();
}
