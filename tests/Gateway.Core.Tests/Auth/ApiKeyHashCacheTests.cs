using System.Text;
using Gateway.Auth;

namespace Gateway.Tests.Auth;

public sealed class ApiKeyHashCacheTests
{
    [Fact]
    public void Remembered_hashes_always_equal_the_sha256_of_the_key_asked_for()
    {
        // Keys that share a cache slot (same last digit) and differ in one character anywhere, asked for in turns, repeatedly.
        var random = new Random(11);
        var keys = new List<byte[]>();
        for (int i = 0; i < 40; i++)
        {
            var chars = ("ml-" + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray()) + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray())).ToCharArray();
            chars[^1] = "0123456789abcdef"[i % 16];
            keys.Add(Encoding.ASCII.GetBytes(chars));
            var twin = (char[])chars.Clone();
            int at = random.Next(3, chars.Length - 1);
            twin[at] = twin[at] == 'a' ? 'b' : 'a';
            keys.Add(Encoding.ASCII.GetBytes(twin));
        }
        for (int round = 0; round < 5; round++)
            foreach (var key in keys.OrderBy(_ => random.Next()))
                Assert.Equal(ApiKey.Hash(key), ApiKey.HashCached(key));
    }

    [Fact]
    public void A_key_of_another_length_is_hashed_not_cached()
    {
        var shortKey = "ml-abc"u8.ToArray();
        Assert.Equal(ApiKey.Hash(shortKey), ApiKey.HashCached(shortKey));
    }
}
