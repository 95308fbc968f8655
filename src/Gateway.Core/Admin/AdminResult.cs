using System.Text.Json;

namespace Gateway.Admin;

/// <summary>An endpoint's answer: a status and the body writer (null = 204 No Content).</summary>
internal readonly record struct AdminResult(int Status, Action<Utf8JsonWriter>? Body)
{
    public static AdminResult Ok(Action<Utf8JsonWriter> body) => new(200, body);
    public static AdminResult Created(Action<Utf8JsonWriter> body) => new(201, body);
    public static AdminResult NoContent => new(204, null);
}
