using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Gateway.Http;
using Gateway.Http.Transport;
using Gateway.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http.Features;

namespace Gateway.Core.Tests.Http;

/// <summary>
/// Kestrel on the loop transport: every request can name the event loop that watches its client connection, also when it runs off
/// the loops (a connection's first request, which Kestrel starts on the thread pool, and every request with inline_io off), so the
/// proxy can keep the upstream exchange on the client's thread.
/// </summary>
public sealed class LoopTransportTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Every_request_names_its_connections_loop(bool inlineIo)
    {
        var app = new RecordingApp();
        await using var server = new HttpServer(new IPEndPoint(IPAddress.Loopback, 0), new HttpServerLimits { LoopTransport = true, InlineIo = inlineIo });
        await server.StartAsync(app, CancellationToken.None);

        for (int c = 0; c < 3; c++) // connections are spread over the loops in turn: each names its own
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(IPAddress.Loopback, server.Port);
            for (int r = 0; r < 3; r++) await GetAsync(socket);
        }

        var seen = app.Seen.ToArray();
        Assert.Equal(9, seen.Length);
        Assert.All(seen, s => Assert.NotNull(s.Named));
        foreach (var connection in seen.GroupBy(s => s.ConnectionId))
        {
            Assert.Single(connection.Select(s => s.Named).Distinct()); // one loop per connection
            // The named loop is the one that runs the connection: with inline_io, a request that runs on a loop runs on that one
            // (from the second request on it always does); without, none runs on a loop.
            if (inlineIo) Assert.All(connection, s => Assert.True(s.Current is null || s.Current == s.Named));
            else Assert.All(connection, s => Assert.Null(s.Current));
        }
        if (inlineIo) Assert.Contains(seen, s => s.Current is not null && s.Current == s.Named);
    }

    [Theory]
    [InlineData(true, 1)]  // the loop transport: each send waits 1 s at most
    [InlineData(false, 2)] // Kestrel's socket transport: its response rate check, whose grace must exceed its 1 s heartbeat
    public async Task A_client_that_stops_reading_is_cut_off_after_the_write_timeout(bool loopTransport, int seconds)
    {
        var app = new EndlessApp();
        await using var server = new HttpServer(new IPEndPoint(IPAddress.Loopback, 0),
            new HttpServerLimits { LoopTransport = loopTransport, InlineIo = true, WriteTimeout = TimeSpan.FromSeconds(seconds) });
        await server.StartAsync(app, CancellationToken.None);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await socket.ConnectAsync(IPAddress.Loopback, server.Port);
        await socket.SendAsync("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"u8.ToArray()); // and never reads

        // The app writes until its flush fails: the connection was shut down when one send waited a second for the client.
        var ended = await Task.WhenAny(app.Ended.Task, Task.Delay(TimeSpan.FromSeconds(20)));
        Assert.Same(app.Ended.Task, ended);
        var (written, elapsed) = await app.Ended.Task;
        Assert.InRange(elapsed, TimeSpan.FromSeconds(seconds * 0.9), TimeSpan.FromSeconds(seconds + 7));
        Assert.True(written > 64 * 1024, $"{written} bytes written before the cut"); // the kernel's buffers filled first
    }

    /// <summary>Streams 16 KB chunks, flushing each, until a flush fails or reports the connection gone.</summary>
    private sealed class EndlessApp : IHttpApplication<IFeatureCollection>
    {
        public readonly TaskCompletionSource<(long Written, TimeSpan Elapsed)> Ended = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public IFeatureCollection CreateContext(IFeatureCollection contextFeatures) => contextFeatures;
        public void DisposeContext(IFeatureCollection context, Exception? exception) { }

        public async Task ProcessRequestAsync(IFeatureCollection features)
        {
            var exchange = new Exchange(features);
            exchange.Response.StatusCode = 200;
            await exchange.ResponseBody.StartAsync();
            var chunk = new byte[16 * 1024];
            long written = 0;
            var clock = System.Diagnostics.Stopwatch.StartNew(); // filling the kernel's and the pipe's buffers takes milliseconds
            try
            {
                while (true)
                {
                    var result = await exchange.Writer.WriteAsync(chunk, exchange.RequestAborted);
                    if (result.IsCompleted || result.IsCanceled) break;
                    written += chunk.Length;
                }
            }
            catch (Exception) { } // the connection is gone
            Ended.TrySetResult((written, clock.Elapsed));
        }
    }

    private static async Task GetAsync(Socket socket)
    {
        await socket.SendAsync("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"u8.ToArray());
        var buffer = new byte[1024];
        var text = new StringBuilder();
        using var timeout = new CancellationTokenSource(Patience);
        while (!text.ToString().EndsWith("\r\n\r\nok", StringComparison.Ordinal))
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            Assert.NotEqual(0, n);
            text.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
    }

    private sealed record Sighting(string ConnectionId, EventLoop? Named, EventLoop? Current);

    private sealed class RecordingApp : IHttpApplication<IFeatureCollection>
    {
        public readonly ConcurrentQueue<Sighting> Seen = new();

        public IFeatureCollection CreateContext(IFeatureCollection contextFeatures) => contextFeatures;
        public void DisposeContext(IFeatureCollection context, Exception? exception) { }

        public async Task ProcessRequestAsync(IFeatureCollection features)
        {
            var exchange = new Exchange(features);
            Seen.Enqueue(new Sighting(features.Get<IHttpConnectionFeature>()!.ConnectionId, exchange.ConnectionLoop, EventLoop.Current));
            await exchange.WriteBodyAsync(200, "text/plain", "ok"u8.ToArray());
        }
    }
}
