using System.Net.Http.Headers;
using System.Text.Json;

namespace Gateway.Load;

/// <summary>An OpenAI-compatible endpoint plus what to send it. The request body is encoded once; every request reuses the bytes.</summary>
internal sealed class Target
{
    public string Name { get; }
    public Uri ChatUrl { get; }
    public string? Key { get; }
    public bool Stream { get; }
    private readonly byte[] _body;

    public Target(string name, string baseUrl, string model, string? key, bool stream, int? maxTokens, string prompt)
    {
        Name = name;
        // Accept both "http://h:p" and "http://h:p/v1" as the base, like OpenAI SDKs do.
        var trimmed = baseUrl.TrimEnd('/');
        if (trimmed.EndsWith("/v1", StringComparison.Ordinal)) trimmed = trimmed[..^3];
        ChatUrl = new Uri(trimmed + "/v1/chat/completions");
        Key = key;
        Stream = stream;
        _body = EncodeBody(model, stream, maxTokens, prompt);
    }

    public HttpRequestMessage CreateRequest()
    {
        var content = new ByteArrayContent(_body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        var request = new HttpRequestMessage(HttpMethod.Post, ChatUrl) { Content = content, Version = new Version(1, 1) };
        if (Key is { Length: > 0 }) request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + Key);
        return request;
    }

    internal static byte[] EncodeBody(string model, bool stream, int? maxTokens, string prompt)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("model", model);
            w.WriteStartArray("messages");
            w.WriteStartObject();
            w.WriteString("role", "user");
            w.WriteString("content", prompt);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteBoolean("stream", stream);
            if (maxTokens is { } m) w.WriteNumber("max_tokens", m);
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    public override string ToString() => $"{Name} {ChatUrl}";

}
