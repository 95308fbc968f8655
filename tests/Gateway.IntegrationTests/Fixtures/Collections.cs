using Gateway.Testing;

namespace Gateway.IntegrationTests.Fixtures;

/// <summary>Tests in <c>[Collection("postgres")]</c> share one real PostgreSQL server; isolate with <see cref="PostgresFixture.CreateDatabaseAsync"/>.</summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>
{
    public const string Name = "postgres";
}

/// <summary>Tests in <c>[Collection("redis")]</c> share one real Redis server; clean with <see cref="RedisFixture.FlushAsync"/>.</summary>
[CollectionDefinition(Name)]
public sealed class RedisCollection : ICollectionFixture<RedisFixture>
{
    public const string Name = "redis";
}

/// <summary>
/// Tests that load the machine (spawned gateway processes, hundreds of requests) run in <c>[Collection("heavy")]</c>: after the
/// parallel collections and alone, so they neither starve timing-sensitive tests (Redis limiter timeouts, health probes) nor get
/// starved by them on 2 shared cores.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HeavyCollection
{
    public const string Name = "heavy";
}
