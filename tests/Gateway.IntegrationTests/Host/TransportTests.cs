using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Gateway.IntegrationTests.Proxy;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Host;

/// <summary>
/// What Kestrel's transport must get right, over raw sockets: a client that stops reading (the send side waits for room), two
/// requests in one segment, a body that arrives in pieces. Run on the loop transport (fixture "gateway") and on Kestrel's socket
/// transport ("gateway-sockets").
/// </summary>
public abstract class TransportTests(GatewayFixture fx) : SimulatorResetting(fx)
{
    private async Task<TcpClient> ConnectAsync(int receiveBuffer = 0)
    {
        var tcp = new TcpClient();
        if (receiveBuffer > 0) tcp.ReceiveBufferSize = receiveBuffer; // before connect: it sets the window the gateway sees
        await tcp.ConnectAsync("127.0.0.1", _fx.Gateway.Port);
        return tcp;
    }

    private static string Request(string body, string connection = "keep-alive") =>
        $"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {GatewayFixture.Key}\r\nContent-Type: application/json\r\n" +
        $"Connection: {connection}\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}";

    private static async Task<string> ReadToCloseAsync(NetworkStream stream)
    {
        var all = new MemoryStream();
        await stream.CopyToAsync(all).WaitAsync(TimeSpan.FromSeconds(30));
        return Encoding.UTF8.GetString(all.ToArray());
    }

    [Fact]
    public async Task A_long_stream_to_a_client_that_pauses_reading_arrives_whole_and_in_order()
    {
        const int tokens = 40_000; // ~10 MB of SSE: beyond what the kernel buffers (its send buffer grows to 4 MB) for a 4 KB window
        _fx.Simulator.Options.Tokens = tokens;
        using var tcp = await ConnectAsync(receiveBuffer: 4096);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.UTF8.GetBytes(Request(
            $"{{\"model\":\"qwen\",\"stream\":true,\"max_tokens\":{tokens},\"messages\":[]}}", connection: "close")));
        await Task.Delay(500); // not reading: the gateway's sends fill the window and must wait for room, not drop or spin
        var text = await ReadToCloseAsync(stream);

        Assert.StartsWith("HTTP/1.1 200", text);
        Assert.EndsWith("0\r\n\r\n", text); // the chunked body's end: the stream was not cut
        Assert.Contains("data: [DONE]", text);
        int next = 0;
        foreach (var line in text.Split('\n'))
        {
            if (!line.StartsWith("data: {", StringComparison.Ordinal)) continue;
            var chunk = JsonDocument.Parse(line[6..]).RootElement;
            Assert.Equal("qwen", chunk.GetProperty("model").GetString());
            var choices = chunk.GetProperty("choices");
            if (choices.GetArrayLength() == 0 || !choices[0].GetProperty("delta").TryGetProperty("content", out var content)) continue;
            if (content.GetString() == "") continue; // the role chunk
            Assert.Equal($"tok{next} ", content.GetString()); // every token, once, in order
            next++;
        }
        Assert.Equal(tokens, next);
    }

    [Fact]
    public async Task Two_requests_in_one_segment_get_two_answers_in_order()
    {
        using var tcp = await ConnectAsync();
        var stream = tcp.GetStream();
        var first = Request("{\"model\":\"qwen\",\"max_tokens\":1,\"messages\":[]}");
        var second = Request("{\"model\":\"qwen\",\"max_tokens\":2,\"messages\":[]}", connection: "close");
        await stream.WriteAsync(Encoding.UTF8.GetBytes(first + second));
        var text = await ReadToCloseAsync(stream);

        var answers = text.Split("HTTP/1.1 ", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, answers.Length);
        Assert.All(answers, a => Assert.StartsWith("200 OK", a));
        Assert.Contains("\"completion_tokens\":1", answers[0]);
        Assert.Contains("\"completion_tokens\":2", answers[1]);
    }

    [Fact]
    public async Task A_body_that_arrives_in_pieces_reaches_the_upstream_byte_for_byte()
    {
        var content = new string('x', 60 * 1024); // just under the fixture's 64 KB limit, sent in 15 pieces
        var body = "{\"model\":\"qwen\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"" + content + "\"}]}";
        var bytes = Encoding.UTF8.GetBytes(Request(body, connection: "close"));
        using var tcp = await ConnectAsync();
        var stream = tcp.GetStream();
        for (int offset = 0; offset < bytes.Length; offset += 4096)
        {
            await stream.WriteAsync(bytes.AsMemory(offset, Math.Min(4096, bytes.Length - offset)));
            await Task.Delay(5); // each piece arrives on its own: the gateway reads it and waits for the next
        }
        var text = await ReadToCloseAsync(stream);

        Assert.StartsWith("HTTP/1.1 200", text);
        var messages = JsonDocument.Parse(_fx.Simulator.Captured[^1].Body).RootElement.GetProperty("messages");
        Assert.Equal(content, messages[messages.GetArrayLength() - 1].GetProperty("content").GetString()); // after the inserted system prompt
    }
}

[Collection("gateway")]
public sealed class TransportTestsOverLoop(GatewayFixture fx) : TransportTests(fx);

[Collection("gateway-sockets")]
public sealed class TransportTestsOverSockets(SocketsGatewayFixture fx) : TransportTests(fx);
