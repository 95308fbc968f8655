using System.Text.Json;
using Gateway.Json;
using Gateway.Routing;

namespace Gateway.Http;

/// <summary>The seed's <c>GET /v1/models</c> body: <c>{"object":"list","data":[{"id","object":"model","created","owned_by"}]}</c>.</summary>
internal static class ModelList
{
    public static void Write(Snapshot snapshot, KeyEntry key, PooledBuffer output)
    {
        using var w = new Utf8JsonWriter(output);
        w.WriteStartObject();
        w.WriteString("object"u8, "list"u8);
        w.WriteStartArray("data"u8);
        foreach (var model in snapshot.Models)
        {
            if (!model.Active || !key.Allows(model.Alias)) continue;
            w.WriteStartObject();
            w.WriteString("id"u8, model.Alias);
            w.WriteString("object"u8, "model"u8);
            w.WriteNumber("created"u8, model.Created);
            w.WriteString("owned_by"u8, "inference-gateway"u8);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
