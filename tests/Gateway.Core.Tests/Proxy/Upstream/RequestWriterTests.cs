using System.Text;
using Gateway.Proxy.Upstream;

namespace Gateway.Tests.Proxy.Upstream;

public sealed class RequestWriterTests : IDisposable
{
    private readonly Http1Client _client = new();

    public void Dispose() => _client.Dispose();

    private static string Write(Http1Route route, int bodyLength, string? id, IReadOnlyList<KeyValuePair<string, string>>? headers)
    {
        int length = RequestWriter.Measure(route, bodyLength, id, headers);
        var buffer = new byte[length + 16];
        int written = RequestWriter.Write(buffer, route, bodyLength, id, headers);
        Assert.Equal(length, written);
        return Encoding.Latin1.GetString(buffer, 0, written);
    }

    [Fact]
    public void Head_has_the_exact_wire_format()
    {
        var route = _client.CreateRoute(new Uri("http://10.0.0.7:8000/v1/chat/completions"));
        var head = Write(route, 1234, "0123456789abcdef0123456789abcdef", [new("Accept", "text/event-stream")]);
        Assert.Equal(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: 10.0.0.7:8000\r\nContent-Type: application/json\r\nContent-Length: 1234\r\n" +
            "X-Request-ID: 0123456789abcdef0123456789abcdef\r\nAccept: text/event-stream\r\n\r\n", head);
    }

    [Theory]
    [InlineData("http://vllm:80/v1/completions", "POST /v1/completions HTTP/1.1\r\nHost: vllm\r\n")]
    [InlineData("http://[::1]:8000/base/v1/embeddings?x=1", "POST /base/v1/embeddings?x=1 HTTP/1.1\r\nHost: [::1]:8000\r\n")]
    [InlineData("http://localhost:9/a%20b", "POST /a%20b HTTP/1.1\r\nHost: localhost:9\r\n")]
    public void Host_and_path_are_as_an_http_client_sends_them(string url, string start)
    {
        var head = Write(_client.CreateRoute(new Uri(url)), 0, null, null);
        Assert.StartsWith(start, head);
        Assert.EndsWith("Content-Length: 0\r\n\r\n", head);
    }

    [Theory]
    [InlineData("id\r\nX-Evil: 1")]
    [InlineData("id\nx")]
    [InlineData("id\0")]
    [InlineData("Ω")]
    public void Values_that_could_split_the_head_are_refused(string value)
    {
        var route = _client.CreateRoute(new Uri("http://127.0.0.1:1/x"));
        Assert.Throws<ArgumentException>(() => RequestWriter.Measure(route, 0, value, null));
        Assert.Throws<ArgumentException>(() => RequestWriter.Measure(route, 0, null, [new("X-Pass", value)]));
    }

    [Theory]
    [InlineData("Content-Length")]
    [InlineData("host")]
    [InlineData("Transfer-Encoding")]
    [InlineData("Bad Name")]
    [InlineData("Bad:Name")]
    [InlineData("")]
    public void Names_that_would_break_framing_or_syntax_are_refused(string name)
    {
        var route = _client.CreateRoute(new Uri("http://127.0.0.1:1/x"));
        Assert.Throws<ArgumentException>(() => RequestWriter.Measure(route, 0, null, [new(name, "v")]));
    }

    [Theory]
    [InlineData("https://vllm:8443/v1/chat/completions")]
    [InlineData("ftp://vllm/x")]
    [InlineData("http://user:pw@vllm:8000/x")]
    public void Only_plain_http_urls_make_routes(string url) =>
        Assert.Throws<ArgumentException>(() => _client.CreateRoute(new Uri(url)));

    [Fact]
    public void Routes_to_one_host_and_port_share_a_pool()
    {
        var a = _client.CreateRoute(new Uri("http://127.0.0.1:8000/v1/chat/completions"));
        var b = _client.CreateRoute(new Uri("http://127.0.0.1:8000/v1/completions"));
        var c = _client.CreateRoute(new Uri("http://127.0.0.1:8001/v1/completions"));
        Assert.Same(a.Pool, b.Pool);
        Assert.NotSame(a.Pool, c.Pool);
    }
}
