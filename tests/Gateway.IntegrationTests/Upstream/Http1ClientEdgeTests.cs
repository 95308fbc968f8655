using System.Text;
using Gateway.Proxy.Upstream;

namespace Gateway.IntegrationTests.Upstream;

/// <summary>The HTTP/1.1 upstream client against a scripted TCP server: framing edge cases, reuse, failure kinds, cancellation.</summary>
public sealed class Http1ClientEdgeTests : IDisposable
{
    private static readonly byte[] Body = "{\"model\":\"m\",\"messages\":[]}"u8.ToArray();
    private static readonly TimeSpan Soon = TimeSpan.FromSeconds(5);

    private readonly ScriptedServer _server = new();
    private readonly Http1Client _client = new();
    private readonly Http1Route _route;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(30)); // no test hangs the run

    public Http1ClientEdgeTests() => _route = _client.CreateRoute(_server.Url);

    public void Dispose()
    {
        _client.Dispose();
        _server.Dispose();
        _timeout.Dispose();
    }

    private ValueTask<Http1Response> Send(CancellationToken? token = null) => _client.SendAsync(_route, Body, "req-1", null, token ?? _timeout.Token);

    internal static async Task<string> ReadToEndAsync(Http1Response response, int bufferSize = 8192)
    {
        var buffer = new byte[bufferSize];
        var all = new MemoryStream();
        int n;
        while ((n = await response.ReadAsync(buffer)) > 0) all.Write(buffer, 0, n);
        return Encoding.UTF8.GetString(all.ToArray());
    }

    private static string Chunk(string data) => $"{Encoding.UTF8.GetByteCount(data):x}\r\n{data}\r\n";

    private const string JsonOk = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";

    [Fact]
    public async Task The_request_goes_out_exactly_as_specified()
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            var request = await c.ReadRequestAsync();
            await c.SendAsync(JsonOk);
            return request;
        });
        using (var response = await _client.SendAsync(_route, Body, "abc123", [new("Accept", "application/json")], _timeout.Token))
        {
            Assert.Equal(200, response.StatusCode);
            Assert.Equal("application/json", response.GetContentTypeString());
            Assert.Equal(11, response.ContentLength);
            Assert.Equal("{\"ok\":true}", await ReadToEndAsync(response));
        }
        Assert.Equal(
            $"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{_server.Port}\r\nContent-Type: application/json\r\nContent-Length: {Body.Length}\r\n" +
            "X-Request-ID: abc123\r\nAccept: application/json\r\n\r\n" + Encoding.UTF8.GetString(Body), await server);
    }

    [Fact]
    public async Task A_body_larger_than_the_socket_buffer_is_sent_whole()
    {
        var body = new byte[8 * 1024 * 1024]; // more than the kernel takes at once: the rest goes out with async sends
        new Random(7).NextBytes(body);
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await Task.Delay(200); // a slow reader: the client's socket buffer fills up
            var request = await c.ReadRequestAsync(maxBytes: 9 * 1024 * 1024);
            await c.SendAsync(JsonOk);
            return request;
        });
        using (var response = await _client.SendAsync(_route, body, null, null, _timeout.Token)) Assert.Equal("{\"ok\":true}", await ReadToEndAsync(response));
        var received = System.Text.Encoding.Latin1.GetBytes(await server);
        Assert.Equal(body, received[^body.Length..]);
    }

    [Fact]
    public async Task Sequential_requests_reuse_one_socket()
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            for (int i = 0; i < 3; i++)
            {
                await c.ReadRequestAsync();
                await c.SendAsync(i == 1 ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + Chunk("{\"ok\":true}") + "0\r\n\r\n" : JsonOk);
            }
        });
        for (int i = 0; i < 3; i++)
        {
            using var response = await Send();
            Assert.Equal("{\"ok\":true}", await ReadToEndAsync(response));
        }
        await server;
        Assert.Equal(1, _server.Accepted);
        Assert.Equal(1, _client.ConnectionsOpened(_route));
        Assert.Equal(1, _client.IdleConnections(_route));
    }

    [Fact]
    public async Task A_response_split_at_every_byte_is_read_whole()
    {
        const string events = "data: {\"a\":1}\n\ndata: [DONE]\n\n";
        var raw = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
                  Chunk("data: {\"a\":1}\n\n") + Chunk("data: [DONE]\n\n") + "0\r\n\r\n";
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendByteByByteAsync(raw);
            await c.ReadRequestAsync(); // the socket is reused for the next request
            await c.SendByteByByteAsync("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ok\":true}");
        });
        using (var response = await Send())
        {
            Assert.True(response.IsEventStream);
            Assert.Equal(events, await ReadToEndAsync(response, bufferSize: 7));
        }
        using (var response = await Send()) Assert.Equal("{\"ok\":true}", await ReadToEndAsync(response));
        await server;
        Assert.Equal(1, _server.Accepted);
    }

    [Fact]
    public async Task Chunk_extensions_and_trailers_are_ignored_and_the_connection_stays_reusable()
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=\"v;x\"\r\nhello\r\n6 ; a=b\r\n world\r\n0;last\r\nX-Trailer: 1\r\nY: 2\r\n\r\n");
            await c.ReadRequestAsync();
            await c.SendAsync(JsonOk);
        });
        using (var response = await Send()) Assert.Equal("hello world", await ReadToEndAsync(response));
        using (var response = await Send()) Assert.Equal("{\"ok\":true}", await ReadToEndAsync(response));
        await server;
        Assert.Equal(1, _server.Accepted);
    }

    [Fact]
    public async Task Connection_close_is_honoured_after_the_body()
    {
        var first = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 11\r\n\r\n{\"ok\":true}");
            return await c.ClientClosesWithinAsync(Soon);
        });
        using (var response = await Send()) Assert.Equal("{\"ok\":true}", await ReadToEndAsync(response));
        Assert.True(await first, "the client should close a connection the server marked Connection: close");
        Assert.Equal(0, _client.IdleConnections(_route));

        var second = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync(JsonOk);
        });
        using (var response = await Send()) Assert.Equal("{\"ok\":true}", await ReadToEndAsync(response));
        await second;
        Assert.Equal(2, _server.Accepted);
    }

    [Fact]
    public async Task Bytes_a_server_sends_after_a_response_keep_its_connection_from_the_next_request()
    {
        var server = Task.Run(async () =>
        {
            using (var c = await _server.AcceptAsync())
            {
                await c.ReadRequestAsync();
                await c.SendAsync(JsonOk);
                await Task.Delay(50); // the response is complete; then a second one nobody asked for, on the idle connection
                await c.SendAsync("HTTP/1.1 200 OK\r\ncontent-length: 14\r\n\r\n{\"stray\":true}");
                await Task.Delay(2000);
            }
        });
        using (var response = await Send()) Assert.Equal("{\"ok\":true}", await ReadToEndAsync(response));
        var fresh = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync(JsonOk);
        });
        await Task.Delay(300); // the stray bytes are in the idle connection's socket; under the 1 s poll threshold
        using (var response = await Send()) Assert.Equal("{\"ok\":true}", await ReadToEndAsync(response));
        await fresh;
        Assert.Equal(2, _server.Accepted);
        Assert.Equal(1, _route.Pool.FoundDeadBeforeUse);
        await server;
    }

    [Theory]
    [InlineData(100, 1)]  // reused at once: not polled, but the event loop already saw the FIN, so it is never written to
    [InlineData(1200, 1)] // idle over a second: polled (or seen by the loop), found closed, never written to
    public async Task A_pooled_connection_the_server_closed_while_idle_is_not_used(int idleMs, int foundDeadBeforeUse)
    {
        var closed = new TaskCompletionSource();
        var server = Task.Run(async () =>
        {
            using (var c = await _server.AcceptAsync())
            {
                await c.ReadRequestAsync();
                await c.SendAsync(JsonOk);
                await Task.Delay(100); // the response is out; now close it idle, as uvicorn does after its keep-alive timeout
            }
            closed.SetResult();
            using var fresh = await _server.AcceptAsync();
            var request = await fresh.ReadRequestAsync();
            await fresh.SendAsync(JsonOk);
            return request;
        });
        using (var response = await Send()) await ReadToEndAsync(response);
        await closed.Task;
        await Task.Delay(idleMs); // let the FIN arrive
        using (var response = await Send()) Assert.Equal("{\"ok\":true}", await ReadToEndAsync(response));
        Assert.Contains("X-Request-ID: req-1", await server);
        Assert.Equal(2, _server.Accepted);
        Assert.Equal(2, _client.ConnectionsOpened(_route));
        Assert.Equal(foundDeadBeforeUse, _route.Pool.FoundDeadBeforeUse);
    }

    [Fact]
    public async Task A_reused_connection_closed_without_an_answer_is_retried_once_on_a_new_one()
    {
        var server = Task.Run(async () =>
        {
            int requestsOnFirst = 0;
            using (var c = await _server.AcceptAsync())
            {
                await c.ReadRequestAsync();
                await c.SendAsync(JsonOk);
                await c.ReadRequestAsync(); // the close races the request: read it, answer nothing
                requestsOnFirst = 2;
            }
            using var fresh = await _server.AcceptAsync();
            await fresh.ReadRequestAsync();
            await fresh.SendAsync(JsonOk);
            return requestsOnFirst;
        });
        using (var response = await Send()) await ReadToEndAsync(response);
        using (var response = await Send()) Assert.Equal("{\"ok\":true}", await ReadToEndAsync(response));
        Assert.Equal(2, await server);
        Assert.Equal(2, _server.Accepted);
    }

    [Fact]
    public async Task A_new_connection_closed_before_the_head_fails_without_a_retry()
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
        });
        var e = await Assert.ThrowsAsync<UpstreamException>(async () => await Send());
        await server;
        Assert.Equal(UpstreamFailure.ClosedBeforeHeaders, e.Failure);
        Assert.False(e.RequestNotSent);
        Assert.Equal(1, _server.Accepted);
        Assert.Equal(0, _client.ConnectionsOpen(_route));
    }

    [Fact]
    public async Task A_reused_connection_that_dies_twice_reports_the_second_failure()
    {
        var server = Task.Run(async () =>
        {
            using (var c = await _server.AcceptAsync())
            {
                await c.ReadRequestAsync();
                await c.SendAsync(JsonOk);
                await c.ReadRequestAsync();
            }
            using var fresh = await _server.AcceptAsync();
            await fresh.ReadRequestAsync(); // the retry: closed unanswered as well
        });
        using (var response = await Send()) await ReadToEndAsync(response);
        var e = await Assert.ThrowsAsync<UpstreamException>(async () => await Send());
        await server;
        Assert.Equal(UpstreamFailure.ClosedBeforeHeaders, e.Failure);
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial\":")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n20\r\ndata: {\"partial\"")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")]
    public async Task Eof_mid_body_is_an_incomplete_body(string raw)
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync(raw);
        });
        using var response = await Send();
        var e = await Assert.ThrowsAsync<UpstreamException>(() => ReadToEndAsync(response));
        Assert.Equal(UpstreamFailure.BodyIncomplete, e.Failure);
        await server;
        Assert.Equal(0, _client.ConnectionsOpen(_route));
    }

    [Theory]
    [InlineData("HTTP/1.1 2OO OK\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello")]
    [InlineData("hello there\r\n\r\n")]
    [InlineData("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")]
    [InlineData("HTTP/1.1 999 Weird\r\nContent-Length: 0\r\n\r\n")]
    [InlineData("HTTP/1.1 600 Beyond\r\nContent-Length: 0\r\n\r\n")]
    public async Task A_malformed_head_is_an_invalid_response(string raw)
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync(raw);
            return await c.ClientClosesWithinAsync(Soon);
        });
        var e = await Assert.ThrowsAsync<UpstreamException>(async () => await Send());
        Assert.Equal(UpstreamFailure.InvalidResponse, e.Failure);
        Assert.True(await server);
    }

    [Fact]
    public async Task Bad_chunked_framing_is_an_invalid_response()
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n");
            await c.ClientClosesWithinAsync(Soon);
        });
        using var response = await Send();
        var e = await Assert.ThrowsAsync<UpstreamException>(() => ReadToEndAsync(response));
        Assert.Equal(UpstreamFailure.InvalidResponse, e.Failure);
        await server;
    }

    [Fact]
    public async Task An_oversized_head_is_refused()
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            try { await c.SendAsync("HTTP/1.1 200 OK\r\n" + string.Concat(Enumerable.Range(0, 1000).Select(i => $"X-Filler-{i}: {new string('x', 40)}\r\n")) + "\r\n"); }
            catch (System.Net.Sockets.SocketException) { } // the client may close while we still send
        });
        var e = await Assert.ThrowsAsync<UpstreamException>(async () => await Send());
        Assert.Equal(UpstreamFailure.HeadersTooLarge, e.Failure);
        await server;
    }

    [Fact]
    public async Task A_large_head_within_the_limit_is_read()
    {
        var filler = string.Concat(Enumerable.Range(0, 400).Select(i => $"X-Filler-{i}: {new string('x', 40)}\r\n")); // ~22 KB
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync("HTTP/1.1 200 OK\r\n" + filler + "Content-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}");
        });
        using var response = await Send();
        Assert.Equal("application/json", response.GetContentTypeString());
        Assert.Equal("{\"ok\":true}", await ReadToEndAsync(response));
        await server;
    }

    [Fact]
    public async Task Interim_1xx_heads_are_skipped()
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n");
            await Task.Delay(50);
            await c.SendAsync(JsonOk);
        });
        using var response = await Send();
        Assert.Equal(200, response.StatusCode);
        Assert.Equal("{\"ok\":true}", await ReadToEndAsync(response));
        await server;
    }

    [Theory]
    [InlineData(204)]
    [InlineData(304)]
    public async Task No_content_statuses_have_no_body_whatever_the_headers_say(int status)
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync($"HTTP/1.1 {status} X\r\nContent-Length: 10\r\n\r\n");
            await c.ReadRequestAsync();
            await c.SendAsync(JsonOk);
        });
        using (var response = await Send())
        {
            Assert.Equal(status, response.StatusCode);
            Assert.Equal(0, response.ContentLength);
            Assert.Equal("", await ReadToEndAsync(response));
        }
        using (var response = await Send()) Assert.Equal("{\"ok\":true}", await ReadToEndAsync(response));
        await server;
        Assert.Equal(1, _server.Accepted);
    }

    [Fact]
    public async Task A_body_without_length_is_read_until_close_and_not_pooled()
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it");
        });
        using (var response = await Send())
        {
            Assert.Equal(-1, response.ContentLength);
            await server; // closed once sent
            Assert.Equal("all of it", await ReadToEndAsync(response));
        }
        Assert.Equal(0, _client.IdleConnections(_route));
    }

    [Fact]
    public async Task Cancelling_mid_stream_closes_the_socket_at_once()
    {
        var firstChunk = new TaskCompletionSource();
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + Chunk("data: {\"a\":1}\n\n"));
            return await c.ClientClosesWithinAsync(Soon); // a generation that keeps going until the client leaves
        });
        using var clientGone = new CancellationTokenSource();
        using var response = await Send(_timeout.Token);
        var buffer = new byte[256];
        Assert.True(await response.ReadAsync(buffer) > 0);
        var pending = response.ReadAsync(buffer, clientGone.Token).AsTask();
        await Task.Delay(50);
        Assert.False(pending.IsCompleted);
        clientGone.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
        Assert.True(await server, "the server should see the connection end when the read is cancelled");
    }

    [Fact]
    public async Task Cancelling_the_request_token_closes_the_socket_even_when_nobody_reads()
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + Chunk("data: {\"a\":1}\n\n"));
            return await c.ClientClosesWithinAsync(Soon);
        });
        using var request = new CancellationTokenSource();
        using var response = await Send(request.Token);
        request.Cancel();
        Assert.True(await server);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await response.ReadAsync(new byte[16]));
    }

    [Fact]
    public async Task Cancelling_while_waiting_for_the_head_closes_the_socket()
    {
        using var request = new CancellationTokenSource();
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync(); // vLLM queueing the request: no answer yet
            request.Cancel();           // the client leaves meanwhile
            return await c.ClientClosesWithinAsync(Soon);
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await Send(request.Token));
        Assert.True(await server);
        Assert.Equal(0, _client.ConnectionsOpen(_route));
    }

    [Fact]
    public async Task Disposing_before_the_body_ends_closes_instead_of_pooling()
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + Chunk("data: {\"a\":1}\n\n"));
            return await c.ClientClosesWithinAsync(Soon);
        });
        using (var response = await Send()) Assert.True(await response.ReadAsync(new byte[256]) > 0);
        Assert.True(await server);
        Assert.Equal(0, _client.IdleConnections(_route));
        Assert.Equal(0, _client.ConnectionsOpen(_route));
    }

    [Fact]
    public async Task A_terminating_chunk_already_received_lets_an_early_dispose_pool_the_connection()
    {
        var tailSent = new TaskCompletionSource();
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + Chunk("data: [DONE]\n\n"));
            await tailSent.Task;
            await c.SendAsync("0\r\n\r\n");
            await c.ReadRequestAsync();
            await c.SendAsync(JsonOk);
        });
        using (var response = await Send())
        {
            // The relay stops at [DONE] and never reads the end of the body; the tail arrives before it disposes.
            Assert.Equal("data: [DONE]\n\n", Encoding.UTF8.GetString((await ReadSome(response)).Span));
            tailSent.SetResult();
            await Task.Delay(100);
        }
        Assert.Equal(1, _client.IdleConnections(_route));
        using (var response = await Send()) Assert.Equal("{\"ok\":true}", await ReadToEndAsync(response));
        await server;
        Assert.Equal(1, _server.Accepted);
    }

    private static async Task<ReadOnlyMemory<byte>> ReadSome(Http1Response response)
    {
        var buffer = new byte[256];
        int n = await response.ReadAsync(buffer);
        return buffer.AsMemory(0, n);
    }

    [Fact]
    public async Task A_zero_byte_read_waits_for_data_and_holds_no_buffer()
    {
        var next = new TaskCompletionSource();
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + Chunk("data: 1\n\n"));
            await next.Task;
            await c.SendAsync(Chunk("data: 2\n\n") + "0\r\n\r\n");
        });
        using var response = await Send();
        Assert.Equal("data: 1\n\n", Encoding.UTF8.GetString((await ReadSome(response)).Span));
        var wait = response.ReadAsync(Memory<byte>.Empty).AsTask();
        await Task.Delay(200);
        Assert.False(wait.IsCompleted, "a zero-byte read must wait for data, not return at once");
        Assert.False(ConnectionOf(response).HoldsBuffer);
        next.SetResult();
        Assert.Equal(0, await wait.WaitAsync(Soon));
        Assert.Equal("data: 2\n\n", await ReadToEndAsync(response));
        await server;
    }

    /// <summary>
    /// A non-stream answer can take the whole generation: waiting for its head must not hold the 16 KB head buffer (9,000 waiting
    /// requests would hold 144 MB), so it is rented only when the head's first bytes are there.
    /// </summary>
    [Fact]
    public async Task A_request_waiting_for_its_head_holds_no_buffer()
    {
        var answer = new TaskCompletionSource();
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
            await c.ReadRequestAsync();
            await answer.Task;
            await c.SendAsync("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ok\":true}");
        });
        Http1Connection connection;
        using (var first = await Send())
        {
            connection = ConnectionOf(first);
            Assert.Equal("{}", await ReadToEndAsync(first));
        }
        var pending = Send().AsTask(); // reuses the pooled connection; the server holds the answer back
        await Task.Delay(200);
        Assert.False(pending.IsCompleted);
        Assert.False(connection.HoldsBuffer, "a connection waiting for its response head must hold no buffer");
        answer.SetResult();
        using (var second = await pending.WaitAsync(Soon))
        {
            Assert.Same(connection, ConnectionOf(second));
            Assert.Equal("{\"ok\":true}", await ReadToEndAsync(second));
        }
        await server;
        Assert.Equal(1, _server.Accepted);
    }

    private static Http1Connection ConnectionOf(Http1Response response) =>
        (Http1Connection)typeof(Http1Response).GetField("_connection", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(response)!;

    [Fact]
    public async Task Idle_connections_are_closed_after_the_idle_timeout()
    {
        using var client = new Http1Client(new Http1ClientOptions { IdleTimeout = TimeSpan.FromMilliseconds(200) });
        var route = client.CreateRoute(_server.Url);
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            await c.ReadRequestAsync();
            await c.SendAsync(JsonOk);
            var waited = System.Diagnostics.Stopwatch.StartNew();
            bool closed = await c.ClientClosesWithinAsync(Soon);
            return (closed, waited.Elapsed);
        });
        using (var response = await client.SendAsync(route, Body, null, null, _timeout.Token)) await ReadToEndAsync(response);
        Assert.Equal(1, client.IdleConnections(route));
        var (closed, after) = await server;
        Assert.True(closed, "the idle connection should be closed by the sweep");
        Assert.True(after >= TimeSpan.FromMilliseconds(150), $"closed after {after.TotalMilliseconds} ms, before the idle timeout");
        Assert.Equal(0, client.IdleConnections(route));
        // The open count drops just after the socket closes, so the server can see the close first (a loaded CI machine did).
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (client.ConnectionsOpen(route) != 0 && deadline.Elapsed < TimeSpan.FromSeconds(5)) await Task.Delay(10);
        Assert.Equal(0, client.ConnectionsOpen(route));
    }

    [Fact]
    public async Task A_stale_copy_of_a_response_cannot_touch_the_next_exchange()
    {
        var server = Task.Run(async () =>
        {
            using var c = await _server.AcceptAsync();
            for (int i = 0; i < 2; i++)
            {
                await c.ReadRequestAsync();
                await c.SendAsync(JsonOk);
            }
        });
        var first = await Send();
        await ReadToEndAsync(first);
        var copy = first;
        first.Dispose();
        using var second = await Send(); // the same connection, next exchange
        copy.Dispose();                   // must not release or close the second exchange
        Assert.Throws<ObjectDisposedException>(() => copy.StatusCode);
        Assert.Equal("{\"ok\":true}", await ReadToEndAsync(second));
        await server;
        Assert.Equal(1, _server.Accepted);
    }

    [Fact]
    public async Task A_refused_connect_is_a_connect_failure_nothing_was_sent()
    {
        int port = _server.Port;
        _server.Dispose(); // nothing listens there now
        var route = _client.CreateRoute(new Uri($"http://127.0.0.1:{port}/v1/chat/completions"));
        var e = await Assert.ThrowsAsync<UpstreamException>(async () => await _client.SendAsync(route, Body, null, null, _timeout.Token));
        Assert.Equal(UpstreamFailure.ConnectFailed, e.Failure);
        Assert.True(e.RequestNotSent);
    }

    [Fact]
    public async Task A_connect_that_gets_no_answer_times_out()
    {
        // A listener whose accept queue is full: Linux drops further SYNs, so the connect neither succeeds nor fails.
        using var full = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        full.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        full.Listen(1);
        var fillers = new List<System.Net.Sockets.Socket>();
        try
        {
            for (int i = 0; i < 4; i++)
            {
                var filler = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                fillers.Add(filler);
                using var quick = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
                try { await filler.ConnectAsync(full.LocalEndPoint!, quick.Token); } catch (OperationCanceledException) { break; }
            }
            using var client = new Http1Client(new Http1ClientOptions { ConnectTimeout = TimeSpan.FromMilliseconds(300) });
            var route = client.CreateRoute(new Uri($"http://127.0.0.1:{((System.Net.IPEndPoint)full.LocalEndPoint!).Port}/v1/chat/completions"));
            var e = await Assert.ThrowsAsync<UpstreamException>(async () => await client.SendAsync(route, Body, null, null, _timeout.Token));
            Assert.Equal(UpstreamFailure.ConnectTimeout, e.Failure);
            Assert.True(e.RequestNotSent);
        }
        finally
        {
            foreach (var filler in fillers) filler.Dispose();
        }
    }

    [Fact]
    public async Task A_bad_header_value_is_refused_before_anything_is_sent()
    {
        await Assert.ThrowsAsync<ArgumentException>(async () => await _client.SendAsync(_route, Body, "id\r\nX-Evil: 1", null, _timeout.Token));
        Assert.Equal(0, _client.ConnectionsOpened(_route));
    }
}
