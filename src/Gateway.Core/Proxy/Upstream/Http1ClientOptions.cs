namespace Gateway.Proxy.Upstream;

/// <summary>Settings of <see cref="Http1Client"/>; the defaults match the gateway's <c>[proxy]</c> defaults.</summary>
public sealed record Http1ClientOptions
{
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a keep-alive connection may sit in the pool. Below vLLM's (uvicorn's) 5 s keep-alive, so the client closes first
    /// and almost never sends on a socket the server is closing.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary>A response head (status line + headers) larger than this is refused: vLLM's are ~200 bytes.</summary>
    public int MaxResponseHeaderBytes { get; init; } = 32 * 1024;

    /// <summary>
    /// How long a backend's resolved addresses serve new connections before the name is resolved again. The AOT binary's resolver is
    /// a blocking getaddrinfo on a pool thread (it imports no getaddrinfo_a): a burst of new connections must not each wait for one.
    /// </summary>
    public TimeSpan AddressLifetime { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Idle connections kept per endpoint and event loop; a connection released beyond this is closed instead.</summary>
    public int MaxIdleConnectionsPerEndpoint { get; init; } = 1024;
}
