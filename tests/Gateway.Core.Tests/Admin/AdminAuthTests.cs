using Gateway.Admin;
using Microsoft.Extensions.Primitives;

namespace Gateway.Tests.Admin;

public sealed class AdminAuthTests
{
    private static readonly AdminAuth Auth = new("s3cret-admin-key");

    [Fact]
    public void The_configured_key_passes() => Assert.Null(Auth.Check(new StringValues("s3cret-admin-key")));

    [Theory]
    [InlineData("s3cret-admin-ke")]
    [InlineData("s3cret-admin-keyy")]
    [InlineData("S3CRET-ADMIN-KEY")]
    [InlineData(" s3cret-admin-key")]
    [InlineData("Bearer s3cret-admin-key")]
    [InlineData("x")]
    public void Other_keys_are_wrong(string key)
    {
        var error = Auth.Check(new StringValues(key));
        Assert.Equal(401, error?.Status);
        Assert.Equal("invalid_admin_key", error?.Code);
        Assert.Equal("Incorrect admin key provided.", error?.Message);
    }

    [Fact]
    public void A_missing_header_is_named_and_two_headers_are_refused()
    {
        Assert.Contains("Missing", Auth.Check(StringValues.Empty)?.Message, StringComparison.Ordinal);
        Assert.Contains("Missing", Auth.Check(new StringValues(""))?.Message, StringComparison.Ordinal);
        Assert.Equal(401, Auth.Check(new StringValues(["s3cret-admin-key", "s3cret-admin-key"]))?.Status);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  ")]
    public void No_configured_key_disables_instead_of_opening(string? configured)
    {
        var auth = new AdminAuth(configured);
        Assert.False(auth.Enabled);
        Assert.NotNull(auth.Check(new StringValues(configured ?? "")));
        Assert.NotNull(auth.Check(StringValues.Empty));
    }
}
