using Gateway.Config;

namespace Gateway.Storage;

/// <summary>Opens the store the configuration selects: PostgreSQL when <c>database.url</c> is set, else the embedded state file.</summary>
public static class StoreFactory
{
    /// <summary>
    /// The store, or a <see cref="StoreException"/> whose message is fit for one line on stderr. A PostgreSQL schema that is behind
    /// this binary is refused (Unavailable): nothing writes through a schema it does not expect.
    /// </summary>
    public static async Task<IStore> OpenAsync(GatewayOptions options, int? maxPoolSize = null, CancellationToken ct = default)
    {
        if (string.IsNullOrWhiteSpace(options.DatabaseUrl)) return EmbeddedStore.Open(options.DataDir);

        Npgsql.NpgsqlDataSource dataSource;
        try { dataSource = DatabaseUrl.CreateDataSource(options.DatabaseUrl, maxPoolSize ?? options.DatabaseMaxOpenConns); }
        catch (FormatException e) { throw new StoreException(StoreErrorKind.Validation, e.Message); }
        try
        {
            if (!await new Migrator(dataSource).IsUpToDateAsync(ct).ConfigureAwait(false))
                throw new StoreException(StoreErrorKind.Unavailable, "the database schema is behind this binary: run 'gateway migrate up' first");
        }
        catch (Exception e)
        {
            await dataSource.DisposeAsync().ConfigureAwait(false);
            if (e is StoreException) throw;
            throw PostgresErrors.Map(e);
        }
        return new PostgresStore(dataSource, ownsDataSource: true);
    }
}
