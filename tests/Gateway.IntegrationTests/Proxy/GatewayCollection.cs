using Gateway.Config;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Proxy;

[CollectionDefinition("gateway")]
public sealed class GatewayCollection : ICollectionFixture<GatewayFixture>;

/// <summary>
/// The same gateway with <c>proxy.upstream_client = "sockets"</c> and <c>server.transport = "sockets"</c> (the defaults are "http1"
/// and "loop"), so the proxy, streaming and transport tests run over both upstream clients and both of Kestrel's transports (each
/// test class has a concrete subclass per collection). A collection of its own: it runs beside "gateway", not after it.
/// </summary>
[CollectionDefinition("gateway-sockets")]
public sealed class SocketsGatewayCollection : ICollectionFixture<SocketsGatewayFixture>;

public sealed class SocketsGatewayFixture : GatewayFixture
{
    protected override GatewayOptions Configure(GatewayOptions options) =>
        options with
        {
            Proxy = options.Proxy with { UpstreamClient = UpstreamClientKind.Sockets },
            Server = options.Server with { Transport = ServerTransport.Sockets },
        };
}
