using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Tomlyn.Model;

namespace Gateway.Config;

/// <summary>Turns TOML values (inline tables of default params) into the JSON text that gets spliced into requests.</summary>
public static class TomlJson
{
    public static string ToJson(object? value)
    {
        var buffer = new ArrayBufferWriter<byte>(64);
        using (var writer = new Utf8JsonWriter(buffer)) Write(writer, value);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void Write(Utf8JsonWriter w, object? value)
    {
        switch (value)
        {
            case null: w.WriteNullValue(); break;
            case string s: w.WriteStringValue(s); break;
            case bool b: w.WriteBooleanValue(b); break;
            case long l: w.WriteNumberValue(l); break;
            case int i: w.WriteNumberValue(i); break;
            case double d: w.WriteNumberValue(d); break;
            case float f: w.WriteNumberValue(f); break;
            case TomlTable t:
                w.WriteStartObject();
                foreach (var (k, v) in t) { w.WritePropertyName(k); Write(w, v); }
                w.WriteEndObject();
                break;
            case TomlTableArray ta:
                w.WriteStartArray();
                foreach (var t in ta) Write(w, t);
                w.WriteEndArray();
                break;
            case TomlArray a:
                w.WriteStartArray();
                foreach (var v in a) Write(w, v);
                w.WriteEndArray();
                break;
            case IFormattable other: w.WriteStringValue(other.ToString(null, CultureInfo.InvariantCulture)); break;
            default: w.WriteStringValue(value.ToString()); break;
        }
    }
}
