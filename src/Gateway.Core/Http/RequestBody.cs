using System.IO.Pipelines;
using Gateway.Json;

namespace Gateway.Http;

/// <summary>Reading a JSON request body, shared by the proxy routes and the admin API: the media type check and a bounded read.</summary>
public static class RequestBody
{
    /// <summary>
    /// application/json or application/*+json; no Content-Type at all is taken as JSON (a client that sends none). curl -d alone sends
    /// application/x-www-form-urlencoded, which is refused: it needs -H 'Content-Type: application/json', as OpenAI's API does.
    /// </summary>
    public static OpenAiError? CheckJsonContentType(Exchange exchange)
    {
        var contentType = exchange.RequestHeaders.ContentType;
        if (contentType.Count == 0 || contentType[0] is not { Length: > 0 } value) return null;
        var media = value.AsSpan();
        int semicolon = media.IndexOf(';');
        if (semicolon >= 0) media = media[..semicolon];
        media = media.Trim();
        if (media.Equals("application/json", StringComparison.OrdinalIgnoreCase) ||
            (media.EndsWith("+json", StringComparison.OrdinalIgnoreCase) && media.StartsWith("application/", StringComparison.OrdinalIgnoreCase)))
            return null;
        return OpenAiError.UnsupportedMediaType(value);
    }

    /// <summary>Reads the whole body into <paramref name="body"/>; a 413 as soon as it exceeds <paramref name="maxBytes"/> (declared or counted).</summary>
    /// <remarks>
    /// A small body usually came in the same packet as the headers: it is taken with TryRead, with no async read (Kestrel's
    /// ReadAsync is an async method of its own, and the wait registered the request's abort token on every call).
    /// </remarks>
    public static ValueTask<OpenAiError?> ReadAsync(Exchange exchange, PooledBuffer body, long maxBytes)
    {
        var declared = exchange.RequestHeaders.ContentLength;
        if (declared > maxBytes) return new(OpenAiError.TooLarge(maxBytes));
        if (declared > 0) body.Ensure((int)declared.Value);
        var reader = exchange.RequestBody;
        while (reader.TryRead(out var read))
        {
            bool brought = !read.Buffer.IsEmpty; // asked before Take hands the buffer back
            if (Take(reader, read, body, maxBytes, out var error)) return new(error);
            if (!brought) break; // a cancelled read that brought nothing: wait for bytes instead of asking again
        }
        return ReadSlowAsync(exchange, reader, body, maxBytes);
    }

    private static async ValueTask<OpenAiError?> ReadSlowAsync(Exchange exchange, PipeReader reader, PooledBuffer body, long maxBytes)
    {
        while (true)
        {
            var read = await reader.ReadAsync(exchange.RequestAborted).ConfigureAwait(false);
            if (Take(reader, read, body, maxBytes, out var error)) return error;
        }
    }

    /// <summary>Copies what <paramref name="read"/> brought and consumes it; true when the body is done (whole, or too large).</summary>
    private static bool Take(PipeReader reader, in ReadResult read, PooledBuffer body, long maxBytes, out OpenAiError? error)
    {
        var buffer = read.Buffer;
        if (body.Length + buffer.Length > maxBytes)
        {
            reader.AdvanceTo(buffer.End);
            error = OpenAiError.TooLarge(maxBytes);
            return true;
        }
        foreach (var segment in buffer) body.Write(segment.Span);
        reader.AdvanceTo(buffer.End);
        error = null;
        return read.IsCompleted;
    }
}
