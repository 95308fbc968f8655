using System.Text;
using Gateway.Limits.Resp;

namespace Gateway.Tests.Limits;

/// <summary>RESP2 replies as the loop client reads them: whole, or split anywhere across reads.</summary>
public sealed class RespParserTests
{
    public static TheoryData<string, string, long[], string?> Replies => new()
    {
        { "+OK\r\n", "Simple", [], null },
        { "-NOSCRIPT No matching script. Please use EVAL.\r\n", "Error", [], "NOSCRIPT No matching script. Please use EVAL." },
        { ":-42\r\n", "Integer", [-42], null },
        { "$5\r\nhe\r\no\r\n", "Bulk", [], null },
        { "$0\r\n\r\n", "Bulk", [], null },
        { "$-1\r\n", "Null", [], null },
        { "*-1\r\n", "Null", [], null },
        { "*0\r\n", "Array", [], null },
        { "*6\r\n:0\r\n:99\r\n:60000\r\n:1000\r\n:0\r\n:0\r\n", "Array", [0, 99, 60000, 1000, 0, 0], null }, // a check's reply
        { "*3\r\n:1\r\n*2\r\n:2\r\n$3\r\nabc\r\n+x\r\n", "Array", [1, 2], null }, // nested; only integers are kept
    };

    [Theory]
    [MemberData(nameof(Replies))]
    public void A_reply_split_at_every_byte_is_parsed_only_when_whole(string wire, string kind, long[] values, string? error)
    {
        var bytes = Encoding.UTF8.GetBytes(wire + ":7\r\n"); // a second reply behind it must not be taken
        int length = Encoding.UTF8.GetByteCount(wire);
        for (int cut = 0; cut < length; cut++)
            Assert.Equal(0, RespParser.TryParse(bytes.AsSpan(0, cut), out _)); // a partial read: nothing yet

        Assert.Equal(length, RespParser.TryParse(bytes, out var reply));
        Assert.Equal(Enum.Parse<RespKind>(kind), reply.Kind);
        Assert.Equal(values.Length, reply.Count);
        for (int i = 0; i < values.Length; i++) Assert.Equal(values[i], reply[i]);
        Assert.Equal(error, reply.Error);
        Assert.Equal(error?.StartsWith("NOSCRIPT", StringComparison.Ordinal) == true, reply.IsNoScript);
    }

    [Theory]
    [InlineData("?what\r\n")]
    [InlineData(":12x\r\n")]
    [InlineData("$3\r\nabcd\r\n")]
    public void Bytes_that_are_not_RESP_are_an_error(string wire) =>
        Assert.Throws<InvalidDataException>(() => RespParser.TryParse(Encoding.UTF8.GetBytes(wire), out _));

    [Fact]
    public void An_array_longer_than_the_inline_values_counts_them_all()
    {
        var wire = new StringBuilder("*10\r\n");
        for (int i = 0; i < 10; i++) wire.Append(':').Append(i).Append("\r\n");
        Assert.True(RespParser.TryParse(Encoding.UTF8.GetBytes(wire.ToString()), out var reply) > 0);
        Assert.Equal(10, reply.Count);
        Assert.Equal(RespReply.MaxValues - 1, reply[RespReply.MaxValues - 1]);
        Assert.Throws<IndexOutOfRangeException>(() => reply[RespReply.MaxValues]);
    }

    [Fact]
    public void The_encoder_writes_a_command_as_an_array_of_bulk_strings()
    {
        var encoder = new RespEncoder().Command(4).Arg("EVALSHA"u8).Arg("ключ").Arg(-12).Arg("");
        Assert.Equal("*4\r\n$7\r\nEVALSHA\r\n$8\r\nключ\r\n$3\r\n-12\r\n$0\r\n\r\n", Encoding.UTF8.GetString(encoder.Written));
    }
}

/// <summary>Which REDIS_URLs the loop client takes (plain TCP to one server); the rest stay with StackExchange.Redis.</summary>
public sealed class RespEndpointTests
{
    [Theory]
    [InlineData("redis://127.0.0.1:6380", "127.0.0.1", 6380, null, null, 0)]
    [InlineData("redis://redis", "redis", 6379, null, null, 0)]
    [InlineData("redis://:p%40ss@redis:7000/3", "redis", 7000, null, "p@ss", 3)]
    [InlineData("redis://app:pw@redis/2", "redis", 6379, "app", "pw", 2)]
    [InlineData("REDIS://[::1]:6379", "::1", 6379, null, null, 0)]
    [InlineData("localhost:6390", "localhost", 6390, null, null, 0)]
    [InlineData("localhost", "localhost", 6379, null, null, 0)]
    public void A_plain_url_is_parsed(string url, string host, int port, string? user, string? password, int db) =>
        Assert.Equal(new RespEndpoint(host, port, user, password, db), RespEndpoint.TryParse(url));

    [Theory]
    [InlineData("rediss://redis:6380")]
    [InlineData("redis-a:6379,redis-b:6379")]
    [InlineData("redis:6379,password=x,ssl=true")]
    [InlineData("redis://redis:6379/zero")]
    [InlineData("redis://redis:6379?ssl=true")]
    [InlineData("unix:///tmp/redis.sock")]
    public void Anything_else_is_left_to_StackExchange_Redis(string url) => Assert.Null(RespEndpoint.TryParse(url));
}
