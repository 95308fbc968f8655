using System.Buffers;
using System.Threading.Channels;
using Prometheus;

namespace Gateway.Observability;

public enum LogLevel : byte { Debug, Info, Warn, Error }

/// <summary>
/// The gateway's log: one line per request plus lifecycle messages, JSON (default) or text. Request threads only enqueue a
/// struct into a bounded channel; a background task formats and writes to the sink (stdout). When the queue is full the line is
/// dropped and counted (<c>gateway_log_lines_dropped_total</c>): a slow stdout never blocks a request. Never logs a key, its hash
/// or the admin key — only <see cref="Routing.KeyEntry.KeyPrefix"/>.
/// </summary>
public sealed class GatewayLog : IAsyncDisposable
{
    public const int Capacity = 8192;

    private readonly Channel<LogLine> _channel;
    private readonly Stream _sink;
    private readonly bool _text;
    private readonly Task _writer;

    public GatewayLog(string level, string format, Stream? sink, Counter? dropped = null)
    {
        MinLevel = ParseLevel(level);
        _text = string.Equals(format, "text", StringComparison.OrdinalIgnoreCase);
        _sink = sink ?? Console.OpenStandardOutput();
        var options = new BoundedChannelOptions(Capacity) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true, AllowSynchronousContinuations = false };
        _channel = dropped is null ? Channel.CreateBounded<LogLine>(options) : Channel.CreateBounded<LogLine>(options, _ => dropped.Inc());
        _writer = Task.Run(WriteLoopAsync);
    }

    public LogLevel MinLevel { get; }

    public static LogLevel ParseLevel(string level) => level.ToLowerInvariant() switch
    {
        "debug" => LogLevel.Debug,
        "warn" or "warning" => LogLevel.Warn,
        "error" => LogLevel.Error,
        _ => LogLevel.Info,
    };

    public static LogLevel LevelOf(int status) => status >= 500 ? LogLevel.Error : status >= 400 ? LogLevel.Warn : LogLevel.Info;

    public void Info(string message) => Message(LogLevel.Info, message);
    public void Warn(string message) => Message(LogLevel.Warn, message);
    public void Error(string message) => Message(LogLevel.Error, message);

    public void Message(LogLevel level, string message)
    {
        if (level < MinLevel) return;
        _channel.Writer.TryWrite(new LogLine { Timestamp = DateTime.UtcNow, Level = level, Msg = message });
    }

    /// <summary>One line for a finished request. Strings are references the request already holds; nothing is formatted here.</summary>
    public void Request(RequestRecord r, long end)
    {
        var level = LevelOf(r.Status);
        if (level < MinLevel) return;
        _channel.Writer.TryWrite(new LogLine
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
        });
    }

    private async Task WriteLoopAsync()
    {
        var buffer = new ArrayBufferWriter<byte>(64 * 1024);
        var reader = _channel.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                // Batch whatever is queued into one write.
                while (buffer.WrittenCount < 60 * 1024 && reader.TryRead(out var line))
                {
                    if (_text) LogFormat.WriteText(line, buffer); else LogFormat.WriteJson(line, buffer);
                }
                await _sink.WriteAsync(buffer.WrittenMemory).ConfigureAwait(false);
                await _sink.FlushAsync().ConfigureAwait(false);
                buffer.ResetWrittenCount();
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // stdout is gone (a closed pipe): nothing left to log to; drain so writers never notice.
            while (await reader.WaitToReadAsync().ConfigureAwait(false)) while (reader.TryRead(out _)) { }
        }
    }

    /// <summary>Writes what is queued and stops.</summary>
    public async ValueTask DisposeAsync()
    {
        _channel.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
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
}
