namespace Gateway.Storage;

/// <summary>What went wrong, in the admin API's terms (validation_error → 400, not_found → 404, conflict → 409, unavailable → 503).</summary>
public enum StoreErrorKind
{
    Validation,
    NotFound,
    Conflict,
    Unavailable,
}

/// <summary>The only exception a store lets out: callers never see a raw Npgsql or I/O exception for a request's data.</summary>
public sealed class StoreException(StoreErrorKind kind, string message, string? param = null, Exception? inner = null)
    : Exception(message, inner)
{
    public StoreErrorKind Kind { get; } = kind;
    /// <summary>The request field at fault, when there is one (OpenAI's <c>param</c>).</summary>
    public string? Param { get; } = param;

    public static StoreException NotFound(string what, Guid id) => new(StoreErrorKind.NotFound, $"{what} {id} not found");
    public static StoreException Validation(string param, string message) => new(StoreErrorKind.Validation, message, param);
}
