using System.Buffers;
using System.Diagnostics;

namespace Gateway.Load;

/// <summary>One request's outcome. Times are milliseconds from the moment the request was handed to HttpClient.</summary>
internal readonly record struct RequestOutcome(bool Ok, double LatencyMs, double TtftMs, string? Error);

/// <summary>Sends one chat request and times it: latency to the last byte, TTFT and the gaps between content events.</summary>
internal static class SseMeter
{
    private static ReadOnlySpan<byte> DataPrefix => "data:"u8;
    private static ReadOnlySpan<byte> DoneMarker => "[DONE]"u8;
    // Byte search instead of a JSON parse per event: the load tool shares 2 cores with the gateway it measures, so it must stay
    // cheap. The leading quote keeps "reasoning_content":"…" from matching; an empty string ("content":"") or null does not count.
    private static ReadOnlySpan<byte> ContentKey => "\"content\":\""u8;

    /// <param name="itl">Receives the inter-token gaps (ms) of a streamed answer; shared per step, so the caller locks it.</param>
    /// <param name="onFirstToken">Called once when the first content arrives (the streams profile counts open streams with it).</param>
    public static async Task<RequestOutcome> SendAsync(HttpClient client, Target target, List<double> itl, Action? onFirstToken,
        CancellationToken cancellationToken)
    {
        var start = Stopwatch.GetTimestamp();
        try
        {
            using var request = target.CreateRequest();
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
                return new RequestOutcome(false, Ms(start), double.NaN, $"HTTP {(int)response.StatusCode}");
            }
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            if (!target.Stream)
            {
                await body.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
                return new RequestOutcome(true, Ms(start), double.NaN, null);
            }
            return await ReadStreamAsync(body, start, itl, onFirstToken, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return new RequestOutcome(false, Ms(start), double.NaN, "cancelled at the step's bound");
        }
        catch (Exception e)
        {
            return new RequestOutcome(false, Ms(start), double.NaN, e is TaskCanceledException ? "timeout" : Flatten(e));
        }
    }

    private static async Task<RequestOutcome> ReadStreamAsync(Stream body, long start, List<double> itl, Action? onFirstToken,
        CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(4096);
        var gaps = new List<double>(64);
        try
        {
            int filled = 0, read;
            double ttft = double.NaN;
            long lastToken = 0;
            var done = false;
            while ((read = await body.ReadAsync(buffer.AsMemory(filled), cancellationToken).ConfigureAwait(false)) > 0)
            {
                filled += read;
                // Consume every complete line; keep a partial one for the next read.
                var consumed = 0;
                int newline;
                while ((newline = buffer.AsSpan(consumed, filled - consumed).IndexOf((byte)'\n')) >= 0)
                {
                    var line = buffer.AsSpan(consumed, newline);
                    consumed += newline + 1;
                    if (!line.StartsWith(DataPrefix)) continue;
                    var payload = line[DataPrefix.Length..].Trim((byte)' ').TrimEnd((byte)'\r');
                    if (payload.SequenceEqual(DoneMarker)) { done = true; continue; }
                    if (!HasContent(payload)) continue;
                    var now = Stopwatch.GetTimestamp();
                    if (lastToken == 0)
                    {
                        ttft = Stopwatch.GetElapsedTime(start, now).TotalMilliseconds;
                        onFirstToken?.Invoke();
                    }
                    else gaps.Add(Stopwatch.GetElapsedTime(lastToken, now).TotalMilliseconds);
                    lastToken = now;
                }
                if (consumed > 0)
                {
                    buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
                    filled -= consumed;
                }
                else if (filled == buffer.Length)
                {
                    // One event longer than the buffer: grow rather than misparse it.
                    var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, filled).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
            }
            lock (itl) itl.AddRange(gaps);
            // A stream that ends without [DONE] was cut off (upstream died, proxy aborted): an error, not a short answer.
            return done
                ? new RequestOutcome(true, Ms(start), ttft, null)
                : new RequestOutcome(false, Ms(start), ttft, "stream ended without [DONE]");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    internal static bool HasContent(ReadOnlySpan<byte> payload)
    {
        var at = payload.IndexOf(ContentKey);
        return at >= 0 && at + ContentKey.Length < payload.Length && payload[at + ContentKey.Length] != (byte)'"';
    }

    private static double Ms(long start) => Stopwatch.GetElapsedTime(start).TotalMilliseconds;

    private static string Flatten(Exception e)
    {
        var message = e.Message;
        for (var inner = e.InnerException; inner is not null; inner = inner.InnerException) message += ": " + inner.Message;
        return message.Length > 200 ? message[..200] : message;
    }
}
