namespace Gateway.Load;

/// <summary>Collects one target's outcomes during one step; thread-safe, summarised once at the end.</summary>
internal sealed class StepRecorder
{
    private readonly object _gate = new();
    private readonly List<double> _latency = new(1024);
    private readonly List<double> _ttft = new(1024);
    private readonly Dictionary<string, int> _errors = new(StringComparer.Ordinal);
    private int _completed, _failed, _dropped, _inFlight, _openStreams, _peakOpenStreams;

    /// <summary>Inter-token gaps; <see cref="SseMeter"/> appends under this list's own lock.</summary>
    public List<double> Itl { get; } = new(4096);

    public int Completed => Volatile.Read(ref _completed);
    public int Failed => Volatile.Read(ref _failed);
    public int InFlight => Volatile.Read(ref _inFlight);
    public int OpenStreams => Volatile.Read(ref _openStreams);
    public int Dropped => Volatile.Read(ref _dropped);

    public void Started() => Interlocked.Increment(ref _inFlight);
    public void FirstToken()
    {
        var open = Interlocked.Increment(ref _openStreams);
        // The streams profile's answer is how many streams were open at once, not how many were started.
        int peak;
        while (open > (peak = Volatile.Read(ref _peakOpenStreams)) && Interlocked.CompareExchange(ref _peakOpenStreams, open, peak) != peak) { }
    }
    public void Drop() => Interlocked.Increment(ref _dropped);

    public void Record(RequestOutcome outcome, bool streamWasOpen)
    {
        Interlocked.Decrement(ref _inFlight);
        if (streamWasOpen) Interlocked.Decrement(ref _openStreams);
        lock (_gate)
        {
            if (outcome.Ok)
            {
                _completed++;
                _latency.Add(outcome.LatencyMs);
                if (!double.IsNaN(outcome.TtftMs)) _ttft.Add(outcome.TtftMs);
            }
            else
            {
                _failed++;
                var key = outcome.Error ?? "error";
                _errors[key] = _errors.GetValueOrDefault(key) + 1;
            }
        }
    }

    public TargetResult Summarize(string target, double seconds)
    {
        lock (_gate)
        {
            List<double> itl;
            lock (Itl) itl = [.. Itl];
            return new TargetResult
            {
                Target = target,
                Seconds = seconds,
                Completed = _completed,
                Errors = _failed,
                Dropped = _dropped,
                PeakOpenStreams = Volatile.Read(ref _peakOpenStreams),
                Latency = Stats.Summarize(_latency),
                Ttft = _ttft.Count > 0 ? Stats.Summarize(_ttft) : Percentiles.Empty,
                Itl = itl.Count > 0 ? Stats.Summarize(itl) : Percentiles.Empty,
                ErrorSamples = [.. _errors.OrderByDescending(e => e.Value).Take(5).Select(e => $"{e.Value}× {e.Key}")],
            };
        }
    }
}
