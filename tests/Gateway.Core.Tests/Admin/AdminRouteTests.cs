using Gateway.Admin;

namespace Gateway.Tests.Admin;

public sealed class AdminRouteTests
{
    [Theory]
    [InlineData("/admin/v1/models", "Models", "", "")]
    [InlineData("/admin/v1/models/m1", "Model", "m1", "")]
    [InlineData("/admin/v1/models/m1/backends", "Backends", "m1", "")]
    [InlineData("/admin/v1/models/m1/backends/b1", "Backend", "m1", "b1")]
    [InlineData("/admin/v1/keys", "Keys", "", "")]
    [InlineData("/admin/v1/keys/k1", "Key", "k1", "")]
    public void Known_paths_parse(string path, string resource, string id, string backendId) =>
        Assert.Equal(new AdminRoute(Enum.Parse<AdminResource>(resource), id, backendId), AdminRoute.Parse(path));

    [Theory]
    [InlineData("/admin/v1")]
    [InlineData("/admin/v1/")]
    [InlineData("/admin/v2/models")]
    [InlineData("/admin/v1/models/")]
    [InlineData("/admin/v1//models")]
    [InlineData("/admin/v1/Models")]
    [InlineData("/admin/v1/models/m1/backend")]
    [InlineData("/admin/v1/models/m1/backends/")]
    [InlineData("/admin/v1/models/m1/backends/b1/x")]
    [InlineData("/admin/v1/models/m1/backends/b1/x/y/z")]
    [InlineData("/admin/v1/keys/k1/x")]
    [InlineData("/admin/v1/keys//")]
    [InlineData("/v1/models")]
    public void Other_paths_do_not(string path) => Assert.Null(AdminRoute.Parse(path));

    [Theory]
    [InlineData("/admin/v1/models", "GET", true)]
    [InlineData("/admin/v1/models", "POST", true)]
    [InlineData("/admin/v1/models", "PUT", false)]
    [InlineData("/admin/v1/models/m", "PUT", true)]
    [InlineData("/admin/v1/models/m", "PATCH", false)]
    [InlineData("/admin/v1/models/m", "get", false)]
    [InlineData("/admin/v1/models/m/backends", "GET", false)]
    [InlineData("/admin/v1/models/m/backends/b", "DELETE", true)]
    [InlineData("/admin/v1/models/m/backends/b", "GET", false)]
    [InlineData("/admin/v1/keys/k", "DELETE", true)]
    [InlineData("/admin/v1/keys", "DELETE", false)]
    public void Methods_follow_the_allow_list(string path, string method, bool allowed) =>
        Assert.Equal(allowed, AdminRoute.Parse(path)!.Value.Allows(method));
}
