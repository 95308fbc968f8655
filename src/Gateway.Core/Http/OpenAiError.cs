using System.Buffers;
using System.Text.Json;

namespace Gateway.Http;

/// <summary>One OpenAI-shaped error: <c>{"error":{"message","type","param","code"}}</c>.</summary>
public readonly record struct OpenAiError(int Status, string Type, string Code, string Message, string? Param = null)
{
    public static OpenAiError InvalidRequest(string message, string? param = null) =>
        new(400, "invalid_request_error", "invalid_request", message, param);
    public static OpenAiError InvalidApiKey(string message) => new(401, "authentication_error", "invalid_api_key", message);
    public static OpenAiError ModelNotAllowed(string model) =>
        new(403, "permission_error", "model_not_allowed", $"This API key is not allowed to use the model '{model}'.", "model");
    public static OpenAiError ModelNotFound(string model) =>
        new(404, "invalid_request_error", "model_not_found", $"The model '{model}' does not exist.", "model");
    public static OpenAiError NotFound(string path) =>
        new(404, "invalid_request_error", "not_found", path.Length == 0 ? "Unknown route: the request names no path (e.g. OPTIONS *)." : $"Unknown route: {path}.");
    public static OpenAiError MethodNotAllowed(string method, string path) =>
        new(405, "invalid_request_error", "method_not_allowed", $"Method {method} is not allowed on {path}.");
    public static OpenAiError TooLarge(long limit) =>
        new(413, "invalid_request_error", "request_too_large", $"The request body exceeds the limit of {limit} bytes.");
    public static OpenAiError UnsupportedMediaType(string contentType) =>
        new(415, "invalid_request_error", "unsupported_media_type", $"Content-Type must be application/json, not '{contentType}'.");
    public static OpenAiError NoHealthyBackend(string model) =>
        new(503, "service_unavailable", "no_healthy_backend", $"No healthy backend is available for the model '{model}'.");
    public static OpenAiError BackendError(string message) => new(502, "upstream_error", "backend_error", message);
    public static OpenAiError BackendTimeout(string message) => new(504, "upstream_error", "backend_timeout", message);

    public void WriteTo(IBufferWriter<byte> output)
    {
        using var writer = new Utf8JsonWriter(output, Gateway.Json.JsonText.Relaxed);
        writer.WriteStartObject();
        WriteInner(writer);
        writer.WriteEndObject();
    }

    /// <summary>Writes the <c>"error":{...}</c> member into an object already open.</summary>
    public void WriteInner(Utf8JsonWriter writer)
    {
        writer.WriteStartObject(ErrorNames.Error);
        writer.WriteString(ErrorNames.Message, Message);
        writer.WriteString(ErrorNames.Type, Type);
        if (Param is null) writer.WriteNull(ErrorNames.Param); else writer.WriteString(ErrorNames.Param, Param);
        writer.WriteString(ErrorNames.Code, Code);
        writer.WriteEndObject();
    }

    public byte[] ToBytes()
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        WriteTo(buffer);
        return buffer.WrittenSpan.ToArray();
    }
}

internal static class ErrorNames
{
    public static readonly JsonEncodedText Error = JsonEncodedText.Encode("error");
    public static readonly JsonEncodedText Message = JsonEncodedText.Encode("message");
    public static readonly JsonEncodedText Type = JsonEncodedText.Encode("type");
    public static readonly JsonEncodedText Param = JsonEncodedText.Encode("param");
    public static readonly JsonEncodedText Code = JsonEncodedText.Encode("code");
}
