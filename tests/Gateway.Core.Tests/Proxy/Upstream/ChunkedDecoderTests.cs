using System.Buffers;
using System.Text;
using Gateway.Proxy.Upstream;

namespace Gateway.Tests.Proxy.Upstream;

public sealed class ChunkedDecoderTests
{
    private const string Event1 = "data: {\"id\":1,\"x\":\"tok0\"}\n\n";
    private const string Event2 = "data: {\"id\":2,\"x\":\"tok1\"}\n\n";
    private const string Done = "data: [DONE]\n\n";

    // Sizes in lower and upper case hex, an extension with a quoted ';', whitespace before the CRLF, trailers after the last chunk.
    private static readonly string SseBody =
        $"{Event1.Length:x}\r\n{Event1}\r\n" +
        $"{Event2.Length:X};name=value;other=\"quoted;ext\"\r\n{Event2}\r\n" +
        $"{Done.Length:x} \r\n{Done}\r\n" +
        "0\r\nX-Trailer: a\r\nOther: b\r\n\r\n";

    private const string Expected = Event1 + Event2 + Done;

    /// <summary>Feeds the raw bytes in pieces as the socket would hand them over, decoding each piece in place.</summary>
    private static (string Data, OperationStatus Last, int ConsumedOfLast) DecodeInPieces(byte[] raw, params int[] cuts)
    {
        var decoder = new ChunkedDecoder();
        var output = new StringBuilder();
        int from = 0;
        var status = OperationStatus.NeedMoreData;
        int consumed = 0;
        foreach (int to in cuts.Append(raw.Length))
        {
            var piece = raw.AsSpan(from, to - from).ToArray(); // a fresh buffer, as a receive would fill
            status = decoder.Decode(piece, out int produced, out consumed);
            output.Append(Encoding.ASCII.GetString(piece, 0, produced));
            from = to;
            if (status != OperationStatus.NeedMoreData) break;
        }
        return (output.ToString(), status, consumed);
    }

    [Fact]
    public void Whole_body_in_one_buffer_decodes_with_extensions_and_trailers_ignored()
    {
        var raw = Encoding.ASCII.GetBytes(SseBody);
        var (data, status, consumed) = DecodeInPieces(raw);
        Assert.Equal(Expected, data);
        Assert.Equal(OperationStatus.Done, status);
        Assert.Equal(raw.Length, consumed);
    }

    [Fact]
    public void Every_single_split_point_gives_the_same_body()
    {
        var raw = Encoding.ASCII.GetBytes(SseBody);
        for (int cut = 1; cut < raw.Length; cut++)
        {
            var (data, status, _) = DecodeInPieces(raw, cut);
            Assert.True(Expected == data, $"split at {cut}: {data}");
            Assert.Equal(OperationStatus.Done, status);
        }
    }

    [Fact]
    public void Every_pair_of_split_points_gives_the_same_body()
    {
        var raw = Encoding.ASCII.GetBytes(SseBody);
        for (int a = 1; a < raw.Length; a++)
        for (int b = a + 1; b < raw.Length; b++)
        {
            var (data, status, _) = DecodeInPieces(raw, a, b);
            Assert.True(Expected == data, $"split at {a},{b}");
            Assert.Equal(OperationStatus.Done, status);
        }
    }

    [Fact]
    public void One_byte_at_a_time_gives_the_same_body()
    {
        var raw = Encoding.ASCII.GetBytes(SseBody);
        var (data, status, _) = DecodeInPieces(raw, Enumerable.Range(1, raw.Length - 1).ToArray());
        Assert.Equal(Expected, data);
        Assert.Equal(OperationStatus.Done, status);
    }

    [Fact]
    public void Bytes_after_the_last_chunk_are_not_consumed()
    {
        var raw = Encoding.ASCII.GetBytes("3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n");
        var decoder = new ChunkedDecoder();
        var status = decoder.Decode(raw, out int produced, out int consumed);
        Assert.Equal(OperationStatus.Done, status);
        Assert.Equal("abc", Encoding.ASCII.GetString(raw, 0, produced));
        Assert.Equal("3\r\nabc\r\n0\r\n\r\n".Length, consumed);
        Assert.True(decoder.IsDone);
    }

    [Fact]
    public void Bare_lf_line_ends_are_accepted()
    {
        var (data, status, _) = DecodeInPieces(Encoding.ASCII.GetBytes("3\nabc\n0\n\n"));
        Assert.Equal("abc", data);
        Assert.Equal(OperationStatus.Done, status);
    }

    [Fact]
    public void Large_chunk_sizes_in_hex_are_read_in_full()
    {
        var payload = new string('x', 0x1234);
        var raw = Encoding.ASCII.GetBytes("1234\r\n" + payload + "\r\n0\r\n\r\n");
        var (data, status, _) = DecodeInPieces(raw, 3, 100, 4000);
        Assert.Equal(payload, data);
        Assert.Equal(OperationStatus.Done, status);
    }

    [Theory]
    [InlineData("\r\n")]                           // no size
    [InlineData("g\r\n")]                          // not hex
    [InlineData("-1\r\n")]
    [InlineData(";ext\r\n")]                       // extension without a size
    [InlineData("3\rabc")]                         // CR not followed by LF
    [InlineData("3\r\nabcX\r\n")]                  // data longer than the size
    [InlineData("3\r\nabc\rX")]
    [InlineData("0\r\n\rX")]
    [InlineData("10000000000000000\r\n")]          // 2^64: overflows
    public void Bad_framing_is_invalid(string raw)
    {
        var (_, status, _) = DecodeInPieces(Encoding.ASCII.GetBytes(raw));
        Assert.Equal(OperationStatus.InvalidData, status);
    }

    [Fact]
    public void An_endless_chunk_extension_is_refused()
    {
        var raw = Encoding.ASCII.GetBytes("5;" + new string('e', ChunkedDecoder.MaxLineBytes) + "\r\nhello\r\n0\r\n\r\n");
        var (_, status, _) = DecodeInPieces(raw);
        Assert.Equal(OperationStatus.InvalidData, status);
    }

    [Fact]
    public void Incomplete_body_needs_more_data()
    {
        var (data, status, _) = DecodeInPieces(Encoding.ASCII.GetBytes("5\r\nhel"));
        Assert.Equal("hel", data);
        Assert.Equal(OperationStatus.NeedMoreData, status);
    }
}
