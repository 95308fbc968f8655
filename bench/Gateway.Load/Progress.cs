using System.Diagnostics;
using System.Globalization;

namespace Gateway.Load;

/// <summary>
/// While a target runs: samples the gateway's RSS (for the step's peak) every 250 ms and rewrites one status line on stderr
/// (carriage return, no newline) so an operator sees the run move without a scrolling log.
/// </summary>
internal sealed class Progress : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _peakRss;

    public long PeakRss => Interlocked.Read(ref _peakRss);

    public Progress(string label, StepRecorder recorder, int? gatewayPid, bool quiet)
    {
        _loop = LoopAsync(label, recorder, gatewayPid, quiet, _stop.Token);
    }

    private async Task LoopAsync(string label, StepRecorder recorder, int? pid, bool quiet, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var tick = 0;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(250));
        try
        {
            do
            {
                long rss = 0;
                if (pid is { } p && ProcessProbe.RssBytes(p) is { } r)
                {
                    rss = r;
                    if (r > Interlocked.Read(ref _peakRss)) Interlocked.Exchange(ref _peakRss, r);
                }
                if (!quiet && tick++ % 2 == 0)
                {
                    var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
                    var line = string.Create(CultureInfo.InvariantCulture,
                        $"\r{label} {seconds,5:F1}s  ok {recorder.Completed,7}  err {recorder.Failed,5}  {recorder.Completed / Math.Max(seconds, 0.001),8:F1} req/s  in flight {recorder.InFlight,5}  streams {recorder.OpenStreams,5}{(rss > 0 ? $"  gw rss {rss / 1048576.0,6:F1} MB" : "")}   ");
                    Console.Error.Write(line);
                }
            }
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) { }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
