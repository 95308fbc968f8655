using System.Net;
using System.Text;
using System.Text.Json;
using Gateway.Config;
using Gateway.Http;
using Gateway.IntegrationTests.Upstream;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Proxy;

/// <summary>
/// What the client gets for answers a real vLLM rarely gives, written byte by byte by a scripted upstream, over both upstream clients:
/// errors pass through with their status and body, framing does not matter, and anything broken is an OpenAI-shaped 502.
/// </summary>
public sealed class UpstreamAnswerTests
{
    private const string ErrorBody = "{\"object\":\"error\",\"message\":\"max_tokens is too large\",\"type\":\"BadRequestError\",\"param\":null,\"code\":400}";
    private const string Completion =
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"Qwen/Qwen2.5-7B-Instruct\",\"choices\":[]," +
        "\"usage\":{\"prompt_tokens\":3,\"total_tokens\":5,\"completion_tokens\":2}}";

    public static TheoryData<UpstreamClientKind, string, string, int, string> Answers()
    {
        var rows = new (string Name, string Script, int Status, string Expect)[]
        {
            ("a 400 with vLLM's error body passes through",
                $"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {ErrorBody.Length}\r\n\r\n{ErrorBody}", 400, ErrorBody),
            ("a chunked JSON body gets the alias back",
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
                $"10\r\n{Completion[..16]}\r\n{Completion.Length - 16:x}\r\n{Completion[16..]}\r\n0\r\n\r\n", 200,
                Completion.Replace("\"Qwen/Qwen2.5-7B-Instruct\"", "\"qwen\"")),
            ("an error page that is not JSON is an OpenAI-shaped error with its status",
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: 37\r\n\r\n<html>Traceback (most recent…)</html>", 400, "backend_error"),
            ("a head that is not HTTP is a 502", "SSH-2.0-OpenSSH_9.6\r\n\r\n", 502, "backend_error"),
            ("a close before the head is a 502", "", 502, "backend_error"),
            ("a body cut short is a 502",
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"id\":\"chatcmpl-1\",", 502, "backend_error"),
        };
        var data = new TheoryData<UpstreamClientKind, string, string, int, string>();
        foreach (var client in new[] { UpstreamClientKind.Sockets, UpstreamClientKind.Http1 })
            foreach (var (name, script, status, expect) in rows)
                data.Add(client, name, script, status, expect);
        return data;
    }

    [Theory]
    [MemberData(nameof(Answers))]
    public async Task Upstream_answers_reach_the_client_as_they_should(UpstreamClientKind upstream, string name, string script, int status, string expect)
    {
        _ = name; // the row's description, for the test name
        using var server = new ScriptedServer();
        var backend = $"http://127.0.0.1:{server.Port}";
        var options = OnlyBackend(backend, new ProxyOptions { UpstreamClient = upstream, FirstByteTimeout = TimeSpan.FromSeconds(10) });
        await using var gateway = new GatewayHost(options, logSink: Stream.Null);
        await gateway.StartAsync();
        using var client = GatewayFixture.ClientFor(gateway);

        var sending = client.SendAsync(GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"messages\":[]}"));
        using (var connection = await server.AcceptAsync())
        {
            var request = await connection.ReadRequestAsync();
            Assert.StartsWith("POST /v1/chat/completions HTTP/1.1\r\n", request);
            Assert.DoesNotContain("Authorization", request, StringComparison.OrdinalIgnoreCase);
            await connection.SendAsync(script);
        } // closed: the end of a read-until-close body, or the cut in the broken rows

        using var response = await sending;
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal(Encoding.UTF8.GetByteCount(body), response.Content.Headers.ContentLength);
        if (expect == "backend_error")
        {
            using var doc = JsonDocument.Parse(body);
            Assert.Equal(expect, doc.RootElement.GetProperty("error").GetProperty("code").GetString());
            Assert.Equal("upstream_error", doc.RootElement.GetProperty("error").GetProperty("type").GetString());
        }
        else Assert.Equal(expect, body);
        Assert.Equal(1, server.Accepted); // one backend and nothing to fail over to: sent once
    }
    [Theory]
    [InlineData(UpstreamClientKind.Sockets)]
    [InlineData(UpstreamClientKind.Http1)]
    public async Task A_json_body_that_stops_arriving_is_a_504_after_the_idle_timeout(UpstreamClientKind upstream)
    {
        using var server = new ScriptedServer();
        var backend = $"http://127.0.0.1:{server.Port}";
        var options = OnlyBackend(backend, new ProxyOptions
        {
            UpstreamClient = upstream, FirstByteTimeout = TimeSpan.FromSeconds(10), StreamIdleTimeout = TimeSpan.FromMilliseconds(400),
        });
        await using var gateway = new GatewayHost(options, logSink: Stream.Null);
        await gateway.StartAsync();
        using var client = GatewayFixture.ClientFor(gateway);

        var sending = client.SendAsync(GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"messages\":[]}"));
        using var connection = await server.AcceptAsync();
        await connection.ReadRequestAsync();
        // The head and part of the body arrive at once (the first read completes at once); then nothing more, connection open.
        await connection.SendAsync("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"id\":\"chatcmpl-1\",");
        var started = System.Diagnostics.Stopwatch.StartNew();
        using var response = await sending;
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.InRange(started.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(8));
        using var doc = JsonDocument.Parse(body);
        Assert.Equal("backend_timeout", doc.RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    /// <summary>The fixture's options with "qwen" served by the scripted <paramref name="backend"/> alone: nothing to fail over to.</summary>
    /// <summary>
    /// proxy.max_response_bytes bounds a JSON answer both ways: a Content-Length over it is refused before anything is read (the
    /// whole body here came with the head, the path that rewrites it in place), and a chunked body is cut off once it grows past it.
    /// </summary>
    [Theory]
    [InlineData(UpstreamClientKind.Http1, true)]
    [InlineData(UpstreamClientKind.Http1, false)]
    [InlineData(UpstreamClientKind.Sockets, true)]
    [InlineData(UpstreamClientKind.Sockets, false)]
    public async Task An_answer_over_max_response_bytes_is_a_502(UpstreamClientKind upstream, bool declared)
    {
        var big = "{\"model\":\"Qwen/Qwen2.5-7B-Instruct\",\"pad\":\"" + new string('x', 1500) + "\"}";
        var script = declared
            ? $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {big.Length}\r\n\r\n{big}"
            : "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
              $"{800:x}\r\n{big[..800]}\r\n{big.Length - 800:x}\r\n{big[800..]}\r\n0\r\n\r\n";
        using var server = new ScriptedServer();
        var options = OnlyBackend($"http://127.0.0.1:{server.Port}", new ProxyOptions { UpstreamClient = upstream, MaxResponseBytes = 1024 });
        await using var gateway = new GatewayHost(options, logSink: Stream.Null);
        await gateway.StartAsync();
        using var client = GatewayFixture.ClientFor(gateway);

        var sending = client.SendAsync(GatewayFixture.CreatePost("/v1/chat/completions", "{\"model\":\"qwen\",\"messages\":[]}"));
        using (var connection = await server.AcceptAsync())
        {
            await connection.ReadRequestAsync();
            await connection.SendAsync(script);
        }
        using var response = await sending;
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        using var doc = JsonDocument.Parse(body);
        Assert.Equal("backend_error", doc.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("too large", doc.RootElement.GetProperty("error").GetProperty("message").GetString());
        Assert.DoesNotContain("xxxx", body);
    }

    private static GatewayOptions OnlyBackend(string backend, ProxyOptions proxy) => GatewayFixture.BuildOptions(backend) with
    {
        Proxy = proxy,
        Models = [new ModelConfig { Name = "qwen", ModelId = GatewayFixture.ModelId, Backends = [new BackendConfig { Url = backend }] }],
    };
}
