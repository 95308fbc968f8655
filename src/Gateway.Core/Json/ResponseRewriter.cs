using System.Buffers;

namespace Gateway.Json;

/// <summary>Writes a response object with its top-level model replaced by the client's alias and, optionally, usage cut out.</summary>
public static class ResponseRewriter
{
    public static void Write(ReadOnlySpan<byte> json, in ResponseScan scan, ReadOnlySpan<byte> aliasJson, bool stripUsage, IBufferWriter<byte> output)
    {
        int position = 0;
        bool cutUsage = stripUsage && scan.UsageCutStart >= 0;
        // The model comes before usage in every vLLM object; handle either order anyway.
        if (cutUsage && scan.UsageCutStart < scan.ModelStart)
        {
            output.Write(json[..scan.UsageCutStart]);
            position = scan.UsageCutEnd;
            cutUsage = false;
        }
        if (scan.ModelStart >= 0)
        {
            output.Write(json[position..scan.ModelStart]);
            output.Write(aliasJson);
            position = scan.ModelEnd;
        }
        if (cutUsage)
        {
            output.Write(json[position..scan.UsageCutStart]);
            position = scan.UsageCutEnd;
        }
        output.Write(json[position..]);
    }
}
