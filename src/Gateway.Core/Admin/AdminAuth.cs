using System.Security.Cryptography;
using System.Text;
using Gateway.Http;
using Microsoft.Extensions.Primitives;

namespace Gateway.Admin;

/// <summary>
/// <c>X-Admin-Key</c>. Both sides are hashed with SHA-256 and compared with <see cref="CryptographicOperations.FixedTimeEquals"/>:
/// equal-length digests, so neither the comparison's timing nor the key's length tells an attacker anything.
/// No configured key (empty or missing <c>auth.admin_key</c>) disables the admin API rather than leaving it open.
/// </summary>
public sealed class AdminAuth
{
    public const string Header = "X-Admin-Key";

    private readonly byte[]? _expected;

    public AdminAuth(string? adminKey) =>
        _expected = string.IsNullOrWhiteSpace(adminKey) ? null : SHA256.HashData(Encoding.UTF8.GetBytes(adminKey));

    public bool Enabled => _expected is not null;

    /// <summary>Null when the request carries the admin key; otherwise the 401 to send.</summary>
    public OpenAiError? Check(StringValues header)
    {
        if (_expected is null) return AdminErrors.WrongKey;
        if (header.Count == 0 || string.IsNullOrEmpty(header[0])) return AdminErrors.MissingKey;
        if (header.Count > 1) return AdminErrors.WrongKey;
        Span<byte> actual = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(header[0]!), actual);
        return CryptographicOperations.FixedTimeEquals(actual, _expected) ? null : AdminErrors.WrongKey;
    }
}
