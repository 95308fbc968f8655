using System.Text;
using Gateway.Http;
using Gateway.Routing;
using Microsoft.Extensions.Primitives;

namespace Gateway.Auth;

/// <summary>Step 3 of the request path: <c>Authorization: Bearer ml-…</c> → the key's entry in the snapshot, or a 401.</summary>
public static class Authenticator
{
    /// <summary>
    /// Step 3 with the scaled-out fallback: a well-formed key missing from the snapshot is looked up through <paramref name="resolver"/>
    /// (bounded; see <see cref="UnknownKeyResolver"/>). Returns the snapshot the request goes on with: the current one, or the one
    /// reloaded to include the key found. Synchronous, with no allocation, whenever the snapshot answers. An admitted key's
    /// <see cref="KeyEntry.Usage"/> records the time (persisted later by the control plane, never here).
    /// </summary>
    public static ValueTask<(OpenAiError? Error, KeyEntry? Key, Snapshot Snapshot)> AuthenticateAsync(StringValues authorization,
        SnapshotHolder snapshots, UnknownKeyResolver? resolver)
    {
        var snapshot = snapshots.Current!;
        var now = DateTimeOffset.UtcNow;
        var error = Authenticate(authorization, snapshot, now, out var key, out var unknown);
        if (unknown is { } hash && resolver is not null) return ResolveAsync(resolver, hash, snapshots);
        key?.Usage.Touch(now);
        return new((error, key, snapshot));
    }

    private static async ValueTask<(OpenAiError?, KeyEntry?, Snapshot)> ResolveAsync(UnknownKeyResolver resolver, KeyHash hash, SnapshotHolder snapshots)
    {
        var entry = await resolver.ResolveAsync(hash).ConfigureAwait(false);
        var now = DateTimeOffset.UtcNow;
        var error = Admit(entry, now, out var key);
        key?.Usage.Touch(now);
        return (error, key, snapshots.Current!); // a key found in the store came with a reload: this snapshot has it
    }

    public static OpenAiError? Authenticate(StringValues authorization, Snapshot snapshot, DateTimeOffset now, out KeyEntry? key) =>
        Authenticate(authorization, snapshot, now, out key, out _);

    /// <param name="unknown">Set when the key is well formed but not in the snapshot (it may have been created on another instance
    /// a moment ago): the caller may look it up (<see cref="UnknownKeyResolver"/>) and finish with <see cref="Admit"/>.</param>
    public static OpenAiError? Authenticate(StringValues authorization, Snapshot snapshot, DateTimeOffset now, out KeyEntry? key, out KeyHash? unknown)
    {
        key = null;
        unknown = null;
        if (authorization.Count > 1)
            return OpenAiError.InvalidApiKey("More than one Authorization header. Send one: 'Authorization: Bearer ml-…'.");
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

        var hash = ApiKey.HashCached(ascii);
        var entry = snapshot.FindKey(hash);
        if (entry is null) unknown = hash;
        return Admit(entry, now, out key);
    }

    /// <summary>The checks on a key that exists: active, not expired. A null entry is an unknown key.</summary>
    public static OpenAiError? Admit(KeyEntry? entry, DateTimeOffset now, out KeyEntry? key)
    {
        key = null;
        if (entry is null) return OpenAiError.InvalidApiKey("Incorrect API key provided.");
        if (!entry.Active) return OpenAiError.InvalidApiKey("This API key has been revoked.");
        if (entry.ExpiresAt is { } expires && expires <= now) return OpenAiError.InvalidApiKey("This API key has expired.");
        key = entry;
        return null;
    }
}
