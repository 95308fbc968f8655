using Gateway.Net;

namespace Gateway.Http.Transport;

/// <summary>
/// The event loop that watches a client connection, on the connection's features (Kestrel's request features fall back to them).
/// A request that runs off the loops still has a home this way: Kestrel starts a connection's first request on the thread pool,
/// and with server.inline_io off every request runs there.
/// </summary>
internal interface IEventLoopFeature
{
    EventLoop Loop { get; }
}
