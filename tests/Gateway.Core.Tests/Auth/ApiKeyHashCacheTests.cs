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

    [Fact]
    public void A_remembered_key_is_not_matched_by_a_key_that_differs_in_any_one_byte()
    {
        // Every position of the one-pass masked comparison: its 16-byte blocks and the 3-byte tail (the last byte picks the slot).
        var key = Encoding.ASCII.GetBytes("ml-" + new string('7', 63) + "c");
        Assert.Equal(ApiKey.Hash(key), ApiKey.HashCached(key));
        for (int at = 0; at < key.Length - 1; at++)
        {
            var other = (byte[])key.Clone();
            other[at] = (byte)'e';
            Assert.Equal(ApiKey.Hash(other), ApiKey.HashCached(other));
            Assert.Equal(ApiKey.Hash(key), ApiKey.HashCached(key));
        }
    }

    [Theory]
    [InlineData("ml-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true)]
    [InlineData("ml-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg", false)] // not hex, last byte
    [InlineData("ml-g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", false)] // not hex, first byte
    [InlineData("ml-0123456789abcdef0123456789abcdeF0123456789abcdef0123456789abcdef", false)] // upper case
    [InlineData("ml-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde", false)]  // short
    [InlineData("ml_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", false)]
    [InlineData("ML-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", false)]
    public void Well_formed_keys_are_ml_and_64_lowercase_hex(string key, bool wellFormed)
    {
        Assert.Equal(wellFormed, ApiKey.IsWellFormed(key));
        Assert.Equal(wellFormed, ApiKey.IsWellFormed(Encoding.ASCII.GetBytes(key)));
    }
}
