using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Gateway.IntegrationTests.Upstream;

/// <summary>
/// A raw TCP server whose every byte the test writes by hand: the edge cases a real HTTP server would never produce on demand
/// (splits at every byte, early EOF, malformed heads, closes that race a request).
/// </summary>
internal sealed class ScriptedServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private int _accepted;

    public ScriptedServer() => _listener.Start();

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public Uri Url => new($"http://127.0.0.1:{Port}/v1/chat/completions");

    public int Accepted => Volatile.Read(ref _accepted);

    public async Task<ScriptedConnection> AcceptAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var socket = await _listener.AcceptSocketAsync(timeout.Token);
        socket.NoDelay = true;
        Interlocked.Increment(ref _accepted);
        return new ScriptedConnection(socket);
    }

    public void Dispose() => _listener.Stop();
}

internal sealed class ScriptedConnection(Socket socket) : IDisposable
{
    private byte[] _buffer = new byte[64 * 1024];
    private int _length;

    /// <summary>One request: the head through its empty line plus a Content-Length body, as (Latin-1) text.</summary>
    public async Task<string> ReadRequestAsync(int maxBytes = 64 * 1024)
    {
        if (_buffer.Length < maxBytes) Array.Resize(ref _buffer, maxBytes);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            int end = _buffer.AsSpan(0, _length).IndexOf("\r\n\r\n"u8);
            if (end >= 0)
            {
                var text = Encoding.Latin1.GetString(_buffer, 0, end);
                int bodyLength = 0;
                foreach (var line in text.Split("\r\n"))
                {
                    if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)) bodyLength = int.Parse(line[15..].Trim());
                }
                int total = end + 4 + bodyLength;
                if (_length >= total)
                {
                    var request = Encoding.Latin1.GetString(_buffer, 0, total);
                    _buffer.AsSpan(total, _length - total).CopyTo(_buffer);
                    _length -= total;
                    return request;
                }
            }
            int n = await socket.ReceiveAsync(_buffer.AsMemory(_length), SocketFlags.None, timeout.Token);
            if (n == 0) throw new EndOfStreamException($"The client closed after {_length} bytes of a request.");
            _length += n;
        }
    }

    public Task SendAsync(string text) => SendAsync(Encoding.Latin1.GetBytes(text));

    public async Task SendAsync(byte[] bytes)
    {
        for (int sent = 0; sent < bytes.Length;) sent += await socket.SendAsync(bytes.AsMemory(sent), SocketFlags.None);
    }

    /// <summary>Sends each byte on its own, with a pause, so the client's reads see every possible split.</summary>
    public async Task SendByteByByteAsync(string text)
    {
        foreach (var b in Encoding.Latin1.GetBytes(text))
        {
            await socket.SendAsync(new[] { b }, SocketFlags.None);
            await Task.Delay(1);
        }
    }

    /// <summary>True when the client closes (EOF or reset) within <paramref name="timeout"/>; data it sends meanwhile is discarded.</summary>
    public async Task<bool> ClientClosesWithinAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var scratch = new byte[4096];
        try
        {
            while (await socket.ReceiveAsync(scratch, SocketFlags.None, cts.Token) > 0) { }
            return true;
        }
        catch (SocketException) { return true; } // reset
        catch (OperationCanceledException) { return false; }
    }

    /// <summary>A graceful close (FIN), as uvicorn closes an idle keep-alive connection.</summary>
    public void Close() => socket.Dispose();

    public void Dispose() => socket.Dispose();
}
