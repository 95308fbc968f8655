using Microsoft.Extensions.Primitives;

namespace Gateway.Http;

/// <summary>Step 2: reuse a sane incoming X-Request-ID (≤ 128 printable ASCII characters), else make 32 lowercase hex.</summary>
public static class RequestId
{
    public static string From(StringValues incoming)
    {
        if (incoming.Count == 1 && incoming[0] is { Length: > 0 and <= 128 } value && IsPrintable(value)) return value;
        return Guid.NewGuid().ToString("N");
    }

    private static bool IsPrintable(string value)
    {
        foreach (var c in value)
            if (c < 0x21 || c > 0x7e) return false;
        return true;
    }
}
