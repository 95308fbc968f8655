using System.Diagnostics;

namespace Gateway.Load;

/// <summary>How one step loads one target.</summary>
internal sealed record StepPlan
{
    public required string LoadKind { get; init; }          // "concurrency", "rate" or "streams"
    public required double Load { get; init; }
    public required TimeSpan Duration { get; init; }
    /// <summary>Per target and step; null = only the duration bounds it.</summary>
    public int? MaxRequests { get; init; }
    /// <summary>Rate profile: arrivals beyond this many in flight are dropped (and counted), so an overloaded target cannot make the
    /// tool open unbounded connections.</summary>
    public int MaxInFlight { get; init; } = 1024;
    /// <summary>After the duration, in-flight requests get this long to finish before they are cancelled and counted as errors.</summary>
    public TimeSpan Grace { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Streams profile: open the streams evenly over this time, one request each.</summary>
    public TimeSpan Ramp { get; init; }
    public int Seed { get; init; } = 1;
}

/// <summary>Runs one step against one target and reports what happened. Stops by itself at the plan's bounds.</summary>
internal static class StepRunner
{
    public static async Task<TargetResult> RunAsync(HttpClient client, Target target, StepPlan plan, StepRecorder recorder,
        CancellationToken cancellationToken)
    {
        // The hard stop cancels whatever is still in flight after duration + grace; the deadline only stops new requests.
        using var hardStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        hardStop.CancelAfter(plan.Duration + plan.Grace);
        var started = Stopwatch.GetTimestamp();
        var deadline = started + (long)(plan.Duration.TotalSeconds * Stopwatch.Frequency);
        var budget = new Budget(plan.MaxRequests);

        var work = plan.LoadKind switch
        {
            "rate" => RunPoissonAsync(client, target, plan, recorder, deadline, budget, hardStop.Token),
            "streams" => RunStreamsAsync(client, target, plan, recorder, budget, hardStop.Token),
            _ => RunFixedAsync(client, target, (int)plan.Load, recorder, deadline, budget, hardStop.Token),
        };
        // Never throws for cancellation: requests record their own cancellations, delays report them as false.
        await work.ConfigureAwait(false);
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        return recorder.Summarize(target.Name, seconds);
    }

    private static Task RunFixedAsync(HttpClient client, Target target, int concurrency, StepRecorder recorder, long deadline,
        Budget budget, CancellationToken cancellationToken)
    {
        var workers = new Task[Math.Max(1, concurrency)];
        for (var i = 0; i < workers.Length; i++)
        {
            workers[i] = Task.Run(async () =>
            {
                while (!cancellationToken.IsCancellationRequested && Stopwatch.GetTimestamp() < deadline && budget.TryTake())
                    await OneAsync(client, target, recorder, cancellationToken).ConfigureAwait(false);
            }, CancellationToken.None);
        }
        return Task.WhenAll(workers);
    }

    /// <summary>
    /// Open-loop arrivals: exponential gaps with mean 1/rate, scheduled on absolute times so a slow Task.Delay does not lower the
    /// rate (late arrivals are sent at once). Unlike a closed loop, a slow target does not slow the arrivals down: queueing shows.
    /// </summary>
    private static async Task RunPoissonAsync(HttpClient client, Target target, StepPlan plan, StepRecorder recorder, long deadline,
        Budget budget, CancellationToken cancellationToken)
    {
        var random = new Random(plan.Seed);
        var inFlight = new List<Task>();
        var next = (double)Stopwatch.GetTimestamp();
        while (!cancellationToken.IsCancellationRequested)
        {
            next += -Math.Log(1 - random.NextDouble()) / plan.Load * Stopwatch.Frequency;
            if (next >= deadline) break;
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), (long)next);
            if (wait > TimeSpan.FromMilliseconds(1) && !await DelayAsync(wait, cancellationToken).ConfigureAwait(false)) break;
            if (!budget.TryTake()) break;
            if (recorder.InFlight >= plan.MaxInFlight) { recorder.Drop(); continue; }
            inFlight.Add(OneAsync(client, target, recorder, cancellationToken));
            if (inFlight.Count >= 4096) inFlight.RemoveAll(t => t.IsCompleted);
        }
        await Task.WhenAll(inFlight).ConfigureAwait(false);
    }

    /// <summary>N long streams, opened evenly over the ramp, one request each; the streams' own length sets the step's length.</summary>
    private static async Task RunStreamsAsync(HttpClient client, Target target, StepPlan plan, StepRecorder recorder, Budget budget,
        CancellationToken cancellationToken)
    {
        var n = (int)plan.Load;
        var streams = new List<Task>(n);
        var gap = n > 1 ? plan.Ramp / n : TimeSpan.Zero;
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < n && !cancellationToken.IsCancellationRequested && budget.TryTake(); i++)
        {
            var due = gap * i - Stopwatch.GetElapsedTime(start);
            if (due > TimeSpan.FromMilliseconds(1) && !await DelayAsync(due, cancellationToken).ConfigureAwait(false)) break;
            streams.Add(OneAsync(client, target, recorder, cancellationToken));
        }
        await Task.WhenAll(streams).ConfigureAwait(false);
    }

    private static async Task OneAsync(HttpClient client, Target target, StepRecorder recorder, CancellationToken cancellationToken)
    {
        recorder.Started();
        var open = false;
        var outcome = await SseMeter.SendAsync(client, target, recorder.Itl, () => { open = true; recorder.FirstToken(); }, cancellationToken)
            .ConfigureAwait(false);
        recorder.Record(outcome, open);
    }

    /// <summary>False when cancelled: the caller stops issuing but still awaits what is in flight, so every request is recorded.</summary>
    private static async Task<bool> DelayAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>The per-step request cap, shared by all workers.</summary>
    private sealed class Budget(int? max)
    {
        private int _taken;
        public bool TryTake() => max is not { } m || Interlocked.Increment(ref _taken) <= m;
    }
}
