using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Gateway.Http;
using Gateway.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Gateway.Simulation;

/// <summary>The simulator's raw Kestrel application: vLLM's routes, FastAPI's 404/405 bodies, fault injection.</summary>
internal sealed class SimulatorApplication(VllmSimulator simulator) : IHttpApplication<IFeatureCollection>
{
    private const string Json = "application/json";
    private static readonly byte[] NotFoundBody = """{"detail":"Not Found"}"""u8.ToArray();
    private static readonly byte[] MethodNotAllowedBody = """{"detail":"Method Not Allowed"}"""u8.ToArray();
    private static readonly byte[] FailureBody = ErrorBody("Simulated failure", "InternalServerError", 500);
    private static readonly byte[] LoadingBody = ErrorBody("The model is still loading.", "ServiceUnavailableError", 503);
    private static readonly long StartedAt = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public IFeatureCollection CreateContext(IFeatureCollection contextFeatures) => contextFeatures;
    public void DisposeContext(IFeatureCollection context, Exception? exception) { }

    public async Task ProcessRequestAsync(IFeatureCollection features)
    {
        var exchange = new Exchange(features);
        try
        {
            await RouteAsync(exchange).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The client or the simulator went away; there is nobody to answer.
            features.GetRequiredFeature<IHttpRequestLifetimeFeature>().Abort();
        }
        catch (Exception e) when (!exchange.Response.HasStarted)
        {
            exchange.Response.Headers.Clear();
            await exchange.WriteBodyAsync(500, Json, ErrorBody($"Simulator error: {e.Message}", "InternalServerError", 500)).ConfigureAwait(false);
        }
    }

    private Task RouteAsync(Exchange exchange)
    {
        var method = exchange.Method;
        var path = exchange.Path;
        if (HttpMethods.IsPost(method) && path.StartsWith("/v1/", StringComparison.Ordinal)) return HandleV1PostAsync(exchange, path);
        switch (path)
        {
            case "/v1/chat/completions" or "/v1/completions" or "/v1/embeddings": return NotAllowed(exchange, "POST");
            case "/v1/models": return HttpMethods.IsGet(method) ? ListModelsAsync(exchange) : NotAllowed(exchange, "GET");
            case "/health": return HttpMethods.IsGet(method) ? HealthAsync(exchange) : NotAllowed(exchange, "GET");
            case "/metrics": return HttpMethods.IsGet(method) ? MetricsAsync(exchange) : NotAllowed(exchange, "GET");
            default: return exchange.WriteBodyAsync(404, Json, NotFoundBody).AsTask();
        }
    }

    private static Task NotAllowed(Exchange exchange, string allow)
    {
        exchange.ResponseHeaders.Allow = allow;
        return exchange.WriteBodyAsync(405, Json, MethodNotAllowedBody).AsTask();
    }

    private async Task HandleV1PostAsync(Exchange exchange, string path)
    {
        var aborted = exchange.RequestAborted;
        var body = await ReadBodyAsync(exchange.RequestBody, aborted).ConfigureAwait(false);
        simulator.NextRequest();
        simulator.Capture(new CapturedRequest(path, body, CaptureHeaders(exchange.RequestHeaders)));

        SimEndpoint endpoint;
        switch (path)
        {
            case "/v1/chat/completions": endpoint = SimEndpoint.ChatCompletions; break;
            case "/v1/completions": endpoint = SimEndpoint.Completions; break;
            case "/v1/embeddings": endpoint = SimEndpoint.Embeddings; break;
            default:
                if (path == "/v1/models") await NotAllowed(exchange, "GET").ConfigureAwait(false);
                else await exchange.WriteBodyAsync(404, Json, NotFoundBody).ConfigureAwait(false);
                return;
        }

        var options = simulator.Options;
        if (options.NotReady)
        {
            await exchange.WriteBodyAsync(503, Json, LoadingBody).ConfigureAwait(false);
            return;
        }
        if (options.FailRate > 0 && Random.Shared.NextDouble() < options.FailRate)
        {
            await exchange.WriteBodyAsync(500, Json, FailureBody).ConfigureAwait(false);
            return;
        }
        if (SimRequest.TryParse(endpoint, body, out var request) is { } invalid)
        {
            await exchange.WriteBodyAsync(400, Json, ErrorBody(invalid, "BadRequestError", 400)).ConfigureAwait(false);
            return;
        }
        var models = options.Models;
        var model = request.Model ?? (models.Count > 0 ? models[0] : "");
        if (!models.Contains(model))
        {
            await exchange.WriteBodyAsync(404, Json, ErrorBody($"The model `{model}` does not exist.", "NotFoundError", 404)).ConfigureAwait(false);
            return;
        }

        var stats = simulator.StatsFor(model);
        Interlocked.Increment(ref stats.Running);
        try
        {
            if (endpoint == SimEndpoint.Embeddings)
            {
                await EmbeddingResponder.WriteAsync(exchange, request, model).ConfigureAwait(false);
                Account(stats, request.PromptTokens, 0);
                return;
            }
            var chat = endpoint == SimEndpoint.ChatCompletions;
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(aborted, simulator.Stopping);
            if (!request.Stream)
            {
                await CompletionResponder.WriteResponseAsync(exchange, request, model, chat, options, linked.Token).ConfigureAwait(false);
                Account(stats, request.PromptTokens, CompletionResponder.CompletionTokens(request, options));
                return;
            }
            var tally = new StreamTally();
            StreamEnd end;
            try
            {
                end = await CompletionResponder.StreamAsync(exchange, request, model, chat, options, linked.Token, tally).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!simulator.Stopping.IsCancellationRequested)
            {
                end = StreamEnd.ClientGone; // only the client's abort cancels the token while the simulator runs
            }
            finally
            {
                simulator.AddReportedUsage(tally.ReportedTokens);
            }
            if (end == StreamEnd.Completed) Account(stats, request.PromptTokens, CompletionResponder.CompletionTokens(request, options));
            else if (end == StreamEnd.ClientGone) simulator.StreamCancelled(exchange.RequestHeaders[GatewayHeaders.RequestId].ToString());
        }
        finally
        {
            Interlocked.Decrement(ref stats.Running);
        }
    }

    private static void Account(ModelStats stats, int prompt, int generated)
    {
        Interlocked.Increment(ref stats.Success);
        Interlocked.Add(ref stats.PromptTokens, prompt);
        Interlocked.Add(ref stats.GenerationTokens, generated);
    }

    private static async Task<byte[]> ReadBodyAsync(PipeReader reader, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (result.IsCompleted || result.IsCanceled)
            {
                var bytes = result.Buffer.ToArray();
                reader.AdvanceTo(result.Buffer.End);
                return bytes;
            }
            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    private static Dictionary<string, string> CaptureHeaders(IHeaderDictionary headers)
    {
        var captured = new Dictionary<string, string>(headers.Count, StringComparer.Ordinal);
        foreach (var (name, value) in headers) captured[name.ToLowerInvariant()] = value.ToString();
        return captured;
    }

    private async Task ListModelsAsync(Exchange exchange)
    {
        var options = simulator.Options;
        using var buffer = new PooledBuffer(1024);
        using (var w = new Utf8JsonWriter(buffer, CompletionResponder.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("object", "list");
            w.WriteStartArray("data");
            if (!options.NotReady)
            {
                foreach (var model in options.Models)
                {
                    w.WriteStartObject();
                    w.WriteString("id", model);
                    w.WriteString("object", "model");
                    w.WriteNumber("created", StartedAt);
                    w.WriteString("owned_by", "vllm");
                    w.WriteString("root", model);
                    w.WriteNull("parent");
                    w.WriteNumber("max_model_len", 32768);
                    w.WriteStartArray("permission");
                    w.WriteStartObject();
                    w.WriteString("id", "modelperm-" + Guid.NewGuid().ToString("N"));
                    w.WriteString("object", "model_permission");
                    w.WriteNumber("created", StartedAt);
                    w.WriteBoolean("allow_create_engine", false);
                    w.WriteBoolean("allow_sampling", true);
                    w.WriteBoolean("allow_logprobs", true);
                    w.WriteBoolean("allow_search_indices", false);
                    w.WriteBoolean("allow_view", true);
                    w.WriteBoolean("allow_fine_tuning", false);
                    w.WriteString("organization", "*");
                    w.WriteNull("group");
                    w.WriteBoolean("is_blocking", false);
                    w.WriteEndObject();
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        await exchange.WriteBodyAsync(200, Json, buffer.WrittenMemory).ConfigureAwait(false);
    }

    private async Task HealthAsync(Exchange exchange)
    {
        var options = simulator.Options;
        if (options.HealthDelayMs > 0)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(exchange.RequestAborted, simulator.Stopping);
            await Task.Delay(options.HealthDelayMs, linked.Token).ConfigureAwait(false);
        }
        // vLLM answers an empty 200, or an empty 503 once its engine is dead.
        exchange.Response.StatusCode = simulator.Options.HealthFails ? 503 : 200;
        exchange.ResponseHeaders.ContentLength = 0;
        await exchange.ResponseBody.StartAsync().ConfigureAwait(false);
    }

    private async Task MetricsAsync(Exchange exchange)
    {
        var text = new StringBuilder(1024);
        Family(text, "vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", s => Interlocked.Read(ref s.Running));
        Family(text, "vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", _ => 0);
        Family(text, "vllm:gpu_cache_usage_perc", "gauge", "GPU KV-cache usage. 1 means 100 percent usage.", _ => 0);
        Family(text, "vllm:request_success_total", "counter", "Count of successfully processed requests.", s => Interlocked.Read(ref s.Success));
        Family(text, "vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", s => Interlocked.Read(ref s.PromptTokens));
        Family(text, "vllm:generation_tokens_total", "counter", "Number of generation tokens processed.", s => Interlocked.Read(ref s.GenerationTokens));
        await exchange.WriteBodyAsync(200, "text/plain; version=0.0.4; charset=utf-8", Encoding.UTF8.GetBytes(text.ToString())).ConfigureAwait(false);
    }

    private void Family(StringBuilder text, string name, string type, string help, Func<ModelStats, long> value)
    {
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        foreach (var model in simulator.Options.Models)
        {
            var stats = simulator.StatsFor(model);
            text.Append(name).Append("{model_name=\"").Append(model.Replace("\\", "\\\\").Replace("\"", "\\\""))
                .Append("\"} ").Append(((double)value(stats)).ToString("0.0###", CultureInfo.InvariantCulture)).Append('\n');
        }
    }

    /// <summary>vLLM's error body (v0.10+ shape): <c>{"error":{"message","type","param":null,"code"}}</c>.</summary>
    internal static byte[] ErrorBody(string message, string type, int code)
    {
        var buffer = new ArrayBufferWriter<byte>(128 + message.Length);
        using (var w = new Utf8JsonWriter(buffer, CompletionResponder.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteStartObject("error");
            w.WriteString("message", message);
            w.WriteString("type", type);
            w.WriteNull("param");
            w.WriteNumber("code", code);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
