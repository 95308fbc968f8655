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

    private const int DefaultConnectSeconds = 15, DefaultCommandSeconds = 30;
    public const int ConnectSeconds = 5, CommandSeconds = 10;

    /// <summary>
    /// The AOT-friendly slim data source with only what the stores use: arrays (text[]), TLS, and statements auto-prepared
    /// after a few uses (every store query is a fixed text, so they all qualify).
    /// </summary>
    public static NpgsqlDataSource CreateDataSource(string url, int maxPoolSize = 25)
    {
        var builder = new NpgsqlSlimDataSourceBuilder(ToConnectionString(url));
        var csb = builder.ConnectionStringBuilder;
        if (csb.MaxAutoPrepare == 0) csb.MaxAutoPrepare = 32;
        if (csb.MaxPoolSize == 100) csb.MaxPoolSize = Math.Max(1, maxPoolSize);
        // Npgsql's defaults (15 s to connect, 30 s per command) held an admin call ~45 s against a hung server before its 503.
        // Every statement here is a key-sized read or write; migrations set their own limit. A value in the URL wins.
        if (csb.Timeout == DefaultConnectSeconds) csb.Timeout = ConnectSeconds;
        if (csb.CommandTimeout == DefaultCommandSeconds) csb.CommandTimeout = CommandSeconds;
        builder.EnableArrays();
        builder.EnableTransportSecurity();
        return builder.Build();
    }
}
