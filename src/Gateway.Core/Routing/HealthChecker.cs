using System.Net;
using System.Text.Json;
using Gateway.Config;

namespace Gateway.Routing;

/// <summary>
/// Active health checks, off the request path: every interval each backend gets GET /health (200 within the timeout) and a
/// readiness probe (its /v1/models lists the model's id: a vLLM that is up but still loading, or serving another model, is not
/// ready). Backends are probed concurrently, once per URL per round even when several models share them.
/// </summary>
public sealed class HealthChecker : IAsyncDisposable
{
    private readonly SnapshotHolder _snapshots;
    private readonly BackendHealthRegistry _registry;
    private readonly HealthCheckOptions _options;
    private readonly HttpMessageInvoker _http;
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    public HealthChecker(SnapshotHolder snapshots, BackendHealthRegistry registry, HealthCheckOptions options)
    {
        _snapshots = snapshots;
        _registry = registry;
        _options = options;
        _http = new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseProxy = false, AllowAutoRedirect = false, UseCookies = false,
            ConnectTimeout = options.Timeout, PooledConnectionIdleTimeout = TimeSpan.FromSeconds(4),
        });
    }

    /// <summary>Raised when a backend's state flips (model id, URL, healthy).</summary>
    public event Action<string, string, bool>? StateChanged;
    /// <summary>After each round: every backend in the snapshot has just been probed.</summary>
    public event Action? RoundCompleted;

    public void Start() => _loop ??= Task.Run(() => RunAsync(_stop.Token));

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.Interval);
        try
        {
            do await CheckAllAsync(cancellationToken).ConfigureAwait(false);
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested) { }
    }

    /// <summary>One round over every backend of every model in the current snapshot.</summary>
    public async Task CheckAllAsync(CancellationToken cancellationToken = default)
    {
        var snapshot = _snapshots.Current;
        if (snapshot is null) return;
        var byUrl = new Dictionary<string, List<string>>(StringComparer.OrdinalIgnoreCase);
        foreach (var model in snapshot.Models)
            foreach (var backend in model.Backends)
            {
                if (!byUrl.TryGetValue(backend.Url, out var ids)) byUrl[backend.Url] = ids = [];
                if (!ids.Contains(model.ModelId)) ids.Add(model.ModelId);
            }
        await Task.WhenAll(byUrl.Select(pair => ProbeAsync(pair.Key, pair.Value, cancellationToken))).ConfigureAwait(false);
        RoundCompleted?.Invoke();
    }

    private async Task ProbeAsync(string url, List<string> modelIds, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.Timeout);
        HashSet<string>? served = null;
        try
        {
            using var health = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Get, url + "/health"), timeout.Token).ConfigureAwait(false);
            if (health.StatusCode == HttpStatusCode.OK)
            {
                using var models = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Get, url + "/v1/models"), timeout.Token).ConfigureAwait(false);
                if (models.StatusCode == HttpStatusCode.OK && await ReadCappedAsync(models.Content, timeout.Token).ConfigureAwait(false) is { } body)
                    served = ParseModelIds(body);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested) { } // timed out: a failure
        catch (HttpRequestException) { }
        cancellationToken.ThrowIfCancellationRequested();

        foreach (var modelId in modelIds)
        {
            bool ok = served?.Contains(modelId) == true;
            var state = _registry.For(modelId, url);
            if (state.Record(ok, _options.HealthyThreshold, _options.UnhealthyThreshold, isActiveCheck: true))
                StateChanged?.Invoke(modelId, url, state.Healthy);
        }
    }

    /// <summary>A model list larger than this is not a vLLM's: the probe fails rather than hold the memory (a 150 MB one took 336 MB).</summary>
    public const int MaxModelListBytes = 1024 * 1024;

    /// <summary>The body, or null when it is longer than <see cref="MaxModelListBytes"/>.</summary>
    private static async Task<ReadOnlyMemory<byte>?> ReadCappedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength > MaxModelListBytes) return null;
        await using var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var buffer = new byte[16 * 1024];
        int length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (buffer.Length > MaxModelListBytes) return null;
                Array.Resize(ref buffer, Math.Min(buffer.Length * 2, MaxModelListBytes + 1));
            }
            int n = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false);
            if (n == 0) return buffer.AsMemory(0, length);
            length += n;
        }
    }

    private static HashSet<string>? ParseModelIds(ReadOnlyMemory<byte> body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (!doc.RootElement.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array) return null;
            var ids = new HashSet<string>(StringComparer.Ordinal);
            foreach (var m in data.EnumerateArray())
                if (m.ValueKind == JsonValueKind.Object && m.TryGetProperty("id", out var id) && id.GetString() is { } s) ids.Add(s);
            return ids;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { return null; } // InvalidOperation: an id that is no text
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        if (_loop is not null) await _loop.ConfigureAwait(false);
        _http.Dispose();
        _stop.Dispose();
    }
}
