namespace Gateway.Load;

/// <summary>What one target (gateway or direct) did during one step.</summary>
internal sealed record TargetResult
{
    public required string Target { get; init; }
    public required double Seconds { get; init; }
    public required int Completed { get; init; }
    public required int Errors { get; init; }
    /// <summary>Poisson arrivals that found the in-flight bound full and were not sent (a client-side limit, not a target error).</summary>
    public int Dropped { get; init; }
    /// <summary>Most streams that had received content and not yet ended at the same moment.</summary>
    public int PeakOpenStreams { get; init; }
    public required Percentiles Latency { get; init; }
    public required Percentiles Ttft { get; init; }
    public required Percentiles Itl { get; init; }
    /// <summary>First few distinct error messages, so a report says why and not only how many.</summary>
    public IReadOnlyList<string> ErrorSamples { get; init; } = [];

    public double RequestsPerSecond => Seconds > 0 ? Completed / Seconds : 0;
    public int Attempts => Completed + Errors;
    public double ErrorRate => Attempts > 0 ? (double)Errors / Attempts : 0;
}

/// <summary>Process figures of the gateway over its half of a step (null when its PID is unknown).</summary>
internal sealed record ProcessFigures(double CpuMicrosPerRequest, double CpuSeconds, long RssBytes, long PeakRssBytes);

/// <summary>One load level: the gateway run and the direct run with the same settings, back to back.</summary>
internal sealed record StepResult
{
    /// <summary>The load level's value: concurrency, req/s or open streams, as <see cref="LoadKind"/> says.</summary>
    public required double Load { get; init; }
    public required string LoadKind { get; init; }
    public TargetResult? Gateway { get; init; }
    public TargetResult? Direct { get; init; }
    public ProcessFigures? GatewayProcess { get; init; }
    /// <summary>Streams profile only: RSS above the idle baseline divided by open streams.</summary>
    public double? RssPerStreamBytes { get; init; }

    /// <summary>Gateway − direct latency at p50 (ms); NaN when either side is missing or has no samples.</summary>
    public double OverheadP50 => Gateway is { } g && Direct is { } d ? g.Latency.P50 - d.Latency.P50 : double.NaN;
    public double OverheadP99 => Gateway is { } g && Direct is { } d ? g.Latency.P99 - d.Latency.P99 : double.NaN;
}
