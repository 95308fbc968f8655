using Gateway.Storage;

namespace Gateway.Auth;

/// <summary>Creates API keys for the CLI and the admin API alike: a fresh key, of which only the hash and display prefix are stored.</summary>
public static class KeyIssuer
{
    /// <summary>Stores <paramref name="key"/> (its KeyHash/KeyPrefix are replaced) and returns the plaintext, which exists nowhere else.</summary>
    public static async Task<(string Plaintext, StoredKey Key)> CreateAsync(IStore store, NewKey key, CancellationToken ct = default)
    {
        var plaintext = ApiKey.Generate();
        var stored = await store.CreateKeyAsync(key with { KeyHash = ApiKey.HashHex(plaintext), KeyPrefix = ApiKey.DisplayPrefix(plaintext) }, ct)
            .ConfigureAwait(false);
        return (plaintext, stored);
    }
}
