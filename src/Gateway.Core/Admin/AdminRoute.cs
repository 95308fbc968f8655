namespace Gateway.Admin;

internal enum AdminResource { Models, Model, Backends, Backend, Keys, Key }

/// <summary>
/// One admin path, parsed: <c>/admin/v1/models[/{id}[/backends[/{bid}]]]</c> or <c>/admin/v1/keys[/{id}]</c>. Ids stay text here;
/// the endpoints parse them (a malformed one is a 404, like an unknown one).
/// </summary>
internal readonly record struct AdminRoute(AdminResource Resource, string Id = "", string BackendId = "")
{
    public const string Prefix = "/admin/v1/";

    public static AdminRoute? Parse(string path)
    {
        if (!path.StartsWith(Prefix, StringComparison.Ordinal)) return null;
        var s = path.AsSpan(Prefix.Length);
        Span<Range> parts = stackalloc Range[5];
        int n = s.Split(parts, '/');
        if (n > 4) return null;
        for (int i = 0; i < n; i++)
            if (s[parts[i]].IsEmpty) return null; // "//" or a trailing slash
        var first = s[parts[0]];
        if (first.SequenceEqual("keys"))
            return n switch { 1 => new AdminRoute(AdminResource.Keys), 2 => new AdminRoute(AdminResource.Key, s[parts[1]].ToString()), _ => null };
        if (!first.SequenceEqual("models")) return null;
        if (n >= 3 && !s[parts[2]].SequenceEqual("backends")) return null;
        return n switch
        {
            1 => new AdminRoute(AdminResource.Models),
            2 => new AdminRoute(AdminResource.Model, s[parts[1]].ToString()),
            3 => new AdminRoute(AdminResource.Backends, s[parts[1]].ToString()),
            _ => new AdminRoute(AdminResource.Backend, s[parts[1]].ToString(), s[parts[3]].ToString()),
        };
    }

    /// <summary>The methods this route answers, as the <c>Allow</c> header of a 405.</summary>
    public string Allow => Resource switch
    {
        AdminResource.Models or AdminResource.Keys => "GET, POST",
        AdminResource.Model or AdminResource.Key => "GET, PUT, DELETE",
        AdminResource.Backends => "POST",
        _ => "PUT, DELETE",
    };

    public bool Allows(string method) => Allow.Split(", ").Contains(method, StringComparer.Ordinal);
}
