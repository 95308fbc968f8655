using Gateway.Auth;
using Gateway.Config;
using Gateway.Routing;

namespace Gateway.Tests.Auth;

public sealed class AuthenticatorTests
{
    private static readonly string Good = "ml-" + new string('1', 64);
    private static readonly string Revoked = "ml-" + new string('2', 64);
    private static readonly string Expired = "ml-" + new string('3', 64);
    private static readonly Snapshot Snapshot = new([], [
        KeyEntry.Create(new KeyConfig { Name = "good", KeyHashHex = ApiKey.HashHex(Good) }),
        KeyEntry.Create(new KeyConfig { Name = "revoked", KeyHashHex = ApiKey.HashHex(Revoked), Active = false }),
        KeyEntry.Create(new KeyConfig { Name = "expired", KeyHashHex = ApiKey.HashHex(Expired), ExpiresAt = DateTimeOffset.UtcNow.AddMinutes(-1) }),
    ], 1);

    [Theory]
    [InlineData("Bearer {good}")]
    [InlineData("bearer {good}")]
    [InlineData("BEARER   {good}  ")]
    public void Accepts_a_known_key_with_any_scheme_case(string header)
    {
        Assert.Null(Authenticator.Authenticate(header.Replace("{good}", Good), Snapshot, DateTimeOffset.UtcNow, out var key));
        Assert.Equal("good", key!.Name);
    }

    [Theory]
    [InlineData(null, "Missing API key")]
    [InlineData("", "Missing API key")]
    [InlineData("Basic abc", "Bearer scheme")]
    [InlineData("Bearer", "Missing API key")]
    [InlineData("Bearer ", "Missing API key")]
    [InlineData("Bearerml-1", "Bearer scheme")]
    [InlineData("Bearer sk-123", "Incorrect API key")]
    [InlineData("Bearer ml-123", "Incorrect API key")]
    [InlineData("Bearer ml-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Incorrect API key")]
    [InlineData("Bearer ml-ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "Incorrect API key")]
    [InlineData("Bearer ml-é000000000000000000000000000000000000000000000000000000000000000", "Incorrect API key")]
    [InlineData("Bearer {revoked}", "revoked")]
    [InlineData("Bearer {expired}", "expired")]
    public void Rejects_with_401_invalid_api_key(string? header, string message)
    {
        header = header?.Replace("{revoked}", Revoked).Replace("{expired}", Expired);
        var error = Authenticator.Authenticate(header is null ? default : new Microsoft.Extensions.Primitives.StringValues(header), Snapshot, DateTimeOffset.UtcNow, out var key);
        Assert.Null(key);
        Assert.NotNull(error);
        Assert.Equal(401, error.Value.Status);
        Assert.Equal("authentication_error", error.Value.Type);
        Assert.Equal("invalid_api_key", error.Value.Code);
        Assert.Contains(message, error.Value.Message);
    }

    [Fact]
    public void Two_authorization_headers_are_rejected_as_such()
    {
        var error = Authenticator.Authenticate(new Microsoft.Extensions.Primitives.StringValues(["Bearer " + Good, "Bearer " + Good]), Snapshot, DateTimeOffset.UtcNow, out var key);
        Assert.Null(key);
        Assert.Contains("More than one Authorization header", error!.Value.Message); // not "Missing API key"
    }

    [Fact]
    public void Generated_keys_are_well_formed_and_distinct()
    {
        var a = ApiKey.Generate();
        Assert.True(ApiKey.IsWellFormed(a));
        Assert.NotEqual(a, ApiKey.Generate());
        Assert.Equal(ApiKey.Length, a.Length);
    }
}
