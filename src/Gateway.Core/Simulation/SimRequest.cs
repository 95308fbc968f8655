using System.Text;
using System.Text.Json;

namespace Gateway.Simulation;

internal enum SimEndpoint { ChatCompletions, Completions, Embeddings }

/// <summary>One embeddings input: a deterministic seed for its vector and its token count.</summary>
internal readonly record struct EmbeddingInput(ulong Seed, int Tokens);

/// <summary>
/// The parts of a request body the simulator acts on. Parsed with JsonDocument: the simulator is not the gateway's hot path,
/// only the per-token streaming loop is.
/// </summary>
internal sealed class SimRequest
{
    public string? Model;
    public bool Stream;
    public bool IncludeUsage;
    public bool ContinuousUsage;
    public int? MaxTokens;
    public int PromptTokens;
    public List<EmbeddingInput>? Inputs;
    public bool Base64;
    public int Dimensions = 8;

    /// <summary>Parses <paramref name="body"/>; returns a vLLM-style 400 message, or null on success.</summary>
    public static string? TryParse(SimEndpoint endpoint, byte[] body, out SimRequest request)
    {
        request = new SimRequest();
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body);
        }
        catch (JsonException e)
        {
            return $"Invalid JSON body: {e.Message}";
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return "The request body must be a JSON object.";
            return request.Read(endpoint, root);
        }
    }

    private string? Read(SimEndpoint endpoint, JsonElement root)
    {
        if (root.TryGetProperty("model", out var model) && model.ValueKind != JsonValueKind.Null)
        {
            if (model.ValueKind != JsonValueKind.String) return "model: Input should be a valid string";
            Model = model.GetString();
        }
        Stream = root.TryGetProperty("stream", out var stream) && stream.ValueKind == JsonValueKind.True;
        if (root.TryGetProperty("stream_options", out var options) && IsTruthy(options))
        {
            // vLLM's model validator: `if data.get("stream_options") and not data.get("stream")`.
            if (!Stream) return "Stream options can only be defined when `stream=True`.";
            if (options.ValueKind == JsonValueKind.Object)
            {
                IncludeUsage = options.TryGetProperty("include_usage", out var u) && u.ValueKind == JsonValueKind.True;
                ContinuousUsage = options.TryGetProperty("continuous_usage_stats", out var c) && c.ValueKind == JsonValueKind.True;
            }
        }
        switch (endpoint)
        {
            case SimEndpoint.ChatCompletions:
                // vLLM: max_tokens = max_completion_tokens or max_tokens.
                if (ReadMaxTokens(root, "max_completion_tokens") is { } e1) return e1;
                if (MaxTokens is null && ReadMaxTokens(root, "max_tokens") is { } e2) return e2;
                if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array)
                    return "messages: Field required";
                PromptTokens = ToTokens(MessagesLength(messages));
                return null;
            case SimEndpoint.Completions:
                if (ReadMaxTokens(root, "max_tokens") is { } e3) return e3;
                if (!root.TryGetProperty("prompt", out var prompt)) return "prompt: Field required";
                return ReadPrompt(prompt, out PromptTokens);
            default:
                return ReadEmbeddings(root);
        }
    }

    private string? ReadMaxTokens(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var n)) return $"{name}: Input should be a valid integer";
        if (n < 1) return $"max_tokens must be at least 1, got {n}.";
        MaxTokens = n;
        return null;
    }

    private static int MessagesLength(JsonElement messages)
    {
        var length = 0;
        foreach (var message in messages.EnumerateArray())
        {
            if (message.ValueKind != JsonValueKind.Object || !message.TryGetProperty("content", out var content)) continue;
            if (content.ValueKind == JsonValueKind.String) length += Utf8Length(content);
            else if (content.ValueKind == JsonValueKind.Array)
                foreach (var part in content.EnumerateArray())
                    if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String)
                        length += Utf8Length(text);
        }
        return length;
    }

    /// <summary>prompt: string | string[] | int[] | int[][] (token ids count one each).</summary>
    private static string? ReadPrompt(JsonElement prompt, out int tokens)
    {
        tokens = 0;
        switch (prompt.ValueKind)
        {
            case JsonValueKind.String:
                tokens = ToTokens(Utf8Length(prompt));
                return null;
            case JsonValueKind.Array when prompt.GetArrayLength() > 0:
                var textLength = 0;
                foreach (var item in prompt.EnumerateArray())
                {
                    if (item.ValueKind == JsonValueKind.String) textLength += Utf8Length(item);
                    else if (item.ValueKind == JsonValueKind.Number) tokens++;
                    else if (item.ValueKind == JsonValueKind.Array) tokens += item.GetArrayLength();
                    else return "prompt: Input should be a valid string or list of tokens";
                }
                tokens = Math.Max(1, tokens + textLength / 4);
                return null;
            default:
                return "prompt: Input should be a valid string or list of tokens";
        }
    }

    private string? ReadEmbeddings(JsonElement root)
    {
        if (root.TryGetProperty("encoding_format", out var format) && format.ValueKind != JsonValueKind.Null)
        {
            if (format.ValueEquals("base64")) Base64 = true;
            else if (!format.ValueEquals("float")) return "encoding_format: Input should be 'float' or 'base64'";
        }
        if (root.TryGetProperty("dimensions", out var dims) && dims.ValueKind != JsonValueKind.Null)
        {
            if (!dims.TryGetInt32(out Dimensions) || Dimensions < 1 || Dimensions > 8192)
                return "dimensions must be an integer between 1 and 8192.";
        }
        if (!root.TryGetProperty("input", out var input)) return "input: Field required";
        Inputs = [];
        switch (input.ValueKind)
        {
            case JsonValueKind.String:
                Inputs.Add(TextInput(input));
                break;
            case JsonValueKind.Array when input.GetArrayLength() > 0:
                var first = input[0].ValueKind;
                if (first == JsonValueKind.Number)
                {
                    // One prompt given as token ids.
                    if (TokenInput(input) is not { } single) return "input: Input should be a list of integers";
                    Inputs.Add(single);
                    break;
                }
                foreach (var item in input.EnumerateArray())
                {
                    if (item.ValueKind == JsonValueKind.String) Inputs.Add(TextInput(item));
                    else if (item.ValueKind == JsonValueKind.Array && TokenInput(item) is { } tokens) Inputs.Add(tokens);
                    else return "input: Input should be a string, a list of strings or a list of token lists";
                }
                break;
            default:
                return "input: Input should be a string, a list of strings or a list of token lists";
        }
        foreach (var i in Inputs) PromptTokens += i.Tokens;
        return null;
    }

    private static EmbeddingInput TextInput(JsonElement text)
    {
        var s = text.GetString()!;
        var hash = Fnv.Offset;
        foreach (var ch in s) hash = Fnv.Mix(hash, ch);
        return new EmbeddingInput(hash, ToTokens(Encoding.UTF8.GetByteCount(s)));
    }

    private static EmbeddingInput? TokenInput(JsonElement tokens)
    {
        var hash = Fnv.Mix(Fnv.Offset, 0x7f7f); // distinct from a text of the same code points
        var count = 0;
        foreach (var t in tokens.EnumerateArray())
        {
            if (!t.TryGetInt64(out var id)) return null;
            hash = Fnv.Mix(hash, (ulong)id);
            count++;
        }
        return count == 0 ? null : new EmbeddingInput(hash, count);
    }

    private static bool IsTruthy(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.False or JsonValueKind.Undefined => false,
        JsonValueKind.Object => e.EnumerateObject().Any(),
        JsonValueKind.Array => e.GetArrayLength() > 0,
        JsonValueKind.String => e.GetString()!.Length > 0,
        _ => true,
    };

    private static int Utf8Length(JsonElement s) => Encoding.UTF8.GetByteCount(s.GetString()!);

    /// <summary>A stand-in tokenizer: four UTF-8 bytes per token, at least one.</summary>
    internal static int ToTokens(int utf8Length) => Math.Max(1, utf8Length / 4);
}

internal static class Fnv
{
    public const ulong Offset = 14695981039346656037UL;
    public static ulong Mix(ulong hash, ulong value) => (hash ^ value) * 1099511628211UL;
}
