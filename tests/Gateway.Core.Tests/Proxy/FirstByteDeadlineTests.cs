using System.Diagnostics;
using Gateway.Proxy;

namespace Gateway.Tests.Proxy;

/// <summary>The first-byte timeout's sweep: a deadline cancels its source once it has passed, never before, and never after a disarm.</summary>
public sealed class FirstByteDeadlineTests
{
    [Fact]
    public async Task An_armed_deadline_cancels_its_source_after_the_timeout_and_not_before()
    {
        var deadline = new FirstByteDeadline();
        try
        {
            using var cts = new CancellationTokenSource();
            var clock = Stopwatch.StartNew();
            deadline.Arm(cts, TimeSpan.FromMilliseconds(300));
            var fired = new TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously);
            using var registration = cts.Token.Register(() => fired.TrySetResult(clock.Elapsed));
            var at = await fired.Task.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.InRange(at, TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(5)); // the sweep runs every 100 ms: late, never early
            Assert.False(deadline.Disarm()); // the sweep took it: the caller must not reuse the source
        }
        finally { deadline.Unregister(); }
    }

    [Fact]
    public async Task A_disarmed_deadline_never_fires_and_the_next_arm_is_timed_on_its_own()
    {
        var deadline = new FirstByteDeadline();
        try
        {
            using var first = new CancellationTokenSource();
            deadline.Arm(first, TimeSpan.FromMilliseconds(150));
            Assert.True(deadline.Disarm());
            Assert.True(deadline.Disarm()); // a second disarm is a no-op
            using var second = new CancellationTokenSource();
            deadline.Arm(second, TimeSpan.FromSeconds(30));
            await Task.Delay(600); // several sweeps past the first deadline
            Assert.False(first.IsCancellationRequested);
            Assert.False(second.IsCancellationRequested);
            Assert.True(deadline.Disarm());
        }
        finally { deadline.Unregister(); }
    }

    [Fact]
    public async Task Many_deadlines_fire_each_for_its_own_source_only()
    {
        var deadlines = Enumerable.Range(0, 50).Select(_ => new FirstByteDeadline()).ToArray();
        var sources = deadlines.Select(_ => new CancellationTokenSource()).ToArray();
        try
        {
            for (int i = 0; i < deadlines.Length; i++) deadlines[i].Arm(sources[i], TimeSpan.FromMilliseconds(i % 2 == 0 ? 100 : 60_000));
            for (int i = 1; i < deadlines.Length; i += 4) Assert.True(deadlines[i].Disarm()); // some of the long ones end early
            var wait = Stopwatch.StartNew();
            while (sources.Where((_, i) => i % 2 == 0).Any(s => !s.IsCancellationRequested) && wait.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(20);
            for (int i = 0; i < sources.Length; i++) Assert.Equal(i % 2 == 0, sources[i].IsCancellationRequested);
        }
        finally
        {
            foreach (var d in deadlines) d.Unregister();
            foreach (var s in sources) s.Dispose();
        }
    }
}
