using Gateway.Testing;

namespace Gateway.IntegrationTests.Proxy;

[CollectionDefinition("gateway")]
public sealed class GatewayCollection : ICollectionFixture<GatewayFixture>;
