using System.Text.Encodings.Web;
using System.Text.Json;

namespace Gateway.Json;

/// <summary>Writer options for every JSON the gateway composes itself (errors, spliced aliases and prefixes, simulator bodies).</summary>
public static class JsonText
{
    /// <summary>Readable text ("terse", café, 'model') instead of \u0022 escapes; still valid JSON, served as application/json only.</summary>
    public static readonly JsonWriterOptions Relaxed = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
