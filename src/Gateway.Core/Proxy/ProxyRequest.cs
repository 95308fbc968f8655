using System.Collections.Concurrent;
using Gateway.Json;

namespace Gateway.Proxy;

/// <summary>The reusable per-request working set: the scan and three pooled buffers. Rented from a small pool, so a steady load allocates none of it.</summary>
internal sealed class ProxyRequest
{
    private static readonly ConcurrentBag<ProxyRequest> Pool = [];
    private const int MaxRetainedBytes = 256 * 1024; // a rare huge request must not pin its buffers forever

    public readonly RequestScan Scan = new();
    public PooledBuffer Body = new(4096);
    public PooledBuffer Upstream = new(4096);
    public PooledBuffer Response = new(4096);

    public static ProxyRequest Rent() => Pool.TryTake(out var r) ? r : new ProxyRequest();

    public static void Return(ProxyRequest request)
    {
        request.Body = Shrink(request.Body);
        request.Upstream = Shrink(request.Upstream);
        request.Response = Shrink(request.Response);
        if (Pool.Count < 1024) Pool.Add(request);
        else { request.Body.Dispose(); request.Upstream.Dispose(); request.Response.Dispose(); }
    }

    private static PooledBuffer Shrink(PooledBuffer buffer)
    {
        buffer.Clear();
        if (buffer.Array.Length <= MaxRetainedBytes) return buffer;
        buffer.Dispose();
        return new PooledBuffer(4096);
    }
}
