using System.Text.Json;
using Gateway.Routing;

namespace Gateway.Json;

/// <summary>
/// Builds the upstream body from the client's bytes plus small fragments at the places <see cref="RequestScanner"/> found. Bytes
/// outside those places are copied unchanged.
/// </summary>
public static class BodySplicer
{
    private static ReadOnlySpan<byte> UsageMembers => "\"include_usage\":true,\"continuous_usage_stats\":true"u8;
    private static ReadOnlySpan<byte> StreamOptionsMember => "\"stream_options\":{\"include_usage\":true,\"continuous_usage_stats\":true}"u8;
    private static ReadOnlySpan<byte> KwargsName => "\"chat_template_kwargs\":"u8;
    private static ReadOnlySpan<byte> EnableThinkingTrue => "\"enable_thinking\":true"u8;
    private static ReadOnlySpan<byte> EnableThinkingFalse => "\"enable_thinking\":false"u8;
    private static ReadOnlySpan<byte> SystemMessageStart => "{\"role\":\"system\",\"content\":\""u8;
    private static ReadOnlySpan<byte> TextPartStart => "{\"type\":\"text\",\"text\":\""u8;

    private enum EditKind : byte { Model, StreamOptions, Kwargs, SystemContent, NewSystemMessage }

    private readonly record struct Edit(int Start, int End, EditKind Kind);

    /// <param name="endpoint">Reasoning config and the system prompt prefix apply to chat completions only; stream_options to the
    /// two that stream (vLLM's embeddings do not).</param>
    public static void Splice(ReadOnlySpan<byte> body, RequestScan scan, ModelEntry model, Proxy.ProxyEndpoint endpoint, PooledBuffer output)
    {
        bool isChat = endpoint == Proxy.ProxyEndpoint.ChatCompletions;
        bool stream = scan.Stream && endpoint != Proxy.ProxyEndpoint.Embeddings;
        output.Clear();
        output.Ensure(body.Length + 256);

        Span<Edit> edits = stackalloc Edit[5];
        int count = 0;
        edits[count++] = new Edit(scan.ModelTokenStart, scan.ModelTokenEnd, EditKind.Model);
        if (stream && scan.StreamOptionsStart >= 0)
            edits[count++] = new Edit(scan.StreamOptionsStart, scan.StreamOptionsEnd, EditKind.StreamOptions);
        bool thinking = isChat && model.EnableThinking is not null;
        if (thinking && scan.KwargsStart >= 0)
            edits[count++] = new Edit(scan.KwargsStart, scan.KwargsEnd, EditKind.Kwargs);
        var prefix = isChat ? model.SystemPrefixEscaped : null;
        if (prefix is not null && scan.MessagesStart >= 0)
        {
            edits[count++] = scan.SystemContentStart >= 0
                ? new Edit(scan.SystemContentStart, scan.SystemContentEnd, EditKind.SystemContent)
                : new Edit(scan.MessagesStart + 1, scan.MessagesStart + 1, EditKind.NewSystemMessage);
        }
        var active = edits[..count];
        active.Sort(static (a, b) => a.Start.CompareTo(b.Start));

        int position = 0;
        foreach (var edit in active)
        {
            output.Write(body[position..edit.Start]);
            var original = body[edit.Start..edit.End];
            switch (edit.Kind)
            {
                case EditKind.Model: output.Write(model.ModelIdJson); break;
                case EditKind.StreamOptions: WriteMergedObject(output, original, UsageMembers, IsUsageOption); break;
                case EditKind.Kwargs: WriteMergedObject(output, original, Thinking(model), IsEnableThinking); break;
                case EditKind.SystemContent: WritePrefixedContent(output, original, scan.SystemContentKind, prefix!); break;
                case EditKind.NewSystemMessage:
                    output.Write(SystemMessageStart);
                    output.Write(prefix!);
                    output.Write("\"}"u8);
                    if (!scan.MessagesEmpty) output.Write((byte)',');
                    break;
            }
            position = edit.End;
        }

        // Members the client did not send go before the closing brace; the object always has "model", so a comma leads.
        output.Write(body[position..scan.ObjectEnd]);
        if (stream && scan.StreamOptionsStart < 0) { output.Write((byte)','); output.Write(StreamOptionsMember); }
        if (thinking && scan.KwargsStart < 0)
        {
            output.Write((byte)',');
            output.Write(KwargsName);
            output.Write((byte)'{');
            output.Write(Thinking(model));
            output.Write((byte)'}');
        }
        foreach (var param in model.DefaultParams)
        {
            if (scan.HasName(body, param.NameUtf8)) continue; // present, even as null: the client's choice wins
            output.Write((byte)',');
            output.Write(param.Member);
        }
        output.Write(body[scan.ObjectEnd..]);
    }

    private static ReadOnlySpan<byte> Thinking(ModelEntry model) => model.EnableThinking == true ? EnableThinkingTrue : EnableThinkingFalse;

    private static bool IsUsageOption(ref Utf8JsonReader r) =>
        r.ValueTextEquals("include_usage"u8) || r.ValueTextEquals("continuous_usage_stats"u8);

    private static bool IsEnableThinking(ref Utf8JsonReader r) => r.ValueTextEquals("enable_thinking"u8);

    private delegate bool MemberFilter(ref Utf8JsonReader reader);

    /// <summary>Writes <c>{client members except the replaced ones, ours}</c>; a null original becomes just ours.</summary>
    private static void WriteMergedObject(PooledBuffer output, ReadOnlySpan<byte> original, ReadOnlySpan<byte> ours, MemberFilter replaced)
    {
        output.Write((byte)'{');
        if (original.Length > 0 && original[0] == (byte)'{')
        {
            var reader = new Utf8JsonReader(original);
            reader.Read();
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                int start = (int)reader.TokenStartIndex;
                bool drop = replaced(ref reader);
                reader.Read();
                reader.Skip();
                if (drop) continue;
                output.Write(original[start..(int)reader.BytesConsumed]);
                output.Write((byte)',');
            }
        }
        output.Write(ours);
        output.Write((byte)'}');
    }

    private static void WritePrefixedContent(PooledBuffer output, ReadOnlySpan<byte> original, SystemContentKind kind, byte[] prefix)
    {
        switch (kind)
        {
            case SystemContentKind.String:
                output.Write((byte)'"');
                output.Write(prefix);
                output.Write("\\n"u8);
                output.Write(original[1..]);
                break;
            case SystemContentKind.Array:
                // Structured content stays as sent; the prefix becomes a text part in front of it.
                output.Write((byte)'[');
                output.Write(TextPartStart);
                output.Write(prefix);
                output.Write("\"}"u8);
                var rest = original[1..];
                if (rest.TrimStart(" \t\r\n"u8).Length > 0 && rest.TrimStart(" \t\r\n"u8)[0] != (byte)']') output.Write((byte)',');
                output.Write(rest);
                break;
            default:
                output.Write((byte)'"');
                output.Write(prefix);
                output.Write((byte)'"');
                break;
        }
    }
}
