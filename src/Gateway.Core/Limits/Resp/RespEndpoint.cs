namespace Gateway.Limits.Resp;

/// <summary>Where the loop client connects, and how it logs in: a plain-TCP REDIS_URL, parsed as <see cref="RedisConnection"/> does.</summary>
internal sealed record RespEndpoint(string Host, int Port, string? User, string? Password, int Database)
{
    /// <summary>
    /// <c>redis://[[user]:password@]host[:port][/db]</c> or a bare <c>host[:port]</c>; null for anything else (rediss:// is TLS,
    /// a StackExchange.Redis option string may name several servers, sentinel or TLS): those stay with StackExchange.Redis.
    /// </summary>
    public static RespEndpoint? TryParse(string url)
    {
        url = url.Trim();
        bool scheme = url.StartsWith("redis://", StringComparison.OrdinalIgnoreCase);
        if (!scheme && (url.Contains("://", StringComparison.Ordinal) || url.IndexOfAny([',', '=', '@', '/', '?', ' ']) >= 0)) return null;
        if (!Uri.TryCreate(scheme ? url : "redis://" + url, UriKind.Absolute, out var uri) || uri.Host.Length == 0) return null;
        if (uri.Query.Length > 0 || uri.Fragment.Length > 0) return null;
        string? user = null, password = null;
        if (uri.UserInfo.Length > 0)
        {
            var parts = Uri.UnescapeDataString(uri.UserInfo).Split(':', 2);
            if (parts.Length == 2) { if (parts[0].Length > 0) user = parts[0]; password = parts[1]; }
            else password = parts[0];
        }
        int db = 0;
        if (uri.AbsolutePath.Trim('/') is { Length: > 0 } path && !int.TryParse(path, out db)) return null;
        return new RespEndpoint(uri.IdnHost.Trim('[', ']'), uri.Port > 0 ? uri.Port : 6379, user, password, db);
    }

    public override string ToString() => $"{Host}:{Port}";
}
