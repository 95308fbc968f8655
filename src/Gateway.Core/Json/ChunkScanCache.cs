using System.Buffers;
using System.Text.Json;

namespace Gateway.Json;

/// <summary>
/// Per-stream memory of <see cref="ResponseScanner"/>: the bytes of the last fully scanned chunk up to the end of its top-level
/// <c>model</c> value, with the reader's state and the scan's findings at that point. vLLM repeats that prefix byte for byte in every
/// chunk of a stream (id, object, created, model), and identical bytes give an identical parse state, so a chunk that starts with them
/// is scanned from there on: exact, not a guess. Not thread-safe: one stream, one reader.
/// </summary>
public sealed class ChunkScanCache : IDisposable
{
    /// <summary>A longer prefix is not remembered: it is not vLLM's shape, and the buffer stays one small pooled array.</summary>
    internal const int MaxPrefix = 512;

    private byte[]? _prefix;
    private int _length;
    private JsonReaderState _state;
    private ResponseScan _scan;

    /// <summary>Length of the remembered prefix; 0 = nothing remembered.</summary>
    internal int PrefixLength => _length;

    /// <summary>
    /// True when <paramref name="json"/> starts with the remembered prefix: <paramref name="scan"/> is then what a full scan has found
    /// by the end of it, and <paramref name="state"/> is the reader's state there.
    /// </summary>
    internal bool TryResume(ReadOnlySpan<byte> json, ref ResponseScan scan, out JsonReaderState state)
    {
        if (_length == 0 || !json.StartsWith(_prefix.AsSpan(0, _length)))
        {
            state = default;
            return false;
        }
        scan = _scan;
        state = _state;
        return true;
    }

    /// <summary>Remembers a full scan at the end of its model value (<paramref name="prefix"/> = the chunk up to there).</summary>
    internal void Remember(ReadOnlySpan<byte> prefix, JsonReaderState state, in ResponseScan scan)
    {
        if (prefix.Length > MaxPrefix)
        {
            _length = 0; // not matched against again: each chunk would pay the compare and still scan in full
            return;
        }
        _prefix ??= ArrayPool<byte>.Shared.Rent(MaxPrefix);
        prefix.CopyTo(_prefix);
        _length = prefix.Length;
        _state = state;
        _scan = scan;
    }

    /// <summary>Forgets the prefix (another stream starts) and keeps the buffer.</summary>
    public void Clear() => _length = 0;

    public void Dispose()
    {
        var prefix = _prefix;
        _prefix = null;
        _length = 0;
        if (prefix is not null) ArrayPool<byte>.Shared.Return(prefix);
    }
}
