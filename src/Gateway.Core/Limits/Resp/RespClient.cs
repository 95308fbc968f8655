using System.Diagnostics;
using System.Net;
using Gateway.Net;

namespace Gateway.Limits.Resp;

/// <summary>
/// A minimal Redis client for the rate limiter: one connection for the process (<see cref="RespConnection"/>), logged in (AUTH,
/// SELECT) when it opens and opened again in the background after any failure (every 250 ms while Redis is away). While it is
/// not connected a command fails at once: a request must not wait for a Redis that is not there. A timer fails open the timed
/// commands older than the timeout, and closes a connection whose oldest command has waited past the stall limit.
/// </summary>
internal sealed class RespClient : IAsyncDisposable
{
    /// <summary>Commands waiting for replies beyond which a new one fails at once (Redis is far behind: do not queue more).</summary>
    public const int MaxInFlight = 8192;
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(250);
    // A pause shorter than this (a fork for a snapshot, a slow script) does not cost the connection: checks fail open meanwhile.
    private static readonly TimeSpan MinStall = TimeSpan.FromSeconds(1);

    private readonly RespEndpoint _endpoint;
    private readonly long _timeoutTicks, _stallTicks;
    private readonly Timer _timer;
    private readonly TimeSpan _sweepPeriod;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;
    private readonly TaskCompletionSource _firstAttempt = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private RespConnection? _live;
    private volatile string _down = "not yet connected to Redis";
    private int _connects, _disposed;

    /// <param name="timeout">How long a timed command may wait for its reply before it fails (checked every timeout/2, 5–50 ms).</param>
    public RespClient(RespEndpoint endpoint, TimeSpan timeout)
    {
        _endpoint = endpoint;
        _timeoutTicks = (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        _stallTicks = (long)(Math.Max(timeout.TotalSeconds, MinStall.TotalSeconds) * Stopwatch.Frequency);
        _sweepPeriod = TimeSpan.FromMilliseconds(Math.Clamp(timeout.TotalMilliseconds / 2, 5, 50));
        _timer = new Timer(static s => ((RespClient)s!).Sweep(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _run = Task.Run(RunAsync);
        // As StackExchange.Redis's Connect does: the first requests after a start are limited, not let through while connecting.
        _firstAttempt.Task.Wait(ConnectTimeout + TimeSpan.FromSeconds(1));
    }

    /// <summary>Connections opened so far (the first included).</summary>
    public int Connects => Volatile.Read(ref _connects);

    public bool IsConnected => Volatile.Read(ref _live) is not null;

    /// <summary>
    /// Sends <paramref name="command"/> (RESP-encoded) now; completes with its reply, inline on the connection's loop thread, or
    /// with a <see cref="RespKind.Failed"/> reply. Commands are written in the order of the calls.
    /// </summary>
    public ValueTask<RespReply> Issue(ReadOnlySpan<byte> command, bool timed) =>
        Volatile.Read(ref _live) is { } connection
            ? connection.Issue(command, Stopwatch.GetTimestamp(), timed, MaxInFlight)
            : new(RespReply.Failure(_down));

    private async Task RunAsync()
    {
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            RespConnection? connection = null;
            try
            {
                using (var connect = CancellationTokenSource.CreateLinkedTokenSource(token))
                {
                    connect.CancelAfter(ConnectTimeout);
                    var addresses = IPAddress.TryParse(_endpoint.Host, out var ip) ? [ip] : await Dns.GetHostAddressesAsync(_endpoint.Host, connect.Token).ConfigureAwait(false);
                    connection = await RespConnection.ConnectAsync(addresses, _endpoint.Port, EventLoops.Next(), ArmSweep, connect.Token).ConfigureAwait(false);
                    await LogInAsync(connection).WaitAsync(connect.Token).ConfigureAwait(false);
                }
                Interlocked.Increment(ref _connects);
                Volatile.Write(ref _live, connection);
                ArmSweep();
                _firstAttempt.TrySetResult();
                string why;
                using (token.UnsafeRegister(static s => ((RespConnection)s!).Close("the rate limiter was disposed"), connection))
                    why = await connection.Closed.ConfigureAwait(false);
                Volatile.Write(ref _live, null);
                _down = $"Redis connection to {_endpoint} lost: {why}";
            }
            catch (Exception e)
            {
                connection?.Close(e.Message);
                if (token.IsCancellationRequested) break;
                _down = e is OperationCanceledException
                    ? $"connecting to Redis at {_endpoint} timed out"
                    : $"cannot connect to Redis at {_endpoint}: {e.Message}";
                _firstAttempt.TrySetResult();
            }
            try { await Task.Delay(RetryDelay, token).ConfigureAwait(false); }
            catch (OperationCanceledException) { break; }
        }
        _firstAttempt.TrySetResult();
    }

    /// <summary>AUTH and SELECT, pipelined, as REDIS_URL asks; an error reply (a wrong password) fails the connect.</summary>
    private async Task LogInAsync(RespConnection connection)
    {
        var encoder = new RespEncoder();
        ValueTask<RespReply> auth = default, select = default;
        if (_endpoint.Password is { } password)
        {
            encoder.Command(_endpoint.User is null ? 2 : 3).Arg("AUTH"u8);
            if (_endpoint.User is { } user) encoder.Arg(user);
            auth = connection.Issue(encoder.Arg(password).Written, Stopwatch.GetTimestamp(), timed: false, MaxInFlight);
        }
        if (_endpoint.Database != 0)
            select = connection.Issue(encoder.Command(2).Arg("SELECT"u8).Arg(_endpoint.Database).Written, Stopwatch.GetTimestamp(), timed: false, MaxInFlight);
        if (_endpoint.Password is not null) Expect(await auth.ConfigureAwait(false), "AUTH");
        if (_endpoint.Database != 0) Expect(await select.ConfigureAwait(false), "SELECT");
    }

    private static void Expect(in RespReply reply, string command)
    {
        if (reply.Kind is RespKind.Error or RespKind.Failed) throw new InvalidOperationException($"{command} failed: {reply.Error}");
    }

    /// <summary>Runs the sweep every period from now while commands wait (it stops itself when none do).</summary>
    private void ArmSweep()
    {
        if (_stop.IsCancellationRequested) return;
        try { _timer.Change(_sweepPeriod, Timeout.InfiniteTimeSpan); }
        catch (ObjectDisposedException) { } // disposed in between
    }

    private void Sweep()
    {
        var result = SweepResult.Idle;
        try
        {
            if (Volatile.Read(ref _live) is { } connection)
            {
                long now = Stopwatch.GetTimestamp();
                result = connection.Sweep(now - _timeoutTicks, now - _stallTicks);
                if (result == SweepResult.Stalled) connection.Close($"no reply from Redis for {_stallTicks * 1000 / Stopwatch.Frequency} ms");
            }
        }
        catch (Exception e) { EventLoop.Report(e); }
        if (result == SweepResult.Busy) ArmSweep(); // idle or closed: the next command (or connection) arms it again
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Cancel();
        await _timer.DisposeAsync().ConfigureAwait(false);
        try { await _run.ConfigureAwait(false); } catch (OperationCanceledException) { }
        _stop.Dispose();
    }
}
