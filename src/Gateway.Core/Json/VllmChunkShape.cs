using System.Text.Json;

namespace Gateway.Json;

/// <summary>
/// The scan of a stream's token chunk when its bytes after the cached prefix have vLLM's exact shape: an opener, one string (the
/// token), a fixed middle and a usage tail, e.g.
/// <code>,"choices":[{"index":0,"delta":{"content":"␣word"},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":57,"total_tokens":58,"completion_tokens":1}}</code>
/// Every byte is checked: the fixed parts by comparison, the token by <see cref="Utf8JsonReader"/> itself (the reader that the full
/// scan would use, on the same string), the numbers by JSON's integer grammar. Bytes matching this shape are one valid object whose
/// scan is fully determined, so the result is the full scan's; any other chunk (a role or finish chunk, another server's order,
/// whitespace, a broken chunk) returns false and is read by the reader.
/// </summary>
internal static class VllmChunkShape
{
    private static ReadOnlySpan<byte> ChatOpener => ",\"choices\":[{\"index\":0,\"delta\":{\"content\":"u8;
    private static ReadOnlySpan<byte> ChatMiddle => "},\"logprobs\":null,\"finish_reason\":null}]"u8;
    private static ReadOnlySpan<byte> TextOpener => ",\"choices\":[{\"index\":0,\"text\":"u8;
    private static ReadOnlySpan<byte> TextMiddle => ",\"logprobs\":null,\"finish_reason\":null,\"stop_reason\":null}]"u8;
    private static ReadOnlySpan<byte> EmptyChoices => ",\"choices\":[]"u8;
    private static ReadOnlySpan<byte> PromptName => ",\"usage\":{\"prompt_tokens\":"u8;
    private static ReadOnlySpan<byte> TotalName => ",\"total_tokens\":"u8;
    private static ReadOnlySpan<byte> CompletionName => ",\"completion_tokens\":"u8;

    /// <summary>
    /// Scans <paramref name="rest"/>, the chunk after a prefix of <paramref name="offset"/> bytes that ended with the top-level model
    /// value and found no usage and no content (<paramref name="scan"/> holds the model). True when the shape matched and
    /// <paramref name="scan"/> is complete.
    /// </summary>
    public static bool TryMatch(ReadOnlySpan<byte> rest, int offset, ref ResponseScan scan)
    {
        bool empty = false, content = false;
        int position;
        if (rest.StartsWith(EmptyChoices))
        {
            empty = true;
            position = EmptyChoices.Length;
        }
        else
        {
            bool chat = rest.StartsWith(ChatOpener);
            if (!chat && !rest.StartsWith(TextOpener)) return false;
            position = chat ? ChatOpener.Length : TextOpener.Length;
            if (!TryReadString(rest[position..], out int length, out content)) return false;
            position += length;
            var middle = chat ? ChatMiddle : TextMiddle;
            if (!rest[position..].StartsWith(middle)) return false;
            position += middle.Length;
        }

        var tail = rest[position..];
        if (tail.Length == 1 && tail[0] == (byte)'}')
        {
            if (empty) return false; // no usage and no choices: rare enough for the reader
        }
        else
        {
            // The usage tail, to the object's end: ,"usage":{"prompt_tokens":P,"total_tokens":T,"completion_tokens":C}}
            int at = 0;
            if (!Expect(tail, ref at, PromptName) || !TryReadInteger(tail, ref at, out long prompt)) return false;
            if (!Expect(tail, ref at, TotalName) || !TryReadInteger(tail, ref at, out _)) return false;
            if (!Expect(tail, ref at, CompletionName) || !TryReadInteger(tail, ref at, out long completion)) return false;
            if (at != tail.Length - 2 || tail[at] != (byte)'}' || tail[at + 1] != (byte)'}') return false;
            if (!ResponseScanner.IsTokenCount(prompt) || !ResponseScanner.IsTokenCount(completion)) return false; // the reader's path drops them
            scan.HasUsage = true;
            scan.PromptTokens = prompt;
            scan.CompletionTokens = completion;
            scan.UsageCutStart = offset + position; // the comma right after choices' ']': the full scan's end of the previous value
            scan.UsageCutEnd = offset + position + at + 1;
        }
        scan.ChoicesEmpty = empty;
        scan.HasContent = content;
        return true;
    }

    /// <summary>The JSON string at the start of <paramref name="json"/>, as the reader reads it (escapes, control characters).</summary>
    private static bool TryReadString(ReadOnlySpan<byte> json, out int length, out bool nonEmpty)
    {
        length = 0;
        nonEmpty = false;
        if (json.IsEmpty || json[0] != (byte)'"') return false;
        try
        {
            // A string is a whole JSON value on its own; the reader stops at its closing quote and does not look further.
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.String) return false;
            length = (int)reader.BytesConsumed;
            nonEmpty = reader.ValueSpan.Length > 0;
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static bool Expect(ReadOnlySpan<byte> json, ref int at, ReadOnlySpan<byte> bytes)
    {
        if (!json[at..].StartsWith(bytes)) return false;
        at += bytes.Length;
        return true;
    }

    /// <summary>A JSON integer without sign, fraction or exponent (0, or 1-9 then digits), up to 18 digits so it fits a long.</summary>
    private static bool TryReadInteger(ReadOnlySpan<byte> json, ref int at, out long value)
    {
        value = 0;
        int start = at;
        while (at < json.Length && (uint)(json[at] - '0') <= 9 && at - start < 19)
        {
            value = value * 10 + (json[at] - '0');
            at++;
        }
        // The caller then expects ',' or '}': a fraction or an exponent fails there.
        int digits = at - start;
        return digits is > 0 and <= 18 && (digits == 1 || json[start] != (byte)'0');
    }
}
