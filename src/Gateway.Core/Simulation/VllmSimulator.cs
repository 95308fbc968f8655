using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;
using Gateway.Http;

namespace Gateway.Simulation;

/// <summary>
/// A vLLM OpenAI-compatible server stand-in on the gateway's own <see cref="HttpServer"/>: the upstream for integration tests,
/// benchmarks and <c>gateway simulate</c>. Speaks vLLM's wire format and injects delays and faults from <see cref="Options"/>.
/// </summary>
public sealed class VllmSimulator : IAsyncDisposable
{
    private const int CaptureLimit = 256;

    private readonly HttpServer _server;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Queue<CapturedRequest> _captured = new(CaptureLimit);
    private readonly Queue<CancelledStream> _cancellations = new(CaptureLimit);
    private long _requestCount;
    private long _cancelledStreams;
    private int _stopped;

    private VllmSimulator(SimulatorOptions options, HttpServer server)
    {
        Options = options;
        _server = server;
        BaseUrl = "";
    }

    public SimulatorOptions Options { get; }

    /// <summary>The port actually bound.</summary>
    public int Port { get; private set; }

    /// <summary><c>http://host:port</c>; a wildcard host is given as 127.0.0.1 so the URL is always connectable.</summary>
    public string BaseUrl { get; private set; }

    /// <summary>/v1/* POSTs received, including those answered with an error.</summary>
    public long RequestCount => Interlocked.Read(ref _requestCount);

    /// <summary>Streams whose client went away before the end.</summary>
    public long CancelledStreams => Interlocked.Read(ref _cancelledStreams);

    /// <summary>The last 256 /v1 POSTs, oldest first (a snapshot).</summary>
    public IReadOnlyList<CapturedRequest> Captured
    {
        get { lock (_captured) return _captured.ToArray(); }
    }

    internal CancellationToken Stopping => _stopping.Token;

    /// <summary>Per-model counters for /metrics.</summary>
    internal ConcurrentDictionary<string, ModelStats> Stats { get; } = new(StringComparer.Ordinal);

    public void ClearCaptured()
    {
        lock (_captured) _captured.Clear();
    }

    public static async Task<VllmSimulator> StartAsync(SimulatorOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var address = ParseHost(options.Host);
        var server = new HttpServer(new IPEndPoint(address, options.Port));
        var simulator = new VllmSimulator(options, server);
        try
        {
            await server.StartAsync(new SimulatorApplication(simulator), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            simulator._stopping.Dispose();
            throw;
        }
        simulator.Port = server.Port;
        var host = address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any) ? "127.0.0.1"
            : address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
        simulator.BaseUrl = $"http://{host}:{simulator.Port}";
        return simulator;
    }

    /// <summary>An IP literal, or "localhost" (loopback). Names are not resolved: the simulator binds one exact address.</summary>
    public static bool TryParseHost(string host, [NotNullWhen(true)] out IPAddress? address)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            address = IPAddress.Loopback;
            return true;
        }
        var trimmed = host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;
        return IPAddress.TryParse(trimmed, out address);
    }

    private static IPAddress ParseHost(string host) =>
        TryParseHost(host, out var address) ? address : throw new ArgumentException($"Host '{host}' is not an IP address or 'localhost'.");

    /// <summary>Ends in-flight streams at once (their connections are aborted, as when vLLM is killed) and stops listening.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        await _stopping.CancelAsync().ConfigureAwait(false);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try { await _server.StopAsync(timeout.Token).ConfigureAwait(false); } catch (OperationCanceledException) { }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await _server.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    internal long NextRequest() => Interlocked.Increment(ref _requestCount);

    internal void StreamCancelled(string? requestId)
    {
        var at = Stopwatch.GetTimestamp();
        lock (_cancellations)
        {
            if (_cancellations.Count == CaptureLimit) _cancellations.Dequeue();
            _cancellations.Enqueue(new CancelledStream(requestId, at));
        }
        Interlocked.Increment(ref _cancelledStreams);
    }

    /// <summary>The last 256 streams whose client left, oldest first (a snapshot): when the simulator noticed, per request id.</summary>
    public IReadOnlyList<CancelledStream> Cancellations
    {
        get { lock (_cancellations) return _cancellations.ToArray(); }
    }

    private long _reportedUsage;

    /// <summary>
    /// Over all streams with continuous_usage_stats: the cumulative usage (prompt + completion tokens) of the last chunk each one
    /// flushed before it ended, was cancelled or died. What a gateway charging live usage should have charged.
    /// </summary>
    public long ReportedUsageTokens => Interlocked.Read(ref _reportedUsage);

    internal void AddReportedUsage(long tokens) => Interlocked.Add(ref _reportedUsage, tokens);

    internal void Capture(CapturedRequest request)
    {
        lock (_captured)
        {
            if (_captured.Count == CaptureLimit) _captured.Dequeue();
            _captured.Enqueue(request);
        }
    }

    internal ModelStats StatsFor(string model) => Stats.GetOrAdd(model, static _ => new ModelStats());
}

/// <summary>A stream whose client left: its X-Request-ID (null without one) and the <see cref="Stopwatch"/> timestamp of the notice.</summary>
public readonly record struct CancelledStream(string? RequestId, long Timestamp);

/// <summary>Counters behind the vLLM-style gauges on /metrics.</summary>
internal sealed class ModelStats
{
    public long Running;
    public long Success;
    public long PromptTokens;
    public long GenerationTokens;
}
