using System.Collections.Concurrent;
using Gateway.Json;
using Gateway.Limits;
using Gateway.Net;
using Gateway.Observability;
using Gateway.Routing;
using Gateway.Streaming;

namespace Gateway.Proxy;

/// <summary>The reusable per-request working set: the scan, the accounting record and three pooled buffers. Rented from a small pool, so a steady load allocates none of it.</summary>
internal sealed class ProxyRequest
{
    private static readonly ConcurrentBag<ProxyRequest> Pool = [];
    private const int MaxRetainedBytes = 256 * 1024; // a rare huge request must not pin its buffers forever

    public readonly RequestScan Scan = new();
    public readonly RequestRecord Record = new();
    public PooledBuffer Body = new(4096);
    public PooledBuffer Upstream = new(4096);
    public PooledBuffer Response = new(4096);
    /// <summary>The client headers forwarded upstream (Accept, pass-through), filled once per request: a list per request would be an allocation.</summary>
    public readonly List<KeyValuePair<string, string>> UpstreamHeaders = new(1);
    /// <summary>What the request charges when it ends (step 11); default when neither the key nor the model has a limit.</summary>
    public RateRequest Rate;

    private CancellationTokenSource _cts = new();
    private bool _ctsDoomed; // the first-byte sweep took its deadline: it is (or will be) cancelled, so it is not reused
    private readonly FirstByteDeadline _firstByte = new();
    private CancellationTokenRegistration _clientAbort;
    private BackendLoad? _counted;
    private UpstreamWatchdog? _watchdog;

    /// <summary>The stream timeouts, kept with the request so a stream costs no timer allocation.</summary>
    public UpstreamWatchdog Watchdog => _watchdog ??= new UpstreamWatchdog();

    /// <summary>Counts this request as in flight on <paramref name="load"/> (step 8), moving the count off a backend that failed over.</summary>
    public void CountOn(BackendLoad load)
    {
        _counted?.End();
        _counted = load;
        load.Begin();
    }

    /// <summary>Ends the in-flight count (step 11, once the response, stream included, is over).</summary>
    public void ReleaseCount()
    {
        _counted?.End();
        _counted = null;
    }

    /// <summary>A token source for the upstream call that also fires when the client goes away; reused across requests when it was not cancelled.</summary>
    public CancellationTokenSource Cancellation(CancellationToken clientAborted)
    {
        _clientAbort.Dispose();
        DisarmFirstByte();
        if (_ctsDoomed) (_cts, _ctsDoomed) = (new CancellationTokenSource(), false); // not disposed: the sweep may still cancel it
        else if (!_cts.TryReset())
        {
            _cts.Dispose();
            _cts = new CancellationTokenSource();
        }
        _clientAbort = clientAborted.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), _cts);
        return _cts;
    }

    /// <summary>Starts the first-byte timeout on the source <see cref="Cancellation"/> gave (see <see cref="FirstByteDeadline"/>).</summary>
    public void ArmFirstByte(TimeSpan timeout) => _firstByte.Arm(_cts, timeout);

    /// <summary>Ends the first-byte timeout: the response head is here, or the attempt is over.</summary>
    public void DisarmFirstByte()
    {
        if (!_firstByte.Disarm()) _ctsDoomed = true;
    }

    // ConcurrentBag.Count takes every thread's lock: the pool's size is kept here instead (approximate, which is all a cap needs).
    private static int s_pooled;

    // An event loop's own few (most requests start and end on their connection's loop): no ConcurrentBag per request.
    [ThreadStatic] private static LoopStack<ProxyRequest>? t_loopCache;

    public static ProxyRequest Rent()
    {
        if (t_loopCache is { } cache && cache.TryPop(out var own)) return own;
        if (!Pool.TryTake(out var r)) return new ProxyRequest();
        Interlocked.Decrement(ref s_pooled);
        return r;
    }

    public static void Return(ProxyRequest request)
    {
        request.DisarmFirstByte();
        request._clientAbort.Dispose();
        request._clientAbort = default;
        request.Record.Reset(0); // drop references (model, strings) while pooled
        request.UpstreamHeaders.Clear();
        request.Rate = default;
        request.Body = Shrink(request.Body);
        request.Upstream = Shrink(request.Upstream);
        request.Response = Shrink(request.Response);
        var cache = t_loopCache;
        if (cache is null && EventLoop.Current is not null) t_loopCache = cache = new LoopStack<ProxyRequest>(16);
        if (cache is not null && cache.TryPush(request)) return;
        if (Volatile.Read(ref s_pooled) < 1024)
        {
            Interlocked.Increment(ref s_pooled);
            Pool.Add(request);
        }
        else { request.Body.Dispose(); request.Upstream.Dispose(); request.Response.Dispose(); request._watchdog?.Dispose(); request._firstByte.Unregister(); }
    }

    private static PooledBuffer Shrink(PooledBuffer buffer)
    {
        buffer.Clear();
        if (buffer.Array.Length <= MaxRetainedBytes) return buffer;
        buffer.Dispose();
        return new PooledBuffer(4096);
    }
}
