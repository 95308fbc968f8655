using System.Text;
using Gateway.Proxy.Upstream;

namespace Gateway.IntegrationTests.Upstream;

/// <summary>
/// A Content-Length body that came with its head is handed to the JSON relay in place (no read, no copy): exactly the body, the
/// connection reused as after a read to the end; anything else is left for the reads, untouched. (The server writes each response
/// in one write: on loopback one segment, read with the head.)
/// </summary>
public sealed class Http1BufferedBodyTests : IDisposable
{
    private static readonly byte[] Request = "{\"model\":\"m\"}"u8.ToArray();
    private const string Json = "{\"model\":\"Qwen/Qwen2.5-7B-Instruct\",\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5}}";
    private readonly ScriptedServer _server = new();
    private readonly Http1Client _client = new();
    private readonly Http1Route _route;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(30));

    public Http1BufferedBodyTests() => _route = _client.CreateRoute(_server.Url);

    public void Dispose()
    {
        _client.Dispose();
        _server.Dispose();
        _timeout.Dispose();
    }

    private static string Head(int length) => $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n";

    private static string Taken(Http1Response response) =>
        response.TryTakeBufferedBody(out var body) ? Encoding.UTF8.GetString(body) : "(not taken)";

    [Fact]
    public async Task A_body_in_hand_is_taken_whole_and_the_connection_is_reused()
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync(Head(Encoding.UTF8.GetByteCount(Json)) + Json);
            await c.ReadRequestAsync();
            await c.SendAsync(Head(2) + "{}");
        });
        using (var response = await _client.SendAsync(_route, Request, null, null, _timeout.Token))
        {
            Assert.Equal(Json, Taken(response));
            Assert.Equal(0, await response.ReadAsync(new byte[16], _timeout.Token)); // taken = read to the end
        }
        using (var response = await _client.SendAsync(_route, Request, null, null, _timeout.Token))
            Assert.Equal("{}", Taken(response));
        await server;
        Assert.Equal(1, _server.Accepted);
    }

    [Fact]
    public async Task A_body_not_all_in_hand_is_left_for_the_reads()
    {
        var firstPart = Json[..20];
        var gate = new TaskCompletionSource();
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync(Head(Encoding.UTF8.GetByteCount(Json)) + firstPart);
            await gate.Task;
            await c.SendAsync(Json[20..]);
        });
        using var response = await _client.SendAsync(_route, Request, null, null, _timeout.Token);
        Assert.False(response.TryTakeBufferedBody(out _));
        gate.SetResult();
        var read = new MemoryStream();
        var buffer = new byte[7];
        int n;
        while ((n = await response.ReadAsync(buffer, _timeout.Token)) > 0) read.Write(buffer, 0, n);
        Assert.Equal(Json, Encoding.UTF8.GetString(read.ToArray()));
        await server;
    }

    [Fact]
    public async Task Bytes_after_the_body_are_not_taken_and_the_connection_is_not_reused()
    {
        // The server keeps the connection open: only the client can drop it, and at once (well before the pool's 4 s idle close).
        var closedByClient = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync(Head(2) + "{}" + "garbage");
            return await c.ClientClosesWithinAsync(TimeSpan.FromSeconds(1));
        });
        using (var response = await _client.SendAsync(_route, Request, null, null, _timeout.Token))
            Assert.Equal("{}", Taken(response));
        Assert.True(await closedByClient, "a connection with bytes after the body must be closed, not pooled");
        Assert.Equal(0, _client.IdleConnections(_route));
    }

    [Fact]
    public async Task A_chunked_body_is_never_taken()
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
        });
        using var response = await _client.SendAsync(_route, Request, null, null, _timeout.Token);
        Assert.False(response.TryTakeBufferedBody(out _));
        var buffer = new byte[16];
        Assert.Equal(2, await response.ReadAsync(buffer, _timeout.Token));
        Assert.Equal("{}", Encoding.UTF8.GetString(buffer, 0, 2));
        await server;
    }
}
