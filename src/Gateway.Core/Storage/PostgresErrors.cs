using System.Net.Sockets;
using Npgsql;

namespace Gateway.Storage;

/// <summary>Turns PostgreSQL errors into <see cref="StoreException"/>s: constraint violations are the caller's 4xx, never a 500.</summary>
public static class PostgresErrors
{
    public static StoreException Map(Exception e) => e switch
    {
        StoreException s => s,
        PostgresException pg => pg.SqlState switch
        {
            PostgresErrorCodes.UniqueViolation => Unique(pg),
            // The only foreign key is model_backends.model_id: the model vanished (or never was).
            PostgresErrorCodes.ForeignKeyViolation => new StoreException(StoreErrorKind.NotFound, "model not found", "model_id", pg),
            PostgresErrorCodes.CheckViolation => Check(pg),
            PostgresErrorCodes.NotNullViolation => new StoreException(StoreErrorKind.Validation, $"{pg.ColumnName ?? "a field"} is required", pg.ColumnName, pg),
            PostgresErrorCodes.InvalidTextRepresentation => new StoreException(StoreErrorKind.Validation, "malformed value (e.g. an id that is not a UUID)", null, pg),
            PostgresErrorCodes.StringDataRightTruncation or PostgresErrorCodes.NumericValueOutOfRange
                or PostgresErrorCodes.InvalidParameterValue => new StoreException(StoreErrorKind.Validation, "a value is out of range", null, pg),
            // Anything else from the server (lost schema, permissions, shutdown) means the store cannot serve now.
            _ => new StoreException(StoreErrorKind.Unavailable, $"database error {pg.SqlState}: {pg.MessageText}", null, pg),
        },
        NpgsqlException or SocketException or TimeoutException or IOException =>
            new StoreException(StoreErrorKind.Unavailable, "database unavailable: " + e.Message, null, e),
        _ => throw new InvalidOperationException("unexpected store failure", e),
    };

    /// <summary>
    /// The call failed on a connection that was already dead: the server ended it (shutdown or restart, 57P01–57P03, so nothing
    /// of the call ran), or, for a read, the connection broke under it (end of stream or a failed socket write).
    /// </summary>
    public static bool IsDeadConnection(Exception? e, bool read) => e switch
    {
        PostgresException pg => pg.SqlState is PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow,
        NpgsqlException { InnerException: IOException or EndOfStreamException } => read,
        _ => false,
    };

    private static StoreException Unique(PostgresException pg) => pg.ConstraintName switch
    {
        "models_name_key" => new StoreException(StoreErrorKind.Conflict, "a model with this name already exists", "name", pg),
        "model_backends_model_id_url_key" => new StoreException(StoreErrorKind.Conflict, "this model already has a backend with this url", "url", pg),
        "api_keys_key_hash_key" => new StoreException(StoreErrorKind.Conflict, "a key with this hash already exists", "key_hash", pg),
        _ => new StoreException(StoreErrorKind.Conflict, "duplicate value", null, pg),
    };

    private static StoreException Check(PostgresException pg)
    {
        var param = pg.ConstraintName switch
        {
            "model_backends_weight_check" => "weight",
            "model_backends_url_check" => "url",
            "models_name_check" or "api_keys_name_check" => "name",
            "models_model_id_check" => "model_id",
            "api_keys_key_hash_check" => "key_hash",
            "api_keys_rpm_limit_check" => "rpm_limit",
            "api_keys_tpm_limit_check" => "tpm_limit",
            _ => null,
        };
        var message = param == "weight" ? "weight must be greater than 0" : $"{param ?? "a value"} is invalid";
        return new StoreException(StoreErrorKind.Validation, message, param, pg);
    }
}
