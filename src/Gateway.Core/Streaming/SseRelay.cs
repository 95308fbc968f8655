using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using Gateway.Json;

namespace Gateway.Streaming;

/// <summary>
/// Relays vLLM's SSE stream to the client, event by event, without allocating per event: find each complete event, rewrite its
/// model (and drop usage the client did not ask for), write it, and flush after every batch of complete events so no token waits
/// for the next read; the batch with [DONE] completes the writer instead, which sends it with the body's end. The read loop
/// follows StackExchange.Redis's: consume complete frames, AdvanceTo(consumed, examined).
/// </summary>
public static class SseRelay
{
    private static ReadOnlySpan<byte> DataPrefix => "data:"u8;
    private static ReadOnlySpan<byte> Done => "[DONE]"u8;

    /// <summary>An event larger than this is not an LLM chunk: the upstream is broken, and buffering it further would only grow memory.</summary>
    public const int MaxEventBytes = 1024 * 1024;

    /// <summary>Sent when the upstream breaks mid-stream: an OpenAI-shaped error and no <c>[DONE]</c>, so no client mistakes it for a clean end.</summary>
    public static ReadOnlySpan<byte> BrokenStreamEvent =>
        "data: {\"error\":{\"message\":\"The upstream model server closed the stream before it was complete.\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"backend_error\"}}\n\n"u8;

    /// <summary>Sent when the upstream sent nothing for too long (proxy.first_byte_timeout before its first byte, proxy.stream_idle_timeout after).</summary>
    public static ReadOnlySpan<byte> TimedOutEvent =>
        "data: {\"error\":{\"message\":\"The upstream model server sent nothing for longer than the gateway's timeout; the stream is incomplete.\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"backend_timeout\"}}\n\n"u8;

    /// <summary>Sent to streams still open when the gateway's drain time (server.shutdown_timeout) runs out.</summary>
    public static ReadOnlySpan<byte> ShuttingDownEvent =>
        "data: {\"error\":{\"message\":\"The gateway is shutting down; the stream was ended before it was complete.\",\"type\":\"server_error\",\"param\":null,\"code\":\"shutting_down\"}}\n\n"u8;

    /// <param name="clientAborted">The client went away: stop without writing anything more.</param>
    /// <param name="watchdog">Started by the caller: supplies the token for upstream reads and says why it cancelled one; null = no timeouts.</param>
    public static async ValueTask<RelayOutcome> RunAsync(
        PipeReader upstream, PipeWriter client, StreamState state, CancellationToken clientAborted, UpstreamWatchdog? watchdog = null)
    {
        var readToken = watchdog?.Token ?? clientAborted;
        long scanned = 0;
        while (true)
        {
            ReadResult read;
            try
            {
                if (!upstream.TryRead(out read))
                {
                    watchdog?.ReadStarting();
                    read = await upstream.ReadAsync(readToken).ConfigureAwait(false);
                    watchdog?.ReadDone();
                }
            }
            catch (OperationCanceledException) when (clientAborted.IsCancellationRequested)
            {
                return RelayOutcome.ClientGone;
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or System.Net.Http.HttpRequestException or ObjectDisposedException)
            {
                // A cancelled read surfaces as any of these, depending on where the socket was; the watchdog knows if it was the cause.
                return await FailAsync(client, watchdog?.Fired ?? RelayOutcome.UpstreamFailed).ConfigureAwait(false);
            }

            var buffer = read.Buffer;
            int written = ProcessEvents(ref buffer, ref scanned, client, state);
            upstream.AdvanceTo(buffer.Start, buffer.End);

            if (state.SawDone)
            {
                // Completing the writer sends the last events together with the end of the body (Kestrel's "0\r\n\r\n"): one send,
                // where a flush and then the end were two.
                try { await client.CompleteAsync().ConfigureAwait(false); }
                catch (Exception e) when (e is IOException or OperationCanceledException or InvalidOperationException) { return RelayOutcome.ClientGone; }
                return RelayOutcome.Completed;
            }
            if (written > 0)
            {
                FlushResult flush;
                try { flush = await client.FlushAsync(clientAborted).ConfigureAwait(false); }
                catch (OperationCanceledException) { return RelayOutcome.ClientGone; }
                catch (IOException) { return RelayOutcome.ClientGone; }
                if (flush.IsCanceled || flush.IsCompleted) return RelayOutcome.ClientGone;
            }
            if (buffer.Length > MaxEventBytes) return await FailAsync(client, RelayOutcome.UpstreamFailed).ConfigureAwait(false);
            if (read.IsCompleted || read.IsCanceled)
                return await FailAsync(client, RelayOutcome.UpstreamEndedEarly).ConfigureAwait(false);
        }
    }

    private static async ValueTask<RelayOutcome> FailAsync(PipeWriter client, RelayOutcome outcome)
    {
        try
        {
            client.Write(outcome switch
            {
                RelayOutcome.UpstreamTimedOut => TimedOutEvent,
                RelayOutcome.ShuttingDown => ShuttingDownEvent,
                _ => BrokenStreamEvent,
            });
            await client.FlushAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or InvalidOperationException) { }
        return outcome;
    }

    /// <summary>Handles every complete event in <paramref name="buffer"/> and slices past them; returns the number of events written.</summary>
    internal static int ProcessEvents(ref ReadOnlySequence<byte> buffer, ref long scanned, PipeWriter client, StreamState state)
    {
        int written = 0;
        long now = 0; // one timestamp for the whole read: its events arrived together
        // The events of one read go into as few of the writer's spans as fit: every GetSpan/Advance on Kestrel's response writer
        // takes its lock, so a span per event cost two lock rounds per event.
        var output = new OutputSpan(client);
        while (!state.SawDone && TryFindEvent(buffer, ref scanned, out long eventLength, out long frameLength, out bool oneLine))
        {
            var frame = buffer.Slice(0, frameLength);
            if (frame.IsSingleSegment)
            {
                var span = frame.FirstSpan;
                HandleEvent(span[..(int)eventLength], span[(int)eventLength..], oneLine, ref output, state, ref now);
            }
            else
            {
                var scratch = state.Scratch;
                scratch.Clear();
                var dest = scratch.GetSpan((int)frameLength);
                frame.CopyTo(dest);
                scratch.Advance((int)frameLength);
                var span = scratch.WrittenSpan;
                HandleEvent(span[..(int)eventLength], span[(int)eventLength..], oneLine, ref output, state, ref now);
            }
            buffer = buffer.Slice(frameLength);
            scanned = 0;
            written++;
        }
        output.Commit();
        state.ChargePending(); // live token accounting, once per read rather than once per chunk
        return written;
    }

    /// <summary>The client writer's current span and how much of it is written; advanced only when full or at the end of a read.</summary>
    private ref struct OutputSpan(PipeWriter writer)
    {
        private Span<byte> _span;
        private int _used;

        /// <summary>At least <paramref name="length"/> free bytes; write them, then <see cref="Wrote"/>.</summary>
        public Span<byte> Reserve(int length)
        {
            if (_span.Length - _used < length)
            {
                Commit();
                _span = writer.GetSpan(length);
            }
            return _span[_used..];
        }

        public void Wrote(int length) => _used += length;

        public void Commit()
        {
            if (_used > 0) writer.Advance(_used);
            _span = default;
            _used = 0;
        }
    }

    /// <summary>
    /// Finds the end of the next event: a blank line ("\n\n", or "\r\n\r\n"). <paramref name="scanned"/> carries over reads so a
    /// long event is not rescanned from its start every time more bytes arrive. <paramref name="oneLine"/>: the event is known to
    /// hold no newline of its own (its first newline starts the blank line), so the relay need not look again; false = unknown.
    /// </summary>
    internal static bool TryFindEvent(in ReadOnlySequence<byte> buffer, ref long scanned, out long eventLength, out long frameLength, out bool oneLine)
    {
        oneLine = scanned == 0; // stays true only while the first newline seen from the event's start is the blank line's
        var reader = new SequenceReader<byte>(buffer);
        reader.Advance(scanned);
        while (reader.TryAdvanceTo((byte)'\n', advancePastDelimiter: true))
        {
            long newline = reader.Consumed - 1;
            if (reader.IsNext((byte)'\n', advancePast: true) || reader.IsNext("\r\n"u8, advancePast: true))
            {
                eventLength = newline;
                frameLength = reader.Consumed;
                return true;
            }
            oneLine = false;
            if (reader.End || (reader.Remaining == 1 && reader.IsNext((byte)'\r')))
            {
                scanned = newline; // the blank line may still arrive: look at this newline again next time
                eventLength = frameLength = 0;
                return false;
            }
        }
        scanned = buffer.Length;
        eventLength = frameLength = 0;
        return false;
    }

    private static void HandleEvent(ReadOnlySpan<byte> evt, ReadOnlySpan<byte> terminator, bool oneLine, ref OutputSpan output, StreamState state, ref long now)
    {
        state.Events++;
        if (!evt.IsEmpty && evt[^1] == (byte)'\r')
        {
            evt = evt[..^1];
            terminator = "\r\n\r\n"u8;
        }
        // One "data:" line is what vLLM sends; anything else (comments, multi-line data, other fields) passes through untouched.
        if (evt.StartsWith(DataPrefix) && (oneLine || evt.IndexOf((byte)'\n') < 0))
        {
            int payloadStart = DataPrefix.Length;
            if (payloadStart < evt.Length && evt[payloadStart] == (byte)' ') payloadStart++;
            var payload = evt[payloadStart..];
            if (payload.SequenceEqual(Done))
            {
                state.SawDone = true;
            }
            else if (ResponseScanner.TryScan(payload, state.ScanCache, out var scan))
            {
                if (scan.HasUsage) state.OnUsage(scan.PromptTokens, scan.CompletionTokens);
                if (scan.HasContent)
                {
                    if (now == 0) now = Stopwatch.GetTimestamp();
                    state.OnContent(now);
                }
                // We always ask vLLM for usage; the client sees it only as far as it asked.
                if (scan.ChoicesEmpty && scan.HasUsage && !state.ClientIncludeUsage) return;
                bool stripUsage = scan.HasUsage && !scan.ChoicesEmpty && !state.ClientContinuousUsage;
                var dest = output.Reserve(payloadStart + ResponseRewriter.MaxLength(payload.Length, state.AliasJson.Length) + terminator.Length);
                evt[..payloadStart].CopyTo(dest);
                int n = payloadStart + ResponseRewriter.Write(payload, scan, state.AliasJson, stripUsage, dest[payloadStart..]);
                terminator.CopyTo(dest[n..]);
                output.Wrote(n + terminator.Length);
                return;
            }
        }
        var copy = output.Reserve(evt.Length + terminator.Length);
        evt.CopyTo(copy);
        terminator.CopyTo(copy[evt.Length..]);
        output.Wrote(evt.Length + terminator.Length);
    }
}
