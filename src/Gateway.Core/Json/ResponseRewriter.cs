using System.Buffers;

namespace Gateway.Json;

/// <summary>Writes a response object with its top-level model replaced by the client's alias and, optionally, usage cut out.</summary>
public static class ResponseRewriter
{
    /// <summary>The most bytes <see cref="Write(ReadOnlySpan{byte}, in ResponseScan, ReadOnlySpan{byte}, bool, Span{byte})"/> can produce.</summary>
    public static int MaxLength(int jsonLength, int aliasLength) => jsonLength + aliasLength;

    public static void Write(ReadOnlySpan<byte> json, in ResponseScan scan, ReadOnlySpan<byte> aliasJson, bool stripUsage, IBufferWriter<byte> output)
    {
        var span = output.GetSpan(MaxLength(json.Length, aliasJson.Length));
        output.Advance(Write(json, scan, aliasJson, stripUsage, span));
    }

    /// <summary>Writes into <paramref name="output"/> (at least <see cref="MaxLength"/> bytes) and returns the bytes written.</summary>
    public static int Write(ReadOnlySpan<byte> json, in ResponseScan scan, ReadOnlySpan<byte> aliasJson, bool stripUsage, Span<byte> output)
    {
        int position = 0, written = 0;
        bool cutUsage = stripUsage && scan.UsageCutStart >= 0;
        // The model comes before usage in every vLLM object; handle either order anyway.
        if (cutUsage && scan.UsageCutStart < scan.ModelStart)
        {
            Copy(json[..scan.UsageCutStart], output, ref written);
            position = scan.UsageCutEnd;
            cutUsage = false;
        }
        if (scan.ModelStart >= 0)
        {
            Copy(json[position..scan.ModelStart], output, ref written);
            Copy(aliasJson, output, ref written);
            position = scan.ModelEnd;
        }
        if (cutUsage)
        {
            Copy(json[position..scan.UsageCutStart], output, ref written);
            position = scan.UsageCutEnd;
        }
        Copy(json[position..], output, ref written);
        return written;
    }

    private static void Copy(ReadOnlySpan<byte> source, Span<byte> output, ref int written)
    {
        source.CopyTo(output[written..]);
        written += source.Length;
    }
}
