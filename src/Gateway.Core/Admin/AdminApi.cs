using System.Text.Json;
using Gateway.Config;
using Gateway.Control;
using Gateway.Http;
using Gateway.Json;
using Gateway.Observability;
using Gateway.Routing;
using Gateway.Storage;
using Microsoft.AspNetCore.Http;

namespace Gateway.Admin;

/// <summary>
/// The admin API under <c>/admin/v1</c> (the seed's routes and shapes), on the control plane:
/// <code>
/// request ─► enabled? (404) ─► X-Admin-Key (401) ─► route (404) ─► method (405) ─► body: JSON object ≤ 1 MiB (415/413/400)
///         ─► endpoint ─► store (400/404/409/503) ─► snapshot rebuild + invalidation ─► JSON (200/201/204)
/// </code>
/// Off, with a 404 naming the reason, when no admin key is configured or the host has no store. The router logs each call
/// (method, path, status); nothing here logs a key, a hash or the admin key.
/// </summary>
public sealed class AdminApi
{
    public const int MaxBodyBytes = 1 << 20;

    private readonly AdminAuth _auth;
    private readonly string? _disabled;
    private readonly ModelsEndpoints _models = null!;
    private readonly BackendsEndpoints _backends = null!;
    private readonly KeysEndpoints _keys = null!;

    /// <param name="control">Null when the host runs on its configuration alone: nothing could be changed, so the API is off.</param>
    public AdminApi(GatewayOptions options, ControlPlane? control, BackendHealthRegistry health, GatewayLog log)
    {
        _auth = new AdminAuth(options.AdminKey);
        if (control is null)
        {
            _disabled = "The admin API is not available: this gateway runs from its configuration alone, without a store.";
            Status = "admin API off (no store)";
            return;
        }
        if (!_auth.Enabled)
        {
            _disabled = "The admin API is disabled: set auth.admin_key in gateway.toml (or ADMIN_API_KEY) to enable it.";
            Status = "admin API disabled (auth.admin_key is empty)";
            return;
        }
        Status = "admin API enabled";
        var services = new AdminServices(control, new ConfigManaged(options), health, log);
        _models = new ModelsEndpoints(services);
        _backends = new BackendsEndpoints(services);
        _keys = new KeysEndpoints(services);
    }

    public bool Enabled => _disabled is null;
    /// <summary>For the start-up line: whether the admin API answers, and if not, why.</summary>
    public string Status { get; }

    public async Task HandleAsync(Exchange exchange)
    {
        exchange.ResponseHeaders.CacheControl = "no-store"; // a created key's plaintext must not sit in a cache
        if (_disabled is not null)
        {
            await exchange.WriteErrorAsync(AdminErrors.Disabled(_disabled));
            return;
        }
        if (_auth.Check(exchange.RequestHeaders[AdminAuth.Header]) is { } authError)
        {
            await exchange.WriteErrorAsync(authError);
            return;
        }
        if (AdminRoute.Parse(exchange.Path) is not { } route)
        {
            await exchange.WriteErrorAsync(OpenAiError.NotFound(exchange.Path));
            return;
        }
        if (!route.Allows(exchange.Method))
        {
            exchange.ResponseHeaders.Allow = route.Allow;
            await exchange.WriteErrorAsync(OpenAiError.MethodNotAllowed(exchange.Method, exchange.Path));
            return;
        }

        AdminResult result;
        try
        {
            result = await DispatchAsync(exchange, route);
        }
        catch (AdminException e)
        {
            await exchange.WriteErrorAsync(e.Error);
            return;
        }
        catch (StoreException e)
        {
            await exchange.WriteErrorAsync(AdminErrors.FromStore(e));
            return;
        }
        await WriteAsync(exchange, result);
    }

    private Task<AdminResult> DispatchAsync(Exchange exchange, AdminRoute route)
    {
        var method = exchange.Method;
        var ct = exchange.RequestAborted;
        bool get = HttpMethods.IsGet(method), put = HttpMethods.IsPut(method);
        return route.Resource switch
        {
            AdminResource.Models => get ? _models.ListAsync(ct) : WithBodyAsync(exchange, _models.CreateAsync),
            AdminResource.Model => get ? _models.GetAsync(route.Id, ct)
                : put ? WithBodyAsync(exchange, body => _models.UpdateAsync(route.Id, body)) : _models.DeleteAsync(route.Id),
            AdminResource.Backends => WithBodyAsync(exchange, body => _backends.AddAsync(route.Id, body)),
            AdminResource.Backend => put
                ? WithBodyAsync(exchange, body => _backends.UpdateAsync(route.Id, route.BackendId, body)) : _backends.DeleteAsync(route.Id, route.BackendId),
            AdminResource.Keys => get ? _keys.ListAsync(ct) : WithBodyAsync(exchange, _keys.CreateAsync),
            _ => get ? _keys.GetAsync(route.Id, ct)
                : put ? WithBodyAsync(exchange, body => _keys.UpdateAsync(route.Id, body)) : _keys.RevokeAsync(route.Id),
        };
    }

    /// <summary>Reads the body (JSON media type, at most <see cref="MaxBodyBytes"/>, a JSON object) and hands it to the endpoint.</summary>
    private static async Task<AdminResult> WithBodyAsync(Exchange exchange, Func<JsonFields, Task<AdminResult>> endpoint)
    {
        if (RequestBody.CheckJsonContentType(exchange) is { } mediaError) throw new AdminException(mediaError);
        using var buffer = new PooledBuffer(4096);
        OpenAiError? readError;
        try
        {
            readError = await RequestBody.ReadAsync(exchange, buffer, MaxBodyBytes);
        }
        catch (BadHttpRequestException e)
        {
            readError = OpenAiError.InvalidRequest("The request body could not be read: " + e.Message) with { Status = e.StatusCode is >= 400 and < 500 ? e.StatusCode : 400 };
        }
        if (readError is { } error) throw new AdminException(error);
        using var body = JsonFields.Parse(buffer.WrittenMemory);
        return await endpoint(body);
    }

    private static async Task WriteAsync(Exchange exchange, AdminResult result)
    {
        if (result.Body is null)
        {
            exchange.Response.StatusCode = result.Status;
            await exchange.ResponseBody.StartAsync();
            return;
        }
        using var buffer = new PooledBuffer(4096);
        using (var writer = new Utf8JsonWriter(buffer, JsonText.Relaxed)) result.Body(writer);
        await exchange.WriteBodyAsync(result.Status, "application/json", buffer.WrittenMemory);
    }
}
