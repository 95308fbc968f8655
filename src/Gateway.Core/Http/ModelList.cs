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
            if (Lists(model, key)) WriteModel(w, model);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>
    /// <c>GET /v1/models/{model}</c> (the SDKs' models.retrieve): the list's entry for <paramref name="alias"/>, or false when the
    /// list would not show it (unknown, inactive, or not allowed for the key: a key learns nothing of models it cannot use).
    /// </summary>
    public static bool TryWriteOne(Snapshot snapshot, KeyEntry key, string alias, PooledBuffer output)
    {
        if (snapshot.FindModel(alias) is not { } model || !Lists(model, key)) return false;
        using var w = new Utf8JsonWriter(output);
        WriteModel(w, model);
        return true;
    }

    private static bool Lists(ModelEntry model, KeyEntry key) => model.Active && key.Allows(model.Alias);

    private static void WriteModel(Utf8JsonWriter w, ModelEntry model)
    {
        w.WriteStartObject();
        w.WriteString("id"u8, model.Alias);
        w.WriteString("object"u8, "model"u8);
        w.WriteNumber("created"u8, model.Created);
        w.WriteString("owned_by"u8, "inference-gateway"u8);
        w.WriteEndObject();
    }
}
