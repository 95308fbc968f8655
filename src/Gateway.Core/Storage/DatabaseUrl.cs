using Npgsql;

namespace Gateway.Storage;

/// <summary>
/// <c>database.url</c> comes in the seed's URL form (<c>postgres://user:pass@host:5432/db?sslmode=disable</c>) or as an Npgsql
/// connection string (<c>Host=…;Database=…</c>); Npgsql only understands the latter.
/// </summary>
public static class DatabaseUrl
{
    public static string ToConnectionString(string url)
    {
        if (!url.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) && !url.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
        {
            try { return new NpgsqlConnectionStringBuilder(url).ConnectionString; }
            catch (ArgumentException e) { throw new FormatException($"database.url is neither a postgres:// URL nor a connection string: {e.Message}"); }
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
            throw new FormatException("database.url is not a valid postgres:// URL");
        var csb = new NpgsqlConnectionStringBuilder { Host = uri.Host.Trim('[', ']') };
        if (uri.Port > 0) csb.Port = uri.Port;
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            csb.Username = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            if (colon >= 0) csb.Password = Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
        }
        var db = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        if (db.Length > 0) csb.Database = db;

        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var key = Uri.UnescapeDataString(eq < 0 ? pair : pair[..eq]);
            var value = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..]);
            switch (key)
            {
                case "sslmode":
                    csb.SslMode = value switch
                    {
                        "disable" => SslMode.Disable,
                        "allow" => SslMode.Allow,
                        "prefer" => SslMode.Prefer,
                        "require" => SslMode.Require,
                        "verify-ca" => SslMode.VerifyCA,
                        "verify-full" => SslMode.VerifyFull,
                        _ => throw new FormatException($"database.url: unknown sslmode '{value}'"),
                    };
                    break;
                case "connect_timeout":
                    csb.Timeout = int.TryParse(value, out var t) && t >= 0 ? t : throw new FormatException("database.url: connect_timeout must be seconds");
                    break;
                case "application_name":
                    csb.ApplicationName = value;
                    break;
                default:
                    throw new FormatException($"database.url: unsupported parameter '{key}'");
            }
        }
        return csb.ConnectionString;
    }

    /// <summary>
    /// The AOT-friendly slim data source with only what the stores use: arrays (text[]), TLS, and statements auto-prepared
    /// after a few uses (every store query is a fixed text, so they all qualify).
    /// </summary>
    public static NpgsqlDataSource CreateDataSource(string url, int maxPoolSize = 25)
    {
        var builder = new NpgsqlSlimDataSourceBuilder(ToConnectionString(url));
        if (builder.ConnectionStringBuilder.MaxAutoPrepare == 0) builder.ConnectionStringBuilder.MaxAutoPrepare = 32;
        if (builder.ConnectionStringBuilder.MaxPoolSize == 100) builder.ConnectionStringBuilder.MaxPoolSize = Math.Max(1, maxPoolSize);
        builder.EnableArrays();
        builder.EnableTransportSecurity();
        return builder.Build();
    }
}
