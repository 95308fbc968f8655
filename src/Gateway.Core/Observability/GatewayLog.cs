using System.Buffers;
using System.Collections.Concurrent;
using Gateway.Streaming;
using Prometheus;

namespace Gateway.Observability;

public enum LogLevel : byte { Debug, Info, Warn, Error }

/// <summary>
/// The gateway's log: one line per request plus lifecycle messages, JSON (default) or text. Request threads only enqueue a
/// struct into a bounded lock-free queue; a dedicated thread wakes every <see cref="FlushInterval"/>, formats what is queued and
/// writes it to the sink (stdout) in one write. Queueing a request line signals nobody: waking a writer per request cost a
/// thread-pool hop and two futex calls per request under load. Lifecycle messages (rare) and a filling queue wake it at once.
/// When the queue is full the line is dropped and counted (<c>gateway_log_lines_dropped_total</c>): a slow stdout never blocks a
/// request. Never logs a key, its hash or the admin key — only <see cref="Routing.KeyEntry.KeyPrefix"/>.
/// </summary>
public sealed class GatewayLog : IAsyncDisposable
{
    public const int Capacity = 8192;
    public static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(50);
    private const int WakeAt = Capacity / 4;

    private readonly ConcurrentQueue<LogLine> _queue = new();
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Stream _sink;
    private readonly Counter? _dropped;
    private readonly bool _text;
    private int _count;
    private volatile bool _stopping;

    public GatewayLog(string level, string format, Stream? sink, Counter? dropped = null)
    {
        MinLevel = ParseLevel(level);
        _text = string.Equals(format, "text", StringComparison.OrdinalIgnoreCase);
        _sink = sink ?? Console.OpenStandardOutput();
        _dropped = dropped;
        new Thread(WriteLoop) { IsBackground = true, Name = "gateway log" }.Start();
    }

    public LogLevel MinLevel { get; }

    public static LogLevel ParseLevel(string level) => level.ToLowerInvariant() switch
    {
        "debug" => LogLevel.Debug,
        "warn" or "warning" => LogLevel.Warn,
        "error" => LogLevel.Error,
        _ => LogLevel.Info,
    };

    /// <summary>The log's name for a stream that broke after its 200; null when it completed or the client left (its own choice).</summary>
    private static string? StreamError(RelayOutcome outcome) => outcome switch
    {
        RelayOutcome.UpstreamEndedEarly => "upstream_ended_early",
        RelayOutcome.UpstreamFailed => "upstream_failed",
        RelayOutcome.UpstreamTimedOut => "upstream_timeout",
        RelayOutcome.ShuttingDown => "shutting_down",
        _ => null,
    };

    public static LogLevel LevelOf(int status) => status >= 500 ? LogLevel.Error : status >= 400 ? LogLevel.Warn : LogLevel.Info;

    public void Info(string message) => Message(LogLevel.Info, message);
    public void Warn(string message) => Message(LogLevel.Warn, message);
    public void Error(string message) => Message(LogLevel.Error, message);

    public void Message(LogLevel level, string message)
    {
        if (level < MinLevel) return;
        if (Enqueue(new LogLine { Timestamp = DateTime.UtcNow, Level = level, Msg = message })) _wake.Set();
    }

    /// <summary>One line for a finished request. Strings are references the request already holds; nothing is formatted here.</summary>
    public void Request(RequestRecord r, long end)
    {
        var streamError = StreamError(r.StreamOutcome);
        var level = streamError is null ? LevelOf(r.Status) : r.StreamOutcome == RelayOutcome.ShuttingDown ? LogLevel.Warn : LogLevel.Error;
        if (level < MinLevel) return;
        Enqueue(new LogLine
        {
            Timestamp = DateTime.UtcNow,
            Level = level,
            Msg = "request",
            IsRequest = true,
            RequestId = r.RequestId,
            Method = r.Method,
            Path = r.Path,
            Status = r.Status,
            DurationMs = RequestRecord.Milliseconds(end - r.Start),
            OverheadMs = RequestRecord.Milliseconds(r.Overhead(end)),
            Model = r.Model?.Alias ?? "",
            BackendUrl = r.Backend?.Url ?? "",
            Streaming = r.Streaming,
            KeyPrefix = r.KeyPrefix ?? "",
            PromptTokens = r.PromptTokens,
            CompletionTokens = r.CompletionTokens,
            Error = streamError,
        });
    }

    private bool Enqueue(in LogLine line)
    {
        var count = Interlocked.Increment(ref _count);
        if (count > Capacity)
        {
            Interlocked.Decrement(ref _count);
            _dropped?.Inc();
            return false;
        }
        _queue.Enqueue(line);
        if (count == WakeAt) _wake.Set();
        return true;
    }

    private void WriteLoop()
    {
        var buffer = new ArrayBufferWriter<byte>(64 * 1024);
        var sinkGone = false;
        while (true)
        {
            _wake.Wait(FlushInterval);
            _wake.Reset();
            var stopping = _stopping;
            while (_queue.TryDequeue(out var line))
            {
                Interlocked.Decrement(ref _count);
                if (sinkGone) continue;
                try
                {
                    if (_text) LogFormat.WriteText(line, buffer); else LogFormat.WriteJson(line, buffer);
                }
                catch (Exception)
                {
                    // A line that cannot be formatted (e.g. a message with a lone surrogate) is dropped and counted; this thread
                    // must not die, or the process would go with it.
                    _dropped?.Inc();
                }
                if (buffer.WrittenCount >= 60 * 1024) sinkGone = !Write(buffer);
            }
            if (!sinkGone && buffer.WrittenCount > 0) sinkGone = !Write(buffer);
            if (stopping && _queue.IsEmpty) break;
        }
        _stopped.TrySetResult();
    }

    /// <summary>One blocking write on this thread; false once stdout is gone (a closed pipe): then lines are only drained.</summary>
    private bool Write(ArrayBufferWriter<byte> buffer)
    {
        try
        {
            _sink.Write(buffer.WrittenSpan);
            _sink.Flush();
            return true;
        }
        catch (Exception) { return false; } // a closed pipe or any other sink failure: keep draining, never throw on this thread
        finally { buffer.ResetWrittenCount(); }
    }

    /// <summary>Writes what is queued and stops.</summary>
    public async ValueTask DisposeAsync()
    {
        _stopping = true;
        _wake.Set();
        await _stopped.Task.ConfigureAwait(false);
    }
}

/// <summary>One queued log line. A struct, so queueing a request's line allocates nothing.</summary>
internal struct LogLine
{
    public DateTime Timestamp;
    public LogLevel Level;
    public bool IsRequest;
    public bool Streaming;
    public int Status;
    public string Msg;
    public string? RequestId;
    public string? Method;
    public string? Path;
    public string? Model;
    public string? BackendUrl;
    public string? KeyPrefix;
    public double DurationMs;
    public double OverheadMs;
    public long PromptTokens;
    public long CompletionTokens;
    public string? Error;
}
