using System.Text.Json.Serialization;

namespace Gateway.Storage;

/// <summary>The embedded store's whole state, as written to <c>state.json</c>.</summary>
public sealed record EmbeddedStateFile(int Format, IReadOnlyList<StoredModel> Models, IReadOnlyList<StoredKey> Keys)
{
    public const int CurrentFormat = 1;
}

// Strict reading: a missing required member or a null where the record says non-null is a corrupt file, not a default value.
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    WriteIndented = true,
    RespectNullableAnnotations = true,
    RespectRequiredConstructorParameters = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip)]
[JsonSerializable(typeof(EmbeddedStateFile))]
internal sealed partial class EmbeddedStateJson : JsonSerializerContext;
