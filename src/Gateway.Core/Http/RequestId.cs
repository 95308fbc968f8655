using Microsoft.Extensions.Primitives;

namespace Gateway.Http;

/// <summary>Step 2: reuse a sane incoming X-Request-ID (≤ 128 printable ASCII characters), else make 32 lowercase hex.</summary>
public static class RequestId
{
    public static string From(StringValues incoming)
    {
        if (incoming.Count == 1 && incoming[0] is { Length: > 0 and <= 128 } value && IsPrintable(value)) return value;
        return New();
    }

    /// <summary>32 lowercase hex from a fast PRNG: ids must be unique, not secret, and Guid.NewGuid costs a getrandom syscall.</summary>
    public static string New() => string.Create(32, 0, static (chars, _) =>
    {
        Span<byte> bytes = stackalloc byte[16];
        Random.Shared.NextBytes(bytes);
        Convert.TryToHexStringLower(bytes, chars, out _);
    });

    private static bool IsPrintable(string value)
    {
        foreach (var c in value)
            if (c < 0x21 || c > 0x7e) return false;
        return true;
    }
}
