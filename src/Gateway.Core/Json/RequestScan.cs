namespace Gateway.Json;

/// <summary>What one pass over a request body found. Offsets index the body; -1 means absent.</summary>
public sealed class RequestScan
{
    /// <summary>The <c>model</c> string token, quotes included.</summary>
    public int ModelTokenStart, ModelTokenEnd;
    public bool Stream;
    /// <summary>The value of <c>stream_options</c> (object or null); -1 when absent.</summary>
    public int StreamOptionsStart = -1, StreamOptionsEnd = -1;
    public bool ClientIncludeUsage, ClientContinuousUsage;
    public int KwargsStart = -1, KwargsEnd = -1;
    public bool KwargsIsObject;
    /// <summary>The <c>messages</c> array; <see cref="MessagesEmpty"/> when it has no element.</summary>
    public int MessagesStart = -1;
    public bool MessagesEmpty;
    /// <summary>The <c>content</c> value of the first message whose role is "system"; -1 when there is none.</summary>
    public int SystemContentStart = -1, SystemContentEnd = -1;
    public SystemContentKind SystemContentKind;
    /// <summary>The closing brace of the top-level object.</summary>
    public int ObjectEnd;

    // Top-level member names, for "is this default param already present?" — escaped names are stored unescaped in _scratch.
    private NameRef[] _names = new NameRef[32];
    private byte[] _scratch = [];
    private int _scratchUsed;
    public int NameCount { get; private set; }

    public void Reset()
    {
        ModelTokenStart = ModelTokenEnd = 0;
        Stream = ClientIncludeUsage = ClientContinuousUsage = KwargsIsObject = MessagesEmpty = false;
        StreamOptionsStart = StreamOptionsEnd = KwargsStart = KwargsEnd = MessagesStart = SystemContentStart = SystemContentEnd = -1;
        SystemContentKind = SystemContentKind.None;
        ObjectEnd = 0;
        NameCount = 0;
        _scratchUsed = 0;
    }

    internal void AddName(int start, int length)
    {
        if (NameCount == _names.Length) Array.Resize(ref _names, _names.Length * 2);
        _names[NameCount++] = new NameRef(start, length, false);
    }

    internal Span<byte> AddEscapedName(int maxLength)
    {
        if (_scratch.Length - _scratchUsed < maxLength) Array.Resize(ref _scratch, Math.Max(_scratch.Length * 2, _scratchUsed + maxLength));
        return _scratch.AsSpan(_scratchUsed, maxLength);
    }

    internal void CommitEscapedName(int written)
    {
        if (NameCount == _names.Length) Array.Resize(ref _names, _names.Length * 2);
        _names[NameCount++] = new NameRef(_scratchUsed, written, true);
        _scratchUsed += written;
    }

    public bool HasName(ReadOnlySpan<byte> body, ReadOnlySpan<byte> name)
    {
        for (int i = 0; i < NameCount; i++)
        {
            var n = _names[i];
            var source = n.InScratch ? _scratch.AsSpan() : body;
            if (source.Slice(n.Start, n.Length).SequenceEqual(name)) return true;
        }
        return false;
    }

    private readonly record struct NameRef(int Start, int Length, bool InScratch);
}

public enum SystemContentKind : byte { None, String, Array, Other }
