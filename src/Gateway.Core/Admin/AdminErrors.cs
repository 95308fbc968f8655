using Gateway.Http;
using Gateway.Storage;

namespace Gateway.Admin;

/// <summary>An admin request that cannot be served; <see cref="AdminApi"/> answers it with <see cref="Error"/>.</summary>
public sealed class AdminException(OpenAiError error) : Exception(error.Message)
{
    public OpenAiError Error { get; } = error;
}

/// <summary>The admin API's error bodies: OpenAI-shaped, with the codes of the architecture's error table.</summary>
internal static class AdminErrors
{
    public const string InvalidRequest = "invalid_request_error";

    public static AdminException Validation(string? param, string message) => new(new(400, InvalidRequest, "validation_error", message, param));

    public static AdminException NotFound(string message) => new(new(404, InvalidRequest, "not_found", message));

    /// <summary>gateway.toml names the entry and overwrites it at every start: a change here would silently come undone.</summary>
    public static AdminException ManagedByConfig(string what, string name) => new(new(409, InvalidRequest, "managed_by_config",
        $"The {what} '{name}' is managed by gateway.toml, which overwrites it at every start; change it there and restart the gateway."));

    public static OpenAiError MissingKey { get; } = new(401, "authentication_error", "invalid_admin_key",
        $"Missing admin key. Send it in the {AdminAuth.Header} header.");

    public static OpenAiError WrongKey { get; } = new(401, "authentication_error", "invalid_admin_key", "Incorrect admin key provided.");

    public static OpenAiError Disabled(string why) => new(404, InvalidRequest, "admin_api_disabled", why);

    public static OpenAiError FromStore(StoreException e) => e.Kind switch
    {
        StoreErrorKind.Validation => new(400, InvalidRequest, "validation_error", e.Message, e.Param),
        StoreErrorKind.NotFound => new(404, InvalidRequest, "not_found", e.Message, e.Param),
        StoreErrorKind.Conflict => new(409, InvalidRequest, "conflict", e.Message, e.Param),
        // The data plane keeps serving from its snapshot; only changes are refused until the store is back.
        _ => new(503, "service_unavailable", "store_unavailable",
            $"The gateway's store is unavailable, nothing was changed ({e.Message}). Requests to /v1 are still served; retry later."),
    };
}
