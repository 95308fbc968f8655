using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Gateway.Config;
using Gateway.Proxy;
using Gateway.Proxy.Upstream;

namespace Gateway.Benchmarks;

/// <summary>
/// The upstream exchanges the forward step makes, written once for both clients and shared by the benchmark and the probe:
/// SocketsHttpHandler set up by <see cref="UpstreamClient"/> (HttpRequestMessage, BufferContent, X-Request-ID, response stream) and
/// <see cref="Http1Client"/>. SSE is read through a PipeReader with zero-byte reads, as the relay reads it.
/// </summary>
internal sealed class UpstreamCalls : IDisposable
{
    public const string RequestId = "0123456789abcdef0123456789abcdef";
    public static readonly StreamPipeReaderOptions RelayReaderOptions = new(bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: true);
    private const string Messages = "\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"},{\"role\":\"user\",\"content\":\"Hello! How are you today?\"}]";

    /// <summary>A 16-token chat completion.</summary>
    public static readonly byte[] JsonBody = Encoding.UTF8.GetBytes($"{{\"model\":\"Qwen/Qwen2.5-7B-Instruct\",{Messages},\"max_tokens\":16}}");

    /// <summary>A 20-token stream with usage: role + 20 tokens + usage + [DONE] = 23 events from the simulator.</summary>
    public static readonly byte[] SseBody = Encoding.UTF8.GetBytes(
        $"{{\"model\":\"Qwen/Qwen2.5-7B-Instruct\",{Messages},\"max_tokens\":20,\"stream\":true,\"stream_options\":{{\"include_usage\":true,\"continuous_usage_stats\":true}}}}");

    private readonly Uri _uri;
    private readonly byte[] _buffer = new byte[16 * 1024];

    public UpstreamCalls(string baseUrl, Action<SocketsHttpHandler>? configure = null)
    {
        _uri = new Uri(baseUrl + "/v1/chat/completions");
        Sockets = new UpstreamClient(new ProxyOptions());
        configure?.Invoke(Sockets.Handler);
        Http1 = new Http1Client();
        Route = Http1.CreateRoute(_uri);
    }

    public UpstreamClient Sockets { get; }
    public Http1Client Http1 { get; }
    public Http1Route Route { get; }

    public HttpRequestMessage Message(byte[] body)
    {
        var message = new HttpRequestMessage(HttpMethod.Post, _uri)
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new BodyContent(body),
        };
        message.Headers.TryAddWithoutValidation("X-Request-ID", RequestId);
        return message;
    }

    public async Task<long> JsonSocketsAsync(CancellationToken cancellationToken)
    {
        using var message = Message(JsonBody);
        using var response = await Sockets.Invoker.SendAsync(message, cancellationToken);
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        long total = 0;
        int n;
        while ((n = await stream.ReadAsync(_buffer, cancellationToken)) > 0) total += n;
        return total;
    }

    public async Task<long> JsonHttp1Async(CancellationToken cancellationToken)
    {
        using var response = await Http1.SendAsync(Route, JsonBody, RequestId, null, cancellationToken);
        long total = 0;
        int n;
        while ((n = await response.ReadAsync(_buffer, cancellationToken)) > 0) total += n;
        return total;
    }

    public async Task<long> SseSocketsAsync(CancellationToken cancellationToken, bool stopAtDone = false)
    {
        using var message = Message(SseBody);
        using var response = await Sockets.Invoker.SendAsync(message, cancellationToken);
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        return await DrainAsync(PipeReader.Create(stream, RelayReaderOptions), stopAtDone, cancellationToken);
    }

    public async Task<long> SseHttp1Async(CancellationToken cancellationToken, bool stopAtDone = false)
    {
        using var response = await Http1.SendAsync(Route, SseBody, RequestId, null, cancellationToken);
        return await DrainAsync(PipeReader.Create(response.Body, RelayReaderOptions), stopAtDone, cancellationToken);
    }

    /// <summary>The same through the client's own PipeReader instead of PipeReader.Create over its body stream.</summary>
    public async Task<long> SseHttp1ReaderAsync(CancellationToken cancellationToken, bool stopAtDone = false)
    {
        using var response = await Http1.SendAsync(Route, SseBody, RequestId, null, cancellationToken);
        return await DrainAsync(response.BodyReader, stopAtDone, cancellationToken);
    }

    /// <summary>Reads to the end, or (as the relay does) only until <c>data: [DONE]</c>.</summary>
    private static async Task<long> DrainAsync(PipeReader reader, bool stopAtDone, CancellationToken cancellationToken)
    {
        long total = 0;
        while (true)
        {
            var read = await reader.ReadAsync(cancellationToken);
            var buffer = read.Buffer;
            total += buffer.Length;
            bool done = stopAtDone && EndsWithDone(buffer);
            reader.AdvanceTo(buffer.End);
            if (read.IsCompleted || done) break;
        }
        await reader.CompleteAsync();
        return total;
    }

    private static bool EndsWithDone(in ReadOnlySequence<byte> buffer)
    {
        var done = "data: [DONE]\n\n"u8;
        if (buffer.Length < done.Length) return false;
        Span<byte> tail = stackalloc byte[14];
        buffer.Slice(buffer.Length - done.Length).CopyTo(tail);
        return tail.SequenceEqual(done);
    }

    public void Dispose()
    {
        Sockets.Dispose();
        Http1.Dispose();
    }

    /// <summary>The gateway's <c>BufferContent</c> (Gateway.Proxy, internal) line for line, so the AOT probe needs no internals.</summary>
    private sealed class BodyContent : HttpContent
    {
        private readonly ReadOnlyMemory<byte> _body;

        public BodyContent(ReadOnlyMemory<byte> body)
        {
            _body = body;
            Headers.TryAddWithoutValidation("Content-Type", "application/json");
        }

        protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) => stream.WriteAsync(_body).AsTask();

        protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context, CancellationToken cancellationToken) =>
            stream.WriteAsync(_body, cancellationToken).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = _body.Length;
            return true;
        }
    }
}
