using System.Buffers;
using System.Buffers.Binary;
using System.Text.Json;
using Gateway.Http;
using Gateway.Json;

namespace Gateway.Simulation;

/// <summary>/v1/embeddings in vLLM's shape: deterministic, L2-normalised vectors derived from each input.</summary>
internal static class EmbeddingResponder
{
    public static async Task WriteAsync(Exchange exchange, SimRequest request, string model)
    {
        var inputs = request.Inputs!;
        var dims = request.Dimensions;
        var vector = new float[dims];
        var raw = request.Base64 ? ArrayPool<byte>.Shared.Rent(dims * 4) : null;
        using var buffer = new PooledBuffer(256 + inputs.Count * dims * 14);
        using (var w = new Utf8JsonWriter(buffer, CompletionResponder.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("id", "embd-" + Guid.NewGuid().ToString("N"));
            w.WriteString("object", "list");
            w.WriteNumber("created", DateTimeOffset.UtcNow.ToUnixTimeSeconds());
            w.WriteString("model", model);
            w.WriteStartArray("data");
            for (var i = 0; i < inputs.Count; i++)
            {
                Fill(vector, inputs[i].Seed);
                w.WriteStartObject();
                w.WriteNumber("index", i);
                w.WriteString("object", "embedding");
                if (raw is not null)
                {
                    // OpenAI/vLLM base64: the little-endian float32 array.
                    for (var d = 0; d < dims; d++) BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(d * 4), vector[d]);
                    w.WriteBase64String("embedding", raw.AsSpan(0, dims * 4));
                }
                else
                {
                    w.WriteStartArray("embedding");
                    foreach (var v in vector) w.WriteNumberValue(v);
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("usage");
            w.WriteNumber("prompt_tokens", request.PromptTokens);
            w.WriteNumber("total_tokens", request.PromptTokens);
            w.WriteNumber("completion_tokens", 0);
            w.WriteNull("prompt_tokens_details");
            w.WriteEndObject();
            w.WriteEndObject();
        }
        if (raw is not null) ArrayPool<byte>.Shared.Return(raw);
        await exchange.WriteBodyAsync(200, "application/json", buffer.WrittenMemory).ConfigureAwait(false);
    }

    /// <summary>SplitMix64 from the input's hash, mapped to [-1, 1) and normalised to unit length.</summary>
    internal static void Fill(Span<float> vector, ulong seed)
    {
        var state = seed;
        double norm = 0;
        for (var d = 0; d < vector.Length; d++)
        {
            state += 0x9E3779B97F4A7C15UL;
            var z = state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            var v = (float)((z >> 11) * (1.0 / (1UL << 53)) * 2 - 1);
            vector[d] = v;
            norm += (double)v * v;
        }
        var scale = norm > 0 ? (float)(1 / Math.Sqrt(norm)) : 0f;
        for (var d = 0; d < vector.Length; d++) vector[d] *= scale;
    }
}
