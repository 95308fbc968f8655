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

    /// <summary>The store, or a <see cref="StoreException"/> (Unavailable) whose message is fit for one line on stderr.</summary>
    public static async Task<IStore> OpenAsync(GatewayOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.DatabaseUrl)) return EmbeddedStore.Open(options.DataDir);

        Npgsql.NpgsqlDataSource dataSource;
        try { dataSource = DatabaseUrl.CreateDataSource(options.DatabaseUrl, 2); }
        catch (FormatException e) { throw new StoreException(StoreErrorKind.Validation, e.Message); }
        try
        {
            // Same rule as serve: never write through a schema this binary does not expect.
            if (!await new Migrator(dataSource).IsUpToDateAsync())
                throw new StoreException(StoreErrorKind.Unavailable, "the database schema is behind this binary: run 'gateway migrate up' first");
        }
        catch (Exception e) when (e is not StoreException)
        {
            await dataSource.DisposeAsync();
            throw PostgresErrors.Map(e);
        }
        catch
        {
            await dataSource.DisposeAsync();
            throw;
        }
        return new PostgresStore(dataSource, ownsDataSource: true);
    }
}
