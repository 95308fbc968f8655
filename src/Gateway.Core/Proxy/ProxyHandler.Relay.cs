using Gateway.Net;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Runtime.CompilerServices;
using Gateway.Http;
using Gateway.Json;
using Gateway.Limits;
using Gateway.Routing;
using Gateway.Streaming;
using Microsoft.Net.Http.Headers;

namespace Gateway.Proxy;

// Step 10 of the request path: relaying a response (JSON or SSE) that came back from the backend.
public sealed partial class ProxyHandler
{
    [AsyncMethodBuilder(typeof(PooledTaskBuilder))]
    private async ValueTask RelayJsonAsync(
        Exchange exchange, ProxyRequest request, Target target, UpstreamResponse response, CancellationTokenSource cts)
    {
        var model = target.Model;
        var record = request.Record;
        var max = upstream.Options.MaxResponseBytes;
        var declared = response.ContentLength;
        if (declared > max) { await ReplyErrorAsync(exchange, record, OpenAiError.BackendError("The model server's response is too large.")); return; }
        var output = request.Body; // the client body is spliced already; reuse its buffer
        // The usual small answer came with its head: rewrite it from the connection's buffer, with no read, copy or wait.
        bool json;
        if (response.TryTakeBufferedBody(out var inHand)) json = RewriteJson(inHand, request, model, output);
        else if (await ReadJsonAsync(exchange, request, target, response, cts, declared) is { } read) json = read;
        else return;
        int status = response.StatusCode;
        if (!json && status >= 400)
        {
            // An error page (a proxy's HTML, a stack trace) is not for the client: an OpenAI-shaped error with the same status.
            await ReplyErrorAsync(exchange, record, new OpenAiError(status, "upstream_error", "backend_error",
                $"The model server answered {status} with a body that is not a JSON object."));
            return;
        }
        SetOverheadHeader(exchange, record, record.Overhead(Stopwatch.GetTimestamp()));
        await exchange.WriteBodyAsync(status, response.JsonContentType, output.WrittenMemory);
    }

    /// <summary>
    /// Reads a JSON body that was not in hand with the head and rewrites it into the request's output: whether it was one JSON
    /// object (see <see cref="RewriteJson"/>), or null once answered with an error.
    /// </summary>
    [AsyncMethodBuilder(typeof(PooledTaskBuilder<>))]
    private async ValueTask<bool?> ReadJsonAsync(
        Exchange exchange, ProxyRequest request, Target target, UpstreamResponse response, CancellationTokenSource cts, long? declared)
    {
        var backendMetrics = target.Metrics;
        var idle = upstream.Options.StreamIdleTimeout;
        var record = request.Record;
        var raw = request.Response;
        var max = upstream.Options.MaxResponseBytes;
        long reading = Stopwatch.GetTimestamp();
        try
        {
            raw.Ensure((int)(declared ?? 4096));
            await using var stream = await response.OpenBodyAsync(cts.Token); // Content-Length or chunked, de-chunked by either client
            bool armed = false;
            while (true)
            {
                // Room for what Content-Length says is left (1 byte for the read that sees the end), else 16 KB at a time: asking
                // for 16 KB on every response made the pooled 4 KB buffer trade itself for a bigger one each time.
                int room = declared is { } length ? (int)Math.Max(1, length - raw.Length) : 16 * 1024;
                // Never past max + 1 bytes (the one that proves the body too large): doubling an endless body's buffer before the
                // check below cost ~3x max_response_bytes per request (audit: one request, 200 MB).
                int cap = (int)Math.Min(max + 1, int.MaxValue);
                room = Math.Max(1, Math.Min(room, cap - raw.Length));
                var read = stream.ReadAsync(raw.GetMemory(room, cap), cts.Token);
                // The idle limit matters only to a read that waits: a small body is usually in hand with the head, and every
                // timer change takes the timer queue's lock.
                if (!read.IsCompleted) { cts.CancelAfter(idle); armed = true; }
                int n = await read;
                if (n == 0) { if (armed) cts.CancelAfter(Timeout.InfiniteTimeSpan); break; }
                raw.Advance(n);
                if (raw.Length > max) { await ReplyErrorAsync(exchange, record, OpenAiError.BackendError("The model server's response is too large.")); return null; }
            }
        }
        catch (OperationCanceledException) when (exchange.RequestAborted.IsCancellationRequested) { return null; }
        catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException && cts.IsCancellationRequested)
        {
            TimedOut(target); // the body stopped arriving; nothing reached the client yet
            await ReplyErrorAsync(exchange, record, OpenAiError.BackendTimeout("The model server stopped sending its response."));
            return null;
        }
        catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException)
        {
            backendMetrics.BrokenStream.Inc();
            await ReplyErrorAsync(exchange, record, OpenAiError.BackendError("The model server closed the connection before the response was complete."));
            return null;
        }
        finally
        {
            record.UpstreamTicks += Stopwatch.GetTimestamp() - reading; // waiting for the body is upstream time too
        }

        return RewriteJson(raw.WrittenSpan, request, target.Model, request.Body);
    }

    /// <summary>
    /// The JSON answer with the alias for the model, into <paramref name="output"/>; its usage recorded and charged (step 11, TPM).
    /// False when it is not one JSON object: copied as it is.
    /// </summary>
    private bool RewriteJson(ReadOnlySpan<byte> json, ProxyRequest request, ModelEntry model, PooledBuffer output)
    {
        var record = request.Record;
        output.Clear();
        if (!ResponseScanner.TryScanAnswer(json, out var scan))
        {
            output.Write(json);
            return false;
        }
        ResponseRewriter.Write(json, scan, model.AliasJson, stripUsage: false, output);
        if (scan.HasUsage) { record.HasUsage = true; record.PromptTokens = scan.PromptTokens; record.CompletionTokens = scan.CompletionTokens; }
        if (request.Rate.KeyId is not null && scan.HasUsage) limiter.ChargeTokens(request.Rate, scan.PromptTokens + scan.CompletionTokens);
        return true;
    }

    [AsyncMethodBuilder(typeof(PooledTaskBuilder))]
    private async ValueTask RelayStreamAsync(
        Exchange exchange, ProxyRequest request, Target target, UpstreamResponse response, CancellationTokenSource upstreamCts,
        TimeSpan firstByteLeft)
    {
        var (model, _, backendMetrics) = target;
        var record = request.Record;
        exchange.Response.StatusCode = 200;
        var headers = exchange.ResponseHeaders;
        headers.ContentType = "text/event-stream; charset=utf-8";
        headers.CacheControl = "no-cache";
        headers[GatewayHeaders.AccelBuffering] = "no";

        // Step 11 runs inside the relay for streams: after every upstream read, the cumulative usage charges its delta, so a long
        // stream counts against TPM while it runs and a client that leaves has paid for what it got.
        using var state = new StreamState(model.AliasJson, request.Scan.ClientIncludeUsage, request.Scan.ClientContinuousUsage,
            request.Rate.KeyId is null ? null : limiter, request.Rate);
        PipeReader reader;
        try { reader = await response.OpenBodyReaderAsync(upstreamCts.Token); }
        catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException)
        {
            backendMetrics.BrokenStream.Inc();
            await ReplyErrorAsync(exchange, record, OpenAiError.BackendError("The model server closed the connection before the response started."));
            return;
        }
        try
        {
            // Overhead of a stream: everything up to the first byte, minus the wait for the upstream's headers.
            record.OverheadTicks = record.Overhead(Stopwatch.GetTimestamp());
            SetOverheadHeader(exchange, record, record.OverheadTicks);
            await exchange.ResponseBody.StartAsync();
            // Memory per open stream is what bounds how many one instance holds: the request is sent (no retry once the
            // stream started), so its two buffers go back to the pool now; and the reader waits with a zero-byte read, so a
            // stream between tokens holds no read buffer of ours either.
            response.ForgetRequestBody();
            request.Body.Release();
            request.Upstream.Release();
            // The client has its 200 now, so any timeout from here on is an error event, never a 504.
            var watchdog = request.Watchdog;
            watchdog.Start(upstreamCts, firstByteLeft, upstream.Options.StreamIdleTimeout, drainExpired);
            RelayOutcome outcome;
            try { outcome = await SseRelay.RunAsync(reader, exchange.Writer, state, exchange.RequestAborted, watchdog); }
            finally { watchdog.Stop(); }
            // Client gone: the upstream socket closing is what stops the generation, by the relay's cancelled read or, when a
            // flush found the client gone, by disposing the unread response in the caller (no drain: the handler has
            // MaxResponseDrainSize = 0, and Http1Client closes any connection whose body was not read to its end). Over the
            // handler, cancelling upstreamCts alone would not: over HTTP/1.1 it reaches SendAsync only, up to the response
            // headers. (Http1Client closes the socket whenever it fires.)
            record.StreamOutcome = outcome; // the status stays the 200 the client got; the log line says how the stream ended
            if (outcome is RelayOutcome.UpstreamFailed or RelayOutcome.UpstreamEndedEarly) backendMetrics.BrokenStream.Inc();
            else if (outcome == RelayOutcome.UpstreamTimedOut) TimedOut(target);
            // Timed out or shutting down: the watchdog cancelled the read, and disposing the response closes the connection,
            // which is how vLLM learns to stop generating.
            await reader.CompleteAsync();
        }
        finally
        {
            state.ChargePending(); // usage counted in a read whose handling threw is charged too (a no-op otherwise)
            record.HasUsage = state.PromptTokens != 0 || state.CompletionTokens != 0;
            record.PromptTokens = state.PromptTokens;
            record.CompletionTokens = state.CompletionTokens;
            record.FirstContent = state.FirstContentTimestamp;
            record.LastContent = state.LastContentTimestamp;
            record.ContentChunks = state.ContentChunks;
        }
    }
}
