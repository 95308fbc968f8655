using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Gateway.Benchmarks;

/// <summary>
/// A canned HTTP/1.1 upstream on raw sockets that allocates nothing per request: it answers every POST with a fixed JSON body
/// (Content-Length) or, when the body says <c>"stream":true</c>, a fixed 23-event SSE stream, one chunk per send as vLLM flushes
/// each token. Its cost is a few syscalls, so what a benchmark against it measures (and allocates) is the client.
/// </summary>
internal sealed class StaticUpstream : IDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly CancellationTokenSource _stop = new();
    private readonly byte[] _json;
    private readonly byte[][] _sse;

    public StaticUpstream()
    {
        var body = Encoding.UTF8.GetBytes(
            "{\"id\":\"chatcmpl-9f8c2b7e4d1a4c3b8e6f5a4d3c2b1a09\",\"object\":\"chat.completion\",\"created\":1732540000,\"model\":\"Qwen/Qwen2.5-7B-Instruct\"," +
            "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"reasoning_content\":null,\"content\":\"tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8 tok9 tok10 tok11 tok12 tok13 tok14 tok15 \",\"tool_calls\":[]}," +
            "\"logprobs\":null,\"finish_reason\":\"length\",\"stop_reason\":null}],\"usage\":{\"prompt_tokens\":7,\"total_tokens\":23,\"completion_tokens\":16,\"prompt_tokens_details\":null},\"prompt_logprobs\":null}");
        _json = [.. Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\ndate: Tue, 25 Nov 2026 10:00:00 GMT\r\nserver: uvicorn\r\ncontent-length: {body.Length}\r\ncontent-type: application/json\r\n\r\n"), .. body];

        var events = SseRelayBenchmarks.VllmChatStream(19).Split("\n\n", StringSplitOptions.RemoveEmptyEntries); // 23 events with [DONE]
        var sse = new List<byte[]> { Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\ndate: Tue, 25 Nov 2026 10:00:00 GMT\r\nserver: uvicorn\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n") };
        foreach (var e in events) sse.Add(Encoding.UTF8.GetBytes($"{Encoding.UTF8.GetByteCount(e) + 2:x}\r\n{e}\n\n\r\n"));
        sse.Add("0\r\n\r\n"u8.ToArray());
        _sse = [.. sse];
        EventCount = events.Length;

        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(4096);
        _ = AcceptLoopAsync();
    }

    public int EventCount { get; }

    public string BaseUrl => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndPoint!).Port}";

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptAsync(_stop.Token);
                socket.NoDelay = true;
                _ = ServeAsync(socket);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { }
    }

    private async Task ServeAsync(Socket socket)
    {
        var buffer = new byte[64 * 1024];
        int length = 0;
        try
        {
            while (true)
            {
                int head, total;
                while (!TryFrame(buffer.AsSpan(0, length), out head, out total))
                {
                    int n = await socket.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, _stop.Token);
                    if (n == 0) return;
                    length += n;
                }
                bool stream = buffer.AsSpan(head, total - head).IndexOf("\"stream\":true"u8) >= 0;
                buffer.AsSpan(total, length - total).CopyTo(buffer);
                length -= total;
                if (!stream) await SendAsync(socket, _json);
                else foreach (var chunk in _sse) await SendAsync(socket, chunk);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { }
        finally { socket.Dispose(); }
    }

    private static async ValueTask SendAsync(Socket socket, byte[] bytes)
    {
        for (int sent = 0; sent < bytes.Length;) sent += await socket.SendAsync(bytes.AsMemory(sent), SocketFlags.None);
    }

    /// <summary>A complete request in <paramref name="data"/>: <paramref name="head"/> = where the body starts, <paramref name="total"/> = where it ends.</summary>
    private static bool TryFrame(ReadOnlySpan<byte> data, out int head, out int total)
    {
        head = total = 0;
        int end = data.IndexOf("\r\n\r\n"u8);
        if (end < 0) return false;
        head = end + 4;
        int at = data[..end].IndexOf("Content-Length: "u8);
        int bodyLength = 0;
        if (at >= 0)
        {
            for (int i = at + 16; i < end && data[i] is >= (byte)'0' and <= (byte)'9'; i++) bodyLength = bodyLength * 10 + (data[i] - '0');
        }
        total = head + bodyLength;
        return data.Length >= total;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
    }
}
