using System.Diagnostics;
using Gateway.Admin;
using Gateway.Auth;
using Gateway.Json;
using Gateway.Observability;
using Gateway.Proxy;
using Gateway.Routing;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;

namespace Gateway.Http;

/// <summary>
/// The gateway's raw Kestrel application. Step 1 of the request path: route on method and path, then hand off. No middleware,
/// no HttpContext.
/// </summary>
public sealed class GatewayApplication(SnapshotHolder snapshots, ProxyHandler proxy, GatewayMetrics metrics, GatewayLog log,
    UnknownKeyResolver? keyResolver = null, AdminApi? admin = null) : IHttpApplication<IFeatureCollection>
{
    private static readonly byte[] HealthBody = """{"status":"ok"}"""u8.ToArray();
    private static readonly byte[] ReadyBody = """{"status":"ready"}"""u8.ToArray();
    private static readonly byte[] NotReadyBody = new OpenAiError(503, "service_unavailable", "not_ready", "The gateway has not loaded its configuration yet.").ToBytes();

    public IFeatureCollection CreateContext(IFeatureCollection contextFeatures) => contextFeatures;
    public void DisposeContext(IFeatureCollection context, Exception? exception) { }

    public Task ProcessRequestAsync(IFeatureCollection features)
    {
        var exchange = new Exchange(features);
        // The proxy routes go straight to the handler, which answers its own failures and logs its own line: no async layer of
        // ours in between (each one is a state machine allocated and resumed per request).
        if (ProxyEndpointOf(exchange.Path) is { } endpoint && HttpMethods.IsPost(exchange.Method)) return proxy.HandleAsync(exchange, endpoint).AsTask(); // a pooled box; only the Task Kestrel awaits is new
        return ProcessOtherAsync(exchange);
    }

    private static ProxyEndpoint? ProxyEndpointOf(string path) => path switch
    {
        "/v1/chat/completions" => ProxyEndpoint.ChatCompletions,
        "/v1/completions" => ProxyEndpoint.Completions,
        "/v1/embeddings" => ProxyEndpoint.Embeddings,
        _ => null,
    };

    /// <summary>Every route but the proxy's: rare next to it, so one small record per request is fine.</summary>
    private async Task ProcessOtherAsync(Exchange exchange)
    {
        var record = new RequestRecord();
        record.Reset(Stopwatch.GetTimestamp());
        // Step 2 on every route, probes and scrapes included: the request id is echoed and logged.
        record.RequestId = RequestId.From(exchange.RequestHeaders[GatewayHeaders.RequestId]);
        exchange.ResponseHeaders[GatewayHeaders.RequestId] = record.RequestId;
        try
        {
            await RouteAsync(exchange, record);
        }
        catch (Exception) when (!exchange.Response.HasStarted)
        {
            await WriteInternalErrorAsync(exchange);
        }
        if (!LogsItself(exchange.Path)) LogRequest(exchange, record);
    }

    /// <summary>The answer to an exception that escaped a handler before anything was sent: its headers go, but for the request id.</summary>
    public static ValueTask WriteInternalErrorAsync(Exchange exchange)
    {
        var headers = exchange.Response.Headers;
        var requestId = headers[GatewayHeaders.RequestId];
        headers.Clear();
        if (requestId.Count > 0) headers[GatewayHeaders.RequestId] = requestId;
        return exchange.WriteErrorAsync(new OpenAiError(500, "server_error", "internal_error", "The gateway failed to handle the request."));
    }

    /// <summary>
    /// Probes and scrapes would only flood the log. (A POST to a proxy route never comes here: the handler writes its own line;
    /// any other method on one does, and is logged as a 405.)
    /// </summary>
    private static bool LogsItself(string path) => path is "/health" or "/ready" or "/metrics";

    /// <summary>A log line for the other routes (/v1/models, /admin/*, unknown routes, wrong methods).</summary>
    private void LogRequest(Exchange exchange, RequestRecord record)
    {
        record.Status = exchange.Response.StatusCode;
        record.Method = exchange.Method;
        record.Path = exchange.Path;
        log.Request(record, Stopwatch.GetTimestamp());
    }

    private Task RouteAsync(Exchange exchange, RequestRecord record)
    {
        var method = exchange.Method;
        // C# compiles this switch to a length check plus a character test before one comparison: no hashing, no allocation.
        switch (exchange.Path)
        {
            case "/v1/chat/completions" or "/v1/completions" or "/v1/embeddings": return NotAllowed(exchange); // POST went to the proxy
            case "/v1/models": return HttpMethods.IsGet(method) ? ListModelsAsync(exchange, record) : NotAllowed(exchange);
            case "/metrics" when metrics.Enabled: return IsGetOrHead(method) ? ScrapeAsync(exchange) : NotAllowed(exchange);
            case "/health": return IsGetOrHead(method) ? exchange.WriteBodyAsync(200, "application/json", HealthBody).AsTask() : NotAllowed(exchange);
            case "/ready":
                if (!IsGetOrHead(method)) return NotAllowed(exchange);
                return snapshots.IsLoaded
                    ? exchange.WriteBodyAsync(200, "application/json", ReadyBody).AsTask()
                    : exchange.WriteBodyAsync(503, "application/json", NotReadyBody).AsTask();
            default:
                // The control plane's routes: rare, so one prefix test after the data plane's exact matches costs nothing.
                if (admin is not null && exchange.Path.StartsWith("/admin/", StringComparison.Ordinal)) return admin.HandleAsync(exchange);
                if (exchange.Path.StartsWith(ModelPrefix, StringComparison.Ordinal) && exchange.Path.Length > ModelPrefix.Length)
                    return HttpMethods.IsGet(method) ? RetrieveModelAsync(exchange, record) : NotAllowed(exchange);
                return exchange.WriteErrorAsync(OpenAiError.NotFound(exchange.Path)).AsTask();
        }
    }

    private static bool IsGetOrHead(string method) => HttpMethods.IsGet(method) || HttpMethods.IsHead(method);

    private const string ModelPrefix = "/v1/models/";

    private static Task NotAllowed(Exchange exchange)
    {
        exchange.ResponseHeaders.Allow = exchange.Path is "/v1/models" or "/health" or "/ready" or "/metrics" || exchange.Path.StartsWith(ModelPrefix, StringComparison.Ordinal)
            ? "GET" : "POST";
        return exchange.WriteErrorAsync(OpenAiError.MethodNotAllowed(exchange.Method, exchange.Path)).AsTask();
    }

    /// <summary>GET /metrics: the Prometheus text format, no auth (as in the seed). Scrapes are rare; buffering one is fine.</summary>
    private async Task ScrapeAsync(Exchange exchange)
    {
        using var buffer = new MemoryStream(16 * 1024);
        await metrics.WriteAsync(buffer, exchange.RequestAborted);
        await exchange.WriteBodyAsync(200, GatewayMetrics.ContentType, buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
    }

    /// <summary>GET /v1/models: the snapshot's active models, filtered by the key's allowed models, in the seed's shape.</summary>
    private async Task ListModelsAsync(Exchange exchange, RequestRecord record)
    {
        if (await AuthorizeModelsAsync(exchange, record) is not var (key, snapshot)) return;
        using var buffer = new PooledBuffer(1024);
        ModelList.Write(snapshot, key, buffer);
        await exchange.WriteBodyAsync(200, "application/json", buffer.WrittenMemory);
    }

    /// <summary>GET /v1/models/{model}: one entry of the list (the SDKs' models.retrieve); 404 for a model the list would not show.</summary>
    private async Task RetrieveModelAsync(Exchange exchange, RequestRecord record)
    {
        if (await AuthorizeModelsAsync(exchange, record) is not var (key, snapshot)) return;
        // SDKs escape the id as one path segment. Kestrel has decoded the path but for %2F (so "a%2Fb" is not two segments): that
        // one escape is restored, and nothing is decoded twice ("q%2577en" is the alias "q%77en", not "qwen").
        var alias = exchange.Path[ModelPrefix.Length..].Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
        using var buffer = new PooledBuffer(256);
        if (ModelList.TryWriteOne(snapshot, key, alias, buffer)) await exchange.WriteBodyAsync(200, "application/json", buffer.WrittenMemory);
        else await exchange.WriteErrorAsync(OpenAiError.ModelNotFound(alias));
    }

    /// <summary>
    /// The models routes' step 3: the key (its prefix logged), or null once the 401 is written. Listing is not a counted request;
    /// the key's windows are reported in the rate-limit headers.
    /// </summary>
    private async Task<(KeyEntry Key, Snapshot Snapshot)?> AuthorizeModelsAsync(Exchange exchange, RequestRecord record)
    {
        var (authError, key, snapshot) = await Authenticator.AuthenticateAsync(exchange.RequestHeaders.Authorization, snapshots, keyResolver);
        if (authError is { } error)
        {
            await exchange.WriteErrorAsync(error);
            return null;
        }
        record.KeyPrefix = key!.KeyPrefix;
        await proxy.ApplyRateLimitHeadersAsync(exchange, key);
        return (key, snapshot);
    }
}
