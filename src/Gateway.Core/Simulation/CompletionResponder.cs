using System.Buffers;
using System.IO.Pipelines;
using System.Text.Encodings.Web;
using System.Text.Json;
using Gateway.Http;
using Gateway.Json;
using Microsoft.AspNetCore.Http.Features;

namespace Gateway.Simulation;

/// <summary>
/// /v1/chat/completions and /v1/completions in vLLM's exact wire format (key order, nulls, <c>stop_reason</c> placement, usage
/// chunks). The streaming loop writes pre-encoded fragments and formatted integers straight into the response pipe.
/// </summary>
internal static class CompletionResponder
{
    // Python's json output keeps non-ASCII as is; the relaxed encoder is the closest match.
    internal static readonly JsonWriterOptions WriterOptions = JsonText.Relaxed;

    private static ReadOnlySpan<byte> RoleChunk => "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]"u8;
    private static ReadOnlySpan<byte> ChatTokenStart => "{\"index\":0,\"delta\":{\"content\":\"tok"u8;
    private static ReadOnlySpan<byte> ChatTokenEnd => " \"},\"logprobs\":null,\"finish_reason\":null}]"u8;
    private static ReadOnlySpan<byte> TextTokenStart => "{\"index\":0,\"text\":\"tok"u8;
    private static ReadOnlySpan<byte> TextTokenEnd => " \",\"logprobs\":null,\"finish_reason\":null,\"stop_reason\":null}]"u8;
    private static ReadOnlySpan<byte> ChatLastEnd => " \"},\"logprobs\":null,\"finish_reason\":\""u8;
    private static ReadOnlySpan<byte> TextLastEnd => " \",\"logprobs\":null,\"finish_reason\":\""u8;
    private static ReadOnlySpan<byte> LastTail => "\",\"stop_reason\":null}]"u8;
    private static ReadOnlySpan<byte> UsageStart => ",\"usage\":{\"prompt_tokens\":"u8;
    private static ReadOnlySpan<byte> UsageTotal => ",\"total_tokens\":"u8;
    private static ReadOnlySpan<byte> UsageCompletion => ",\"completion_tokens\":"u8;
    private static ReadOnlySpan<byte> EventEnd => "}\n\n"u8;
    private static ReadOnlySpan<byte> Done => "data: [DONE]\n\n"u8;

    public static int CompletionTokens(SimRequest request, SimulatorOptions options)
    {
        var tokens = Math.Max(1, options.Tokens);
        if (options.TokensSigma > 0) tokens = SampleLength(tokens, options.TokensSigma, Random.Shared);
        return request.MaxTokens is { } max ? Math.Min(max, tokens) : tokens;
    }

    /// <summary>A log-normal length with the given median and sigma, at least 1 and at most 16 × the median.</summary>
    internal static int SampleLength(int median, double sigma, Random random)
    {
        // Box–Muller: one standard normal from two uniforms (1 − u keeps the logarithm's argument in (0, 1]).
        var normal = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var length = median * Math.Exp(sigma * normal);
        return (int)Math.Clamp(Math.Round(length), 1, 16.0 * median);
    }

    /// <summary>"length" when the request's own limit cut the completion, else "stop" (the model ended by itself).</summary>
    private static string FinishReason(SimRequest request, int tokens) => request.MaxTokens == tokens ? "length" : "stop";

    public static async Task WriteResponseAsync(Exchange exchange, SimRequest request, string model, bool chat, SimulatorOptions options,
        CancellationToken cancellationToken)
    {
        var tokens = CompletionTokens(request, options);
        var delay = options.TtftMs + (long)options.ItlMs * tokens;
        if (delay > 0) await Task.Delay(TimeSpan.FromMilliseconds(delay), cancellationToken).ConfigureAwait(false);

        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        using var buffer = new PooledBuffer(512 + tokens * 8);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("id", (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N"));
            w.WriteString("object", chat ? "chat.completion" : "text_completion");
            w.WriteNumber("created", created);
            w.WriteString("model", model);
            w.WriteStartArray("choices");
            w.WriteStartObject();
            w.WriteNumber("index", 0);
            var text = ArrayPool<byte>.Shared.Rent(tokens * 16); // "tok" + up to 10 digits + " "
            var length = 0;
            for (var i = 0; i < tokens; i++)
            {
                "tok"u8.CopyTo(text.AsSpan(length));
                i.TryFormat(text.AsSpan(length + 3), out var n);
                text[length + 3 + n] = (byte)' ';
                length += 4 + n;
            }
            if (chat)
            {
                w.WriteStartObject("message");
                w.WriteString("role", "assistant");
                w.WriteNull("reasoning_content");
                w.WriteString("content", text.AsSpan(0, length));
                w.WriteStartArray("tool_calls");
                w.WriteEndArray();
                w.WriteEndObject();
            }
            else
            {
                w.WriteString("text", text.AsSpan(0, length));
            }
            ArrayPool<byte>.Shared.Return(text);
            w.WriteNull("logprobs");
            w.WriteString("finish_reason", FinishReason(request, tokens));
            w.WriteNull("stop_reason");
            if (!chat) w.WriteNull("prompt_logprobs");
            w.WriteEndObject();
            w.WriteEndArray();
            WriteUsage(w, request.PromptTokens, tokens);
            if (chat) w.WriteNull("prompt_logprobs");
            w.WriteEndObject();
        }
        await exchange.WriteBodyAsync(200, "application/json", buffer.WrittenMemory).ConfigureAwait(false);
    }

    internal static void WriteUsage(Utf8JsonWriter w, int prompt, int completion)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", prompt);
        w.WriteNumber("total_tokens", prompt + completion);
        w.WriteNumber("completion_tokens", completion);
        w.WriteNull("prompt_tokens_details");
        w.WriteEndObject();
    }

    /// <summary>
    /// Streams the completion. Returns <see cref="StreamEnd.Completed"/>, <see cref="StreamEnd.Died"/> (DieAfterEvents fired and the
    /// connection was aborted) or <see cref="StreamEnd.ClientGone"/> (a write found the connection closed); throws
    /// <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> (the client's abort or the simulator
    /// stopping) fires during a wait.
    /// </summary>
    /// <remarks>
    /// Each event is composed in a scratch buffer and handed to the response pipe in one guarded copy. Once Kestrel has aborted a
    /// connection its response writer hands out no memory and its flushes report completion, while RequestAborted is signalled
    /// later, from the thread pool; writing fragments straight into the pipe then threw ArgumentOutOfRangeException, and a stream
    /// whose client had left was not seen as cancelled. A real vLLM notices a closed socket on its next write: so does this.
    /// </remarks>
    public static async Task<StreamEnd> StreamAsync(Exchange exchange, SimRequest request, string model, bool chat, SimulatorOptions options,
        CancellationToken cancellationToken, StreamTally? tally = null)
    {
        var tokens = CompletionTokens(request, options);
        var dieAfter = options.DieAfterEvents;
        var stallAfter = options.StallAfterTokens;
        var itl = options.ItlMs;
        var prompt = request.PromptTokens;
        var continuous = request.IncludeUsage && request.ContinuousUsage;
        var prefix = Prefix(chat, model);
        var cutByLimit = FinishReason(request, tokens) == "length";

        exchange.Response.StatusCode = 200;
        exchange.ResponseHeaders.ContentType = "text/event-stream; charset=utf-8";
        await exchange.ResponseBody.StartAsync(cancellationToken).ConfigureAwait(false);
        var writer = exchange.Writer;
        // Starlette sends the headers before the first token; the client sees the status at once and waits TTFT for data.
        if (!await FlushAsync(writer, cancellationToken).ConfigureAwait(false)) return StreamEnd.ClientGone;
        if (options.TtftMs > 0) await Task.Delay(options.TtftMs, cancellationToken).ConfigureAwait(false);

        using var evt = new PooledBuffer(512);
        var events = 0;
        if (chat)
        {
            evt.Write(prefix);
            evt.Write(RoleChunk);
            if (continuous) WriteStreamUsage(evt, prompt, 0);
            evt.Write(EventEnd);
            if (await EmitAsync(continuous ? prompt : -1) is { } end) return end;
        }
        for (var i = 0; i < tokens; i++)
        {
            if (i > 0 && itl > 0) await Task.Delay(itl, cancellationToken).ConfigureAwait(false);
            if (i > 0 && i == stallAfter) await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
            evt.Write(prefix);
            evt.Write(chat ? ChatTokenStart : TextTokenStart);
            WriteInt(evt, i);
            if (i < tokens - 1)
            {
                evt.Write(chat ? ChatTokenEnd : TextTokenEnd);
            }
            else
            {
                evt.Write(chat ? ChatLastEnd : TextLastEnd);
                evt.Write(cutByLimit ? "length"u8 : "stop"u8);
                evt.Write(LastTail);
            }
            if (continuous) WriteStreamUsage(evt, prompt, i + 1);
            evt.Write(EventEnd);
            if (await EmitAsync(continuous ? prompt + i + 1 : -1) is { } end) return end;
        }
        if (request.IncludeUsage)
        {
            evt.Write(prefix);
            evt.Write("]"u8);
            WriteStreamUsage(evt, prompt, tokens);
            evt.Write(EventEnd);
            if (await EmitAsync(-1) is { } end) return end;
        }
        evt.Write(Done);
        return await SendAsync(writer, evt, -1, tally, cancellationToken).ConfigureAwait(false) ? StreamEnd.Completed : StreamEnd.ClientGone;

        // Hands the composed event (carrying cumulative usage `reported`, or -1) to the connection; a result ends the stream.
        async ValueTask<StreamEnd?> EmitAsync(long reported)
        {
            if (!await SendAsync(writer, evt, reported, tally, cancellationToken).ConfigureAwait(false)) return StreamEnd.ClientGone;
            if (dieAfter <= 0 || ++events < dieAfter) return null;
            // Kestrel's Abort drops bytes still queued in its transport pipe (a flush only hands them to the pipe): give the socket
            // sender a moment to put the flushed events on the wire, so the client gets exactly N events and then a broken stream.
            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            exchange.Features.GetRequiredFeature<IHttpRequestLifetimeFeature>().Abort();
            return StreamEnd.Died;
        }
    }

    /// <summary>Copies one composed event into the response pipe and flushes it; false when the connection is closed.</summary>
    private static async ValueTask<bool> SendAsync(PipeWriter writer, PooledBuffer evt, long reported, StreamTally? tally, CancellationToken cancellationToken)
    {
        var bytes = evt.WrittenSpan;
        var span = writer.GetSpan(bytes.Length);
        // GetSpan must return at least what was asked; Kestrel breaks that only for a closed connection (no memory at all), and the
        // flush below then reports completion.
        bool copied = span.Length >= bytes.Length;
        if (copied)
        {
            bytes.CopyTo(span);
            writer.Advance(bytes.Length);
            if (reported >= 0 && tally is not null) tally.ReportedTokens = reported; // counted before the flush: an upper bound
        }
        evt.Clear();
        return await FlushAsync(writer, cancellationToken).ConfigureAwait(false) && copied;
    }

    /// <summary>False when the connection is gone: a completed or cancelled flush, however Kestrel chose to report it.</summary>
    private static async ValueTask<bool> FlushAsync(PipeWriter writer, CancellationToken cancellationToken)
    {
        var result = await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        return !result.IsCompleted && !result.IsCanceled;
    }

    /// <summary><c>data: {"id":…,"object":…,"created":…,"model":…,"choices":[</c> — the same for every event of one stream.</summary>
    private static byte[] Prefix(bool chat, string model)
    {
        using var buffer = new PooledBuffer(256);
        buffer.Write("data: "u8);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("id", (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N"));
            w.WriteString("object", chat ? "chat.completion.chunk" : "text_completion");
            w.WriteNumber("created", DateTimeOffset.UtcNow.ToUnixTimeSeconds());
            w.WriteString("model", model);
            w.WriteStartArray("choices");
            w.Flush(); // stops before the array's first element: each event appends its choice
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteStreamUsage(PooledBuffer writer, int prompt, int completion)
    {
        writer.Write(UsageStart);
        WriteInt(writer, prompt);
        writer.Write(UsageTotal);
        WriteInt(writer, prompt + completion);
        writer.Write(UsageCompletion);
        WriteInt(writer, completion);
        writer.Write("}"u8);
    }

    private static void WriteInt(PooledBuffer writer, int value)
    {
        var span = writer.GetSpan(11);
        value.TryFormat(span, out var written);
        writer.Advance(written);
    }
}

internal enum StreamEnd { Completed, Died, ClientGone }

/// <summary>
/// The cumulative usage of the last event a stream handed to its connection (continuous_usage_stats): at most what a client, or a
/// gateway in between, could have counted.
/// </summary>
internal sealed class StreamTally
{
    public long ReportedTokens;
}
