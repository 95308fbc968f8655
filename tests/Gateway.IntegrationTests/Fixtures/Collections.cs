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
