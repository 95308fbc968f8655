using System.Text.Json;

namespace Gateway.Json;

/// <summary>What one pass over a response object (a whole JSON response or one SSE chunk) found. Offsets index that object.</summary>
public struct ResponseScan
{
    /// <summary>The top-level <c>model</c> string token, quotes included; -1 when absent.</summary>
    public int ModelStart, ModelEnd;
    /// <summary>From the end of the value before <c>usage</c> to the end of the usage value: removing it keeps valid JSON.</summary>
    public int UsageCutStart, UsageCutEnd;
    public bool HasUsage;
    public long PromptTokens, CompletionTokens;
    /// <summary><c>"choices":[]</c>: vLLM's final usage-only chunk.</summary>
    public bool ChoicesEmpty;
    /// <summary>A choice carries non-empty <c>delta.content</c> or <c>text</c>: a token the client sees.</summary>
    public bool HasContent;
}

/// <summary>Scans a vLLM response object without allocating: where the model is, the usage numbers, and whether tokens arrived.</summary>
public static class ResponseScanner
{
    /// <summary>Returns false when <paramref name="json"/> is not one JSON object; it is then passed on untouched.</summary>
    public static bool TryScan(ReadOnlySpan<byte> json, out ResponseScan scan) => TryScan(json, null, readChoices: true, out scan);

    /// <summary>
    /// <see cref="TryScan(ReadOnlySpan{byte}, out ResponseScan)"/> for a whole (non-stream) answer: the model and the usage only.
    /// <c>choices</c> is stepped over without looking inside (HasContent and ChoicesEmpty, a stream's questions, stay false).
    /// </summary>
    public static bool TryScanAnswer(ReadOnlySpan<byte> json, out ResponseScan scan) => TryScan(json, null, readChoices: false, out scan);

    /// <summary>
    /// The same scan, for one chunk of a stream: a chunk that starts with the prefix <paramref name="cache"/> remembers from an earlier
    /// chunk is read from the end of that prefix on; any other chunk is scanned in full and refreshes the cache.
    /// </summary>
    public static bool TryScan(ReadOnlySpan<byte> json, ChunkScanCache? cache, out ResponseScan scan) =>
        TryScan(json, cache, readChoices: true, out scan);

    private static bool TryScan(ReadOnlySpan<byte> json, ChunkScanCache? cache, bool readChoices, out ResponseScan scan)
    {
        scan = default;
        scan.ModelStart = scan.ModelEnd = scan.UsageCutStart = scan.UsageCutEnd = -1;
        try
        {
            Utf8JsonReader reader;
            // offset: where the reader's span starts in json (its TokenStartIndex and BytesConsumed count from there).
            int offset, previousValueEnd;
            bool first;
            if (cache is not null && cache.TryResume(json, ref scan, out var state))
            {
                // vLLM's token chunk, byte for byte after the prefix: matched without the reader walking every token. The prefix
                // must hold no usage and no content (the shape's usage, choices and content findings then replace the prefix's).
                if (scan.UsageCutStart < 0 && !scan.HasUsage && !scan.ChoicesEmpty && !scan.HasContent &&
                    VllmChunkShape.TryMatch(json[cache.PrefixLength..], cache.PrefixLength, ref scan))
                    return true;
                // Resume after the model value, as the full scan stood there: previousValueEnd is its end, first is false.
                offset = previousValueEnd = cache.PrefixLength;
                first = false;
                reader = new Utf8JsonReader(json[offset..], isFinalBlock: true, state);
            }
            else
            {
                offset = 0;
                first = true;
                reader = new Utf8JsonReader(json);
                if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return false;
                previousValueEnd = (int)reader.BytesConsumed;
            }
            bool usageWasFirst = false; // never true after the model value, so a resumed scan starts with it false too
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                // usage as the first member: cut from its name to the next name, so no comma is left dangling.
                if (usageWasFirst) { scan.UsageCutEnd = offset + (int)reader.TokenStartIndex; usageWasFirst = false; }
                int nameStart = offset + (int)reader.TokenStartIndex;
                if (reader.ValueTextEquals("model"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String && scan.ModelStart < 0)
                    {
                        // Only a full scan gets here (a resumed one has the model already), so offset is 0.
                        scan.ModelStart = (int)reader.TokenStartIndex;
                        scan.ModelEnd = (int)reader.BytesConsumed;
                        cache?.Remember(json[..scan.ModelEnd], reader.CurrentState, scan);
                    }
                    else reader.Skip();
                }
                else if (reader.ValueTextEquals("usage"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        scan.HasUsage = true;
                        ReadUsage(ref reader, ref scan);
                    }
                    else reader.Skip();
                    scan.UsageCutStart = first ? nameStart : previousValueEnd;
                    scan.UsageCutEnd = offset + (int)reader.BytesConsumed;
                    usageWasFirst = first;
                }
                else if (reader.ValueTextEquals("choices"u8))
                {
                    reader.Read();
                    if (readChoices && reader.TokenType == JsonTokenType.StartArray) ReadChoices(ref reader, ref scan);
                    else reader.Skip();
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
                previousValueEnd = offset + (int)reader.BytesConsumed;
                first = false;
            }
            return reader.TokenType == JsonTokenType.EndObject;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>
    /// A count a model server can report for one request. Others (negative, or past any context window) are a broken or hostile
    /// server's and are left out, as if absent: summed they wrapped into billions of charged tokens, locking a key out of its TPM,
    /// and a negative one made the metrics throw in the request's accounting.
    /// </summary>
    public static bool IsTokenCount(long n) => n is >= 0 and <= MaxTokenCount;

    public const long MaxTokenCount = 1_000_000_000;

    private static void ReadUsage(ref Utf8JsonReader reader, ref ResponseScan scan)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            bool prompt = reader.ValueTextEquals("prompt_tokens"u8);
            bool completion = !prompt && reader.ValueTextEquals("completion_tokens"u8);
            reader.Read();
            if (reader.TokenType == JsonTokenType.Number && (prompt || completion) && reader.TryGetInt64(out var n) && IsTokenCount(n))
            {
                if (prompt) scan.PromptTokens = n; else scan.CompletionTokens = n;
            }
            else reader.Skip();
        }
    }

    private static void ReadChoices(ref Utf8JsonReader reader, ref ResponseScan scan)
    {
        scan.ChoicesEmpty = true;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            scan.ChoicesEmpty = false;
            if (reader.TokenType != JsonTokenType.StartObject || scan.HasContent)
            {
                reader.Skip();
                continue;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("text"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String && reader.ValueSpan.Length > 0) scan.HasContent = true;
                    reader.Skip();
                }
                else if (reader.ValueTextEquals("delta"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartObject) { reader.Skip(); continue; }
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        bool content = reader.ValueTextEquals("content"u8) || reader.ValueTextEquals("reasoning_content"u8);
                        reader.Read();
                        if (content && reader.TokenType == JsonTokenType.String && reader.ValueSpan.Length > 0) scan.HasContent = true;
                        reader.Skip();
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
    }
}
