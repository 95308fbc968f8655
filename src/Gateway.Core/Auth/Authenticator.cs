using System.Text;
using Gateway.Http;
using Gateway.Routing;
using Microsoft.Extensions.Primitives;

namespace Gateway.Auth;

/// <summary>Step 3 of the request path: <c>Authorization: Bearer ml-…</c> → the key's entry in the snapshot, or a 401.</summary>
public static class Authenticator
{
    public static OpenAiError? Authenticate(StringValues authorization, Snapshot snapshot, DateTimeOffset now, out KeyEntry? key)
    {
        key = null;
        if (authorization.Count != 1 || authorization[0] is not { } header || header.Length == 0)
            return OpenAiError.InvalidApiKey("Missing API key. Send it as 'Authorization: Bearer ml-…'.");
        var value = header.AsSpan().Trim();
        if (value.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
            return OpenAiError.InvalidApiKey("Missing API key. Send it as 'Authorization: Bearer ml-…'.");
        if (value.Length < 7 || !value[..7].Equals("Bearer ", StringComparison.OrdinalIgnoreCase))
            return OpenAiError.InvalidApiKey("The Authorization header must use the Bearer scheme.");
        var token = value[7..].Trim();

        Span<byte> ascii = stackalloc byte[ApiKey.Length];
        if (token.Length != ApiKey.Length || Encoding.ASCII.GetBytes(token, ascii) != ApiKey.Length || !ApiKey.IsWellFormed(ascii))
            return OpenAiError.InvalidApiKey("Incorrect API key provided.");

        var entry = snapshot.FindKey(ApiKey.Hash(ascii));
        if (entry is null) return OpenAiError.InvalidApiKey("Incorrect API key provided.");
        if (!entry.Active) return OpenAiError.InvalidApiKey("This API key has been revoked.");
        if (entry.ExpiresAt is { } expires && expires <= now) return OpenAiError.InvalidApiKey("This API key has expired.");
        key = entry;
        return null;
    }
}
