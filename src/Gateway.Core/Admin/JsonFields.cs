using System.Buffers;
using System.Text;
using System.Text.Json;
using Gateway.Config;
using Gateway.Storage;

namespace Gateway.Admin;

/// <summary>
/// A request body as a JSON object with typed, checked access to its members. <see cref="JsonDocument"/> (a Utf8JsonReader underneath)
/// rather than a serializer: every failure names the field (OpenAI's <c>param</c>), absent and <c>null</c> stay distinct, and nothing
/// needs reflection. Unknown fields are refused: a misspelt <c>rpm_limt</c> silently ignored would leave a key without its limit.
/// </summary>
internal sealed class JsonFields : IDisposable
{
    private readonly JsonDocument _document;
    private readonly Dictionary<string, JsonElement> _members = new(StringComparer.Ordinal);

    private JsonFields(JsonDocument document) => _document = document;

    /// <param name="body">Must outlive the result: the document reads from it.</param>
    public static JsonFields Parse(ReadOnlyMemory<byte> body)
    {
        // GetString on invalid UTF-8 would throw outside JsonException (a 500); refuse such a body up front.
        if (!System.Text.Unicode.Utf8.IsValid(body.Span)) throw AdminErrors.Validation(null, "The request body is not valid UTF-8.");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            // Where, not the parser's message: under Native AOT that is a resource key ("ExpectedStartOfPropertyNotFound, …").
            throw AdminErrors.Validation(null, e.LineNumber is { } line && e.BytePositionInLine is { } at
                ? $"The request body is not valid JSON (line {line + 1}, byte {at + 1})."
                : "The request body is not valid JSON.");
        }
        var fields = new JsonFields(document);
        try
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw AdminErrors.Validation(null, "The request body must be a JSON object.");
            RefuseLoneSurrogates(document.RootElement);
            foreach (var member in document.RootElement.EnumerateObject())
                if (!fields._members.TryAdd(member.Name, member.Value))
                    throw AdminErrors.Validation(member.Name, $"The field '{member.Name}' appears more than once.");
            return fields;
        }
        catch
        {
            fields.Dispose();
            throw;
        }
    }

    /// <summary>
    /// JSON may escape half a surrogate pair (<c>"\ud800"</c>), which is no text: reading such a name or string would throw outside
    /// JsonException (a 500). One walk at parse time refuses it, naming the field; admin bodies are small.
    /// </summary>
    private static void RefuseLoneSurrogates(JsonElement element, string? field = null)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var member in element.EnumerateObject())
                {
                    string name;
                    try { name = member.Name; }
                    catch (InvalidOperationException) { throw NotText(field); }
                    RefuseLoneSurrogates(member.Value, field ?? name);
                }
                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray()) RefuseLoneSurrogates(item, field);
                break;
            case JsonValueKind.String:
                try { _ = element.GetString(); }
                catch (InvalidOperationException) { throw NotText(field); }
                break;
        }

        static AdminException NotText(string? field) =>
            AdminErrors.Validation(field, $"{(field is null ? "A field name" : $"The field '{field}'")} escapes half a surrogate pair (\\ud800–\\udfff alone), which is not text.");
    }

    /// <summary>Refuses the first member (in body order) that is not one of <paramref name="allowed"/>.</summary>
    public void Allow(params ReadOnlySpan<string> allowed)
    {
        foreach (var member in _document.RootElement.EnumerateObject())
            if (!allowed.Contains(member.Name))
                throw AdminErrors.Validation(member.Name, $"Unknown field '{member.Name}'. Allowed fields: {string.Join(", ", allowed.ToArray())}.");
    }

    public bool IsEmpty => _members.Count == 0;

    public string? String(string name)
    {
        if (!_members.TryGetValue(name, out var e)) return null;
        return e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Wrong(name, "a string");
    }

    public string RequiredString(string name) =>
        String(name) is { } s ? s : throw AdminErrors.Validation(name, $"{name} is required");

    public bool? Bool(string name)
    {
        if (!_members.TryGetValue(name, out var e)) return null;
        return e.ValueKind is JsonValueKind.True or JsonValueKind.False ? e.GetBoolean() : throw Wrong(name, "true or false");
    }

    public int? Int(string name, int min, int max)
    {
        if (!_members.TryGetValue(name, out var e)) return null;
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out var n) || n < min || n > max)
            throw AdminErrors.Validation(name, $"{name} must be a whole number from {min} to {max}");
        return n;
    }

    /// <summary>Absent → null (leave alone); JSON null → a <see cref="Set{T}"/> of null (clear); a number ≥ <paramref name="min"/> → set.</summary>
    public Set<long?>? NullableLong(string name, long min)
    {
        if (!_members.TryGetValue(name, out var e)) return null;
        if (e.ValueKind == JsonValueKind.Null) return new Set<long?>(null);
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out var n) || n < min)
            throw AdminErrors.Validation(name, $"{name} must be a whole number of at least {min}, or null");
        return new Set<long?>(n);
    }

    /// <summary>RFC 3339 with an offset, or null to clear.</summary>
    public Set<DateTimeOffset?>? NullableTimestamp(string name)
    {
        if (!_members.TryGetValue(name, out var e)) return null;
        if (e.ValueKind == JsonValueKind.Null) return new Set<DateTimeOffset?>(null);
        if (e.ValueKind != JsonValueKind.String || !Rfc3339.TryParse(e.GetString(), out var at))
            throw AdminErrors.Validation(name, $"{name} must be an RFC 3339 timestamp with an offset (e.g. 2026-12-31T23:59:59Z), or null");
        return new Set<DateTimeOffset?>(at);
    }

    public IReadOnlyList<string>? StringArray(string name)
    {
        if (!_members.TryGetValue(name, out var e)) return null;
        if (e.ValueKind != JsonValueKind.Array) throw Wrong(name, "an array of strings");
        var result = new List<string>(e.GetArrayLength());
        foreach (var item in e.EnumerateArray())
            result.Add(item.ValueKind == JsonValueKind.String ? item.GetString()! : throw Wrong(name, "an array of strings"));
        return result;
    }

    /// <summary>A member that must be a JSON object; returned as the element for the caller's own checks.</summary>
    public JsonElement? Object(string name)
    {
        if (!_members.TryGetValue(name, out var e)) return null;
        return e.ValueKind == JsonValueKind.Object ? e : throw Wrong(name, "a JSON object");
    }

    /// <summary>The element as compact JSON text (both stores then hold the same text, whatever the client's whitespace).</summary>
    public static string Compact(JsonElement element)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer)) element.WriteTo(writer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static AdminException Wrong(string name, string expected) => AdminErrors.Validation(name, $"{name} must be {expected}");

    public void Dispose() => _document.Dispose();
}
