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
        return request.MaxTokens is { } max ? Math.Min(max, tokens) : tokens;
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
    /// connection was aborted) or throws <see cref="OperationCanceledException"/> when the client or the simulator went away.
    /// </summary>
    public static async Task<StreamEnd> StreamAsync(Exchange exchange, SimRequest request, string model, bool chat, SimulatorOptions options,
        CancellationToken cancellationToken, StreamTally? tally = null)
    {
        var tokens = CompletionTokens(request, options);
        var dieAfter = options.DieAfterEvents;
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
        await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (options.TtftMs > 0) await Task.Delay(options.TtftMs, cancellationToken).ConfigureAwait(false);

        var events = 0;
        if (chat)
        {
            writer.Write(prefix);
            writer.Write(RoleChunk);
            if (continuous) WriteStreamUsage(writer, prompt, 0);
            writer.Write(EventEnd);
            if (await EmitAsync()) return StreamEnd.Died;
            if (continuous && tally is not null) tally.ReportedTokens = prompt;
        }
        for (var i = 0; i < tokens; i++)
        {
            if (i > 0 && itl > 0) await Task.Delay(itl, cancellationToken).ConfigureAwait(false);
            writer.Write(prefix);
            writer.Write(chat ? ChatTokenStart : TextTokenStart);
            WriteInt(writer, i);
            if (i < tokens - 1)
            {
                writer.Write(chat ? ChatTokenEnd : TextTokenEnd);
            }
            else
            {
                writer.Write(chat ? ChatLastEnd : TextLastEnd);
                writer.Write(cutByLimit ? "length"u8 : "stop"u8);
                writer.Write(LastTail);
            }
            if (continuous) WriteStreamUsage(writer, prompt, i + 1);
            writer.Write(EventEnd);
            if (await EmitAsync()) return StreamEnd.Died;
            if (continuous && tally is not null) tally.ReportedTokens = prompt + i + 1;
        }
        if (request.IncludeUsage)
        {
            writer.Write(prefix);
            writer.Write("]"u8);
            WriteStreamUsage(writer, prompt, tokens);
            writer.Write(EventEnd);
            if (await EmitAsync()) return StreamEnd.Died;
        }
        writer.Write(Done);
        await FlushAsync(writer, cancellationToken).ConfigureAwait(false);
        return StreamEnd.Completed;

        async ValueTask<bool> EmitAsync()
        {
            await FlushAsync(writer, cancellationToken).ConfigureAwait(false);
            if (dieAfter <= 0 || ++events < dieAfter) return false;
            // Kestrel's Abort drops bytes still queued in its transport pipe (a flush only hands them to the pipe): give the socket
            // sender a moment to put the flushed events on the wire, so the client gets exactly N events and then a broken stream.
            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            exchange.Features.GetRequiredFeature<IHttpRequestLifetimeFeature>().Abort();
            return true;
        }
    }

    private static async ValueTask FlushAsync(PipeWriter writer, CancellationToken cancellationToken)
    {
        var result = await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        // A completed or cancelled flush means the connection is gone, however Kestrel chose to report it.
        if (result.IsCompleted || result.IsCanceled) throw new OperationCanceledException("The client went away.");
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

    private static void WriteStreamUsage(PipeWriter writer, int prompt, int completion)
    {
        writer.Write(UsageStart);
        WriteInt(writer, prompt);
        writer.Write(UsageTotal);
        WriteInt(writer, prompt + completion);
        writer.Write(UsageCompletion);
        WriteInt(writer, completion);
        writer.Write("}"u8);
    }

    private static void WriteInt(PipeWriter writer, int value)
    {
        var span = writer.GetSpan(11);
        value.TryFormat(span, out var written);
        writer.Advance(written);
    }
}

internal enum StreamEnd { Completed, Died }

/// <summary>The cumulative usage a stream has put on the wire so far (continuous_usage_stats): what a client could have counted.</summary>
internal sealed class StreamTally
{
    public long ReportedTokens;
}
