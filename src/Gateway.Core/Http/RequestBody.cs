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
    public static async ValueTask<OpenAiError?> ReadAsync(Exchange exchange, PooledBuffer body, long maxBytes)
    {
        var declared = exchange.RequestHeaders.ContentLength;
        if (declared > maxBytes) return OpenAiError.TooLarge(maxBytes);
        if (declared > 0) body.Ensure((int)declared.Value);
        var reader = exchange.RequestBody;
        while (true)
        {
            var read = await reader.ReadAsync(exchange.RequestAborted).ConfigureAwait(false);
            var buffer = read.Buffer;
            if (body.Length + buffer.Length > maxBytes)
            {
                reader.AdvanceTo(buffer.End);
                return OpenAiError.TooLarge(maxBytes);
            }
            foreach (var segment in buffer) body.Write(segment.Span);
            reader.AdvanceTo(buffer.End);
            if (read.IsCompleted) return null;
        }
    }
}
