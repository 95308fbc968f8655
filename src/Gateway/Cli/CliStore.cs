using Gateway.Config;
using Gateway.Storage;

namespace Gateway.Cli;

/// <summary>Opens the store the configuration selects, for CLI commands: PostgreSQL when database.url is set, else the state file.</summary>
internal static class CliStore
{
    /// <summary>Reads FILE (or ./gateway.toml if present, else the environment alone), as <c>serve</c> does.</summary>
    public static GatewayOptions LoadOptions(string? configPath)
    {
        var path = configPath ?? (File.Exists("gateway.toml") ? "gateway.toml" : null);
        return path is null ? ConfigLoader.Load("", "environment") : ConfigLoader.LoadFile(path);
    }

    /// <summary>The store (a small pool: one command, one connection), or a <see cref="StoreException"/> fit for one line on stderr.</summary>
    public static Task<IStore> OpenAsync(GatewayOptions options) => StoreFactory.OpenAsync(options, maxPoolSize: 2);
}
