using System.Text.Json;
using System.Text.Unicode;
using Gateway.Http;

namespace Gateway.Json;

/// <summary>
/// One <see cref="Utf8JsonReader"/> pass over a request body. It validates the whole document (vLLM would reject what it cannot
/// parse, and we must not forward what we did not understand) but deserializes nothing: it records where the members the gateway
/// rewrites are, so <see cref="BodySplicer"/> can copy everything else byte for byte.
/// </summary>
public static class RequestScanner
{
    private static ReadOnlySpan<byte> Model => "model"u8;
    private static ReadOnlySpan<byte> StreamName => "stream"u8;
    private static ReadOnlySpan<byte> StreamOptions => "stream_options"u8;
    private static ReadOnlySpan<byte> Kwargs => "chat_template_kwargs"u8;
    private static ReadOnlySpan<byte> Messages => "messages"u8;
    private static ReadOnlySpan<byte> IncludeUsage => "include_usage"u8;
    private static ReadOnlySpan<byte> ContinuousUsage => "continuous_usage_stats"u8;
    private static ReadOnlySpan<byte> Role => "role"u8;
    private static ReadOnlySpan<byte> Content => "content"u8;
    private static ReadOnlySpan<byte> System => "system"u8;

    [Flags]
    private enum Seen { None = 0, Model = 1, Stream = 2, StreamOptions = 4, Kwargs = 8, Messages = 16 }

    /// <summary>Scans <paramref name="body"/> into <paramref name="scan"/>; returns the 400 to send when the body is not acceptable.</summary>
    public static OpenAiError? Scan(ReadOnlySpan<byte> body, RequestScan scan)
    {
        scan.Reset();
        if (body.IsEmpty) return OpenAiError.InvalidRequest("The request body is empty; expected a JSON object.");
        if (!Utf8.IsValid(body)) return OpenAiError.InvalidRequest("The request body is not valid UTF-8.");
        try
        {
            return ScanObject(body, scan);
        }
        catch (JsonException)
        {
            return OpenAiError.InvalidRequest("The request body is not valid JSON.");
        }
        catch (InvalidOperationException)
        {
            return OpenAiError.InvalidRequest("The request body is not valid JSON.");
        }
    }

    private static OpenAiError? ScanObject(ReadOnlySpan<byte> body, RequestScan scan)
    {
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 128 });
        if (!reader.Read()) return OpenAiError.InvalidRequest("The request body is empty; expected a JSON object.");
        if (reader.TokenType != JsonTokenType.StartObject) return OpenAiError.InvalidRequest("The request body must be a JSON object.");

        var seen = Seen.None;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            RecordName(ref reader, scan);
            Seen member = Seen.None;
            if (reader.ValueTextEquals(Model)) member = Seen.Model;
            else if (reader.ValueTextEquals(StreamName)) member = Seen.Stream;
            else if (reader.ValueTextEquals(StreamOptions)) member = Seen.StreamOptions;
            else if (reader.ValueTextEquals(Kwargs)) member = Seen.Kwargs;
            else if (reader.ValueTextEquals(Messages)) member = Seen.Messages;

            if (member != Seen.None)
            {
                // JSON parsers disagree on duplicates (first wins, last wins); refusing them means vLLM sees what we saw.
                if ((seen & member) != 0) return OpenAiError.InvalidRequest($"Duplicate key '{NameOf(member)}' in the request body.", NameOf(member));
                seen |= member;
            }
            reader.Read();
            var error = member switch
            {
                Seen.Model => ReadModel(ref reader, scan),
                Seen.Stream => ReadStream(ref reader, scan),
                Seen.StreamOptions => ReadStreamOptions(ref reader, scan),
                Seen.Kwargs => ReadKwargs(ref reader, scan),
                Seen.Messages => ReadMessages(ref reader, scan),
                _ => Skip(ref reader),
            };
            if (error is not null) return error;
        }
        if (reader.TokenType != JsonTokenType.EndObject) throw new JsonException();
        scan.ObjectEnd = (int)reader.TokenStartIndex;
        if (reader.Read()) throw new JsonException(); // trailing content after the object
        if ((seen & Seen.Model) == 0) return OpenAiError.InvalidRequest("The 'model' field is required.", "model");
        return null;
    }

    private static string NameOf(Seen member) => member switch
    {
        Seen.Model => "model", Seen.Stream => "stream", Seen.StreamOptions => "stream_options",
        Seen.Kwargs => "chat_template_kwargs", _ => "messages",
    };

    private static void RecordName(ref Utf8JsonReader reader, RequestScan scan)
    {
        if (!reader.ValueIsEscaped)
        {
            scan.AddName((int)reader.TokenStartIndex + 1, reader.ValueSpan.Length);
            return;
        }
        var dest = scan.AddEscapedName(reader.ValueSpan.Length);
        scan.CommitEscapedName(reader.CopyString(dest));
    }

    private static OpenAiError? Skip(ref Utf8JsonReader reader)
    {
        reader.Skip();
        return null;
    }

    private static OpenAiError? ReadModel(ref Utf8JsonReader reader, RequestScan scan)
    {
        if (reader.TokenType != JsonTokenType.String) return OpenAiError.InvalidRequest("The 'model' field must be a string.", "model");
        if (reader.ValueSpan.IsEmpty) return OpenAiError.InvalidRequest("The 'model' field must not be empty.", "model"); // as good as missing
        scan.ModelTokenStart = (int)reader.TokenStartIndex;
        scan.ModelTokenEnd = (int)reader.BytesConsumed;
        return null;
    }

    private static OpenAiError? ReadStream(ref Utf8JsonReader reader, RequestScan scan)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.True: scan.Stream = true; return null;
            case JsonTokenType.False or JsonTokenType.Null: scan.Stream = false; return null;
            default:
                reader.Skip();
                return OpenAiError.InvalidRequest("The 'stream' field must be a boolean.", "stream");
        }
    }

    private static OpenAiError? ReadStreamOptions(ref Utf8JsonReader reader, RequestScan scan)
    {
        scan.StreamOptionsStart = (int)reader.TokenStartIndex;
        if (reader.TokenType == JsonTokenType.Null)
        {
            scan.StreamOptionsEnd = (int)reader.BytesConsumed;
            return null;
        }
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return OpenAiError.InvalidRequest("The 'stream_options' field must be an object.", "stream_options");
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            bool include = reader.ValueTextEquals(IncludeUsage), continuous = !include && reader.ValueTextEquals(ContinuousUsage);
            reader.Read();
            if (include || continuous)
            {
                if (reader.TokenType is not (JsonTokenType.True or JsonTokenType.False or JsonTokenType.Null))
                    return OpenAiError.InvalidRequest($"'stream_options.{(include ? "include_usage" : "continuous_usage_stats")}' must be a boolean.", "stream_options");
                if (include) scan.ClientIncludeUsage = reader.TokenType == JsonTokenType.True;
                else scan.ClientContinuousUsage = reader.TokenType == JsonTokenType.True;
            }
            else reader.Skip();
        }
        scan.StreamOptionsEnd = (int)reader.BytesConsumed;
        return null;
    }

    private static OpenAiError? ReadKwargs(ref Utf8JsonReader reader, RequestScan scan)
    {
        scan.KwargsStart = (int)reader.TokenStartIndex;
        scan.KwargsIsObject = reader.TokenType == JsonTokenType.StartObject;
        if (!scan.KwargsIsObject && reader.TokenType != JsonTokenType.Null)
        {
            reader.Skip();
            return OpenAiError.InvalidRequest("The 'chat_template_kwargs' field must be an object.", "chat_template_kwargs");
        }
        reader.Skip();
        scan.KwargsEnd = (int)reader.BytesConsumed;
        return null;
    }

    // Reads whether the first message is a system message, and where its content is, still within the single pass over the body.
    // Only the first counts: the prefix leads the conversation, so a system message further down gets a new one before it.
    private static OpenAiError? ReadMessages(ref Utf8JsonReader reader, RequestScan scan)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            reader.Skip();
            return null; // completions and embeddings have no messages; vLLM validates the type for chat
        }
        scan.MessagesStart = (int)reader.TokenStartIndex;
        scan.MessagesEmpty = true;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            bool first = scan.MessagesEmpty;
            scan.MessagesEmpty = false;
            if (!first || reader.TokenType != JsonTokenType.StartObject)
            {
                reader.Skip();
                continue;
            }
            bool isSystem = false;
            int contentStart = -1, contentEnd = -1;
            var kind = SystemContentKind.None;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals(Role))
                {
                    reader.Read();
                    isSystem = reader.TokenType == JsonTokenType.String && reader.ValueTextEquals(System);
                    reader.Skip();
                }
                else if (reader.ValueTextEquals(Content))
                {
                    reader.Read();
                    contentStart = (int)reader.TokenStartIndex;
                    kind = reader.TokenType switch
                    {
                        JsonTokenType.String => SystemContentKind.String,
                        JsonTokenType.StartArray => SystemContentKind.Array,
                        _ => SystemContentKind.Other,
                    };
                    reader.Skip();
                    contentEnd = (int)reader.BytesConsumed;
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            if (isSystem && contentStart >= 0)
            {
                scan.SystemContentStart = contentStart;
                scan.SystemContentEnd = contentEnd;
                scan.SystemContentKind = kind;
            }
        }
        return null;
    }

    /// <summary>
    /// Copies the unescaped model name into <paramref name="destination"/>; returns the byte count, -1 if it does not fit, or
    /// <see cref="NotText"/> when its escapes make no text (a lone surrogate such as <c>\ud800</c>: valid JSON, but no string).
    /// </summary>
    public static int CopyModelName(ReadOnlySpan<byte> body, RequestScan scan, Span<byte> destination)
    {
        var reader = new Utf8JsonReader(body[scan.ModelTokenStart..scan.ModelTokenEnd]);
        reader.Read();
        if (!reader.ValueIsEscaped)
        {
            var raw = reader.ValueSpan;
            if (raw.Length > destination.Length) return -1;
            raw.CopyTo(destination);
            return raw.Length;
        }
        if (reader.ValueSpan.Length > destination.Length) return -1;
        try { return reader.CopyString(destination); }
        catch (InvalidOperationException) { return NotText; }
    }

    public const int NotText = -2;
}
