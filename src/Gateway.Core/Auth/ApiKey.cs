using System.Buffers;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;
using System.Text;

namespace Gateway.Auth;

/// <summary>API keys are <c>ml-</c> followed by 64 lowercase hex characters; only their SHA-256 is stored.</summary>
public static class ApiKey
{
    public const int Length = 67;
    public const int PrefixLength = 11; // "ml-" + 8 hex: enough to tell keys apart in logs, useless to an attacker
    public static ReadOnlySpan<byte> Prefix => "ml-"u8;

    public static bool IsWellFormed(ReadOnlySpan<byte> key)
    {
        return key.Length == Length && key.StartsWith(Prefix) && !key[Prefix.Length..].ContainsAnyExcept(LowerHex);
    }

    private static readonly SearchValues<byte> LowerHex = SearchValues.Create("0123456789abcdef"u8);

    public static bool IsWellFormed(string key) =>
        key.Length == Length && key.StartsWith("ml-", StringComparison.Ordinal) && IsWellFormed(Encoding.ASCII.GetBytes(key));

    public static string Generate() => "ml-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    public static string HashHex(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    public static KeyHash Hash(ReadOnlySpan<byte> key)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(key, digest);
        return KeyHash.FromBytes(digest);
    }

    /// <summary>
    /// <see cref="Hash"/> for step 3, with the last keys seen on this thread remembered: the same few keys send most requests, and
    /// SHA-256 through OpenSSL (with its error-queue bookkeeping) was ~2 % of a proxied request's CPU. A hit is a constant-time
    /// comparison, so response timing says nothing about how much of a guess matched a remembered key. The keys are kept XORed
    /// with a random per-process pad, so a memory dump does not show them as text (a dump that also holds the pad still gives
    /// them away, as it would Kestrel's per-connection copies of the Authorization header).
    /// </summary>
    public static KeyHash HashCached(ReadOnlySpan<byte> key)
    {
        if (key.Length != Length) return Hash(key);
        var cache = t_hashCache ??= new HashCache();
        int last = key[^1];
        int slot = last <= '9' ? last & 0xF : (last & 0xF) + 9; // the last hex digit, 0–15
        var known = cache.Keys.AsSpan(slot * Length, Length);
        if (cache.Filled[slot] && MatchesMasked(key, known)) return cache.Hashes[slot];
        var hash = Hash(key);
        for (int i = 0; i < Length; i++) known[i] = (byte)(key[i] ^ Pad[i]);
        cache.Hashes[slot] = hash;
        cache.Filled[slot] = true;
        return hash;
    }

    /// <summary>
    /// Whether <paramref name="key"/> XOR the pad equals <paramref name="masked"/>, in constant time: every byte is looked at and
    /// the differences are ORed together before the one branch, as FixedTimeEquals does. One pass, 16 bytes at a time: masking the
    /// key first and then calling FixedTimeEquals took two byte loops (~1.4 % of a proxied request's user time).
    /// </summary>
    private static bool MatchesMasked(ReadOnlySpan<byte> key, ReadOnlySpan<byte> masked)
    {
        var pad = Pad.AsSpan();
        var differ = Vector128<byte>.Zero;
        int i = 0;
        for (; i + Vector128<byte>.Count <= Length; i += Vector128<byte>.Count)
            differ |= Vector128.Create(key[i..]) ^ Vector128.Create(pad[i..]) ^ Vector128.Create(masked[i..]);
        int tail = 0;
        for (; i < Length; i++) tail |= key[i] ^ pad[i] ^ masked[i];
        return (differ == Vector128<byte>.Zero) & (tail == 0);
    }

    private static readonly byte[] Pad = RandomNumberGenerator.GetBytes(Length);

    private sealed class HashCache
    {
        public const int Size = 16;
        public readonly byte[] Keys = new byte[Size * Length];
        public readonly KeyHash[] Hashes = new KeyHash[Size];
        public readonly bool[] Filled = new bool[Size];
    }

    [ThreadStatic] private static HashCache? t_hashCache;

    public static string DisplayPrefix(string key) => key.Length >= PrefixLength ? key[..PrefixLength] : key;
}

/// <summary>A SHA-256 digest as four machine words: a dictionary key that hashes and compares without allocating.</summary>
public readonly record struct KeyHash(ulong A, ulong B, ulong C, ulong D)
{
    public static KeyHash FromBytes(ReadOnlySpan<byte> digest) => new(
        BitConverter.ToUInt64(digest), BitConverter.ToUInt64(digest[8..]),
        BitConverter.ToUInt64(digest[16..]), BitConverter.ToUInt64(digest[24..]));

    public static bool TryParseHex(string hex, out KeyHash hash)
    {
        hash = default;
        if (hex.Length != 64) return false;
        Span<byte> bytes = stackalloc byte[32];
        if (Convert.FromHexString(hex, bytes, out _, out var written) != System.Buffers.OperationStatus.Done || written != 32) return false;
        hash = FromBytes(bytes);
        return true;
    }

    /// <summary>Lowercase hex, the form stored in <c>api_keys.key_hash</c>.</summary>
    public string ToHex()
    {
        Span<byte> bytes = stackalloc byte[32];
        BitConverter.TryWriteBytes(bytes, A);
        BitConverter.TryWriteBytes(bytes[8..], B);
        BitConverter.TryWriteBytes(bytes[16..], C);
        BitConverter.TryWriteBytes(bytes[24..], D);
        return Convert.ToHexStringLower(bytes);
    }

    public override int GetHashCode() => (int)A; // already uniformly distributed
}
