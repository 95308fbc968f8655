using System.Text;
using Gateway.Proxy.Upstream;

namespace Gateway.Tests.Proxy.Upstream;

public sealed class ResponseHeadParserTests
{
    private static (HeadStatus Status, ResponseHead Head, string? Error) Parse(string text)
    {
        var status = ResponseHeadParser.TryParse(Encoding.Latin1.GetBytes(text), out var head, out var error);
        return (status, head, error);
    }

    [Fact]
    public void Uvicorn_json_head_is_parsed()
    {
        const string text = "HTTP/1.1 200 OK\r\ndate: Tue, 25 Nov 2026 10:00:00 GMT\r\nserver: uvicorn\r\ncontent-length: 512\r\ncontent-type: application/json\r\n\r\n{\"id\"";
        var (status, head, _) = Parse(text);
        Assert.Equal(HeadStatus.Complete, status);
        Assert.Equal(200, head.StatusCode);
        Assert.Equal(512, head.ContentLength);
        Assert.False(head.Chunked);
        Assert.False(head.ConnectionClose);
        Assert.Equal(text.IndexOf("{\"id\"", StringComparison.Ordinal), head.Length);
        Assert.Equal("application/json", text.Substring(head.ContentTypeOffset, head.ContentTypeLength));
    }

    [Fact]
    public void Sse_head_with_chunked_and_padded_values_is_parsed()
    {
        const string text = "HTTP/1.1 200 OK\r\nContent-Type:   text/event-stream; charset=utf-8 \t\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n";
        var (status, head, _) = Parse(text);
        Assert.Equal(HeadStatus.Complete, status);
        Assert.True(head.Chunked);
        Assert.Equal(-1, head.ContentLength);
        Assert.False(head.ConnectionClose);
        Assert.Equal("text/event-stream; charset=utf-8", text.Substring(head.ContentTypeOffset, head.ContentTypeLength));
        Assert.Equal(text.Length, head.Length);
    }

    [Theory]
    [InlineData("Connection: close", true)]
    [InlineData("connection: Keep-Alive, CLOSE", true)]
    [InlineData("Connection: keep-alive", false)]
    [InlineData("Connection: closed", false)]
    public void Connection_close_is_found_among_tokens(string header, bool close)
    {
        var (status, head, _) = Parse($"HTTP/1.1 200 OK\r\n{header}\r\nContent-Length: 0\r\n\r\n");
        Assert.Equal(HeadStatus.Complete, status);
        Assert.Equal(close, head.ConnectionClose);
    }

    [Fact]
    public void Http10_is_noted()
    {
        var (status, head, _) = Parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        Assert.Equal(HeadStatus.Complete, status);
        Assert.True(head.Http10);
    }

    [Fact]
    public void Chunked_and_content_length_together_means_chunked_then_close()
    {
        var (status, head, _) = Parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n");
        Assert.Equal(HeadStatus.Complete, status);
        Assert.True(head.Chunked);
        Assert.True(head.ConnectionClose);
    }

    [Fact]
    public void A_transfer_coding_other_than_chunked_last_reads_until_close()
    {
        var (status, head, _) = Parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
        Assert.Equal(HeadStatus.Complete, status);
        Assert.False(head.Chunked);
        Assert.True(head.OtherTransferCoding);
    }

    [Fact]
    public void Bare_lf_heads_are_accepted()
    {
        var (status, head, _) = Parse("HTTP/1.1 404 Not Found\nContent-Length: 3\n\nabc");
        Assert.Equal(HeadStatus.Complete, status);
        Assert.Equal(404, head.StatusCode);
        Assert.Equal(3, head.ContentLength);
    }

    [Fact]
    public void A_status_line_without_a_reason_is_accepted()
    {
        var (status, head, _) = Parse("HTTP/1.1 204\r\n\r\n");
        Assert.Equal(HeadStatus.Complete, status);
        Assert.Equal(204, head.StatusCode);
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Le")]
    [InlineData("HTT")]
    [InlineData("")]
    public void A_head_without_its_empty_line_is_incomplete(string text) => Assert.Equal(HeadStatus.Incomplete, Parse(text).Status);

    [Theory]
    [InlineData("HTTP/1.1 2OO OK\r\n\r\n")]
    [InlineData("HTTP/2 200 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 200OK\r\n\r\n")]
    [InlineData("HTTP/1.1  200 OK\r\n\r\n")]
    [InlineData("HTTP/1.x 200 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 099 Odd\r\n\r\n")]
    [InlineData("SSH-2.0-OpenSSH_9.6")]                                   // not HTTP: fails before any line end
    [InlineData("hello\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\n folded: value\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nNo-Colon\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\n: no name\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nX\0Y: ab\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nX\rY: ab\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nBad\tName: x\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nNo-Colon\0\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999999\r\n\r\n")]
    public void Malformed_heads_are_invalid(string text)
    {
        var (status, _, error) = Parse(text);
        Assert.Equal(HeadStatus.Invalid, status);
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void Repeated_equal_content_lengths_are_accepted()
    {
        var (status, head, _) = Parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n");
        Assert.Equal(HeadStatus.Complete, status);
        Assert.Equal(5, head.ContentLength);
    }
}
