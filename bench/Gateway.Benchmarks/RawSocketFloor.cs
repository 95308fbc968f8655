using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;

namespace Gateway.Benchmarks;

/// <summary>
/// The floor under any HTTP/1.1 client on .NET sockets: a pre-built request sent on a kept-alive socket and the response received
/// until its framing says it ended (a Content-Length or the terminating chunk found by a byte search), with no parsing, no pool
/// logic, no stream objects. What a client costs above this is what its design can still win.
/// </summary>
internal sealed class RawSocketFloor(Uri baseUrl) : IDisposable
{
    private sealed class Connection(Socket socket)
    {
        public readonly Socket Socket = socket;
        public readonly byte[] Buffer = new byte[64 * 1024];
    }

    private readonly ConcurrentBag<Connection> _idle = [];
    private readonly byte[] _json = Request(baseUrl, UpstreamCalls.JsonBody);
    private readonly byte[] _sse = Request(baseUrl, UpstreamCalls.SseBody);

    private static byte[] Request(Uri baseUrl, byte[] body) =>
        [.. Encoding.ASCII.GetBytes($"POST /v1/chat/completions HTTP/1.1\r\nHost: {baseUrl.Authority}\r\nContent-Type: application/json\r\n" +
            $"Content-Length: {body.Length}\r\nX-Request-ID: {UpstreamCalls.RequestId}\r\n\r\n"), .. body];

    public Task<long> JsonAsync(CancellationToken cancellationToken) => ExchangeAsync(_json, sse: false, cancellationToken);

    public Task<long> SseAsync(CancellationToken cancellationToken) => ExchangeAsync(_sse, sse: true, cancellationToken);

    private async Task<long> ExchangeAsync(byte[] request, bool sse, CancellationToken cancellationToken)
    {
        if (!_idle.TryTake(out var connection))
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(baseUrl.Host, baseUrl.Port, cancellationToken);
            connection = new Connection(socket);
        }
        await connection.Socket.SendAsync(request, SocketFlags.None, cancellationToken);
        int length = 0;
        while (true)
        {
            int n = await connection.Socket.ReceiveAsync(connection.Buffer.AsMemory(length), SocketFlags.None, cancellationToken);
            if (n == 0) throw new IOException("closed");
            length += n;
            if (sse ? connection.Buffer.AsSpan(0, length).EndsWith("\r\n0\r\n\r\n"u8) : JsonComplete(connection.Buffer.AsSpan(0, length))) break;
        }
        _idle.Add(connection);
        return length;
    }

    private static bool JsonComplete(ReadOnlySpan<byte> data)
    {
        int end = data.IndexOf("\r\n\r\n"u8);
        if (end < 0) return false;
        int at = data[..end].IndexOf("content-length: "u8);
        int body = 0;
        for (int i = at + 16; data[i] is >= (byte)'0' and <= (byte)'9'; i++) body = body * 10 + (data[i] - '0');
        return data.Length >= end + 4 + body;
    }

    public void Dispose()
    {
        while (_idle.TryTake(out var connection)) connection.Socket.Dispose();
    }
}
