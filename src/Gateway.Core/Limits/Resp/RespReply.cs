using System.Runtime.CompilerServices;

namespace Gateway.Limits.Resp;

internal enum RespKind : byte
{
    /// <summary>Not an answer from Redis: the command was not sent or its reply did not come (see <see cref="RespReply.Error"/>).</summary>
    Failed,
    Simple,
    Error,
    Integer,
    Bulk,
    Array,
    Null,
}

/// <summary>
/// One reply, kept inline: the integers of an integer or an array of integers (the limiter's scripts answer with those; other
/// elements are skipped), or an error's text. No allocation but that text.
/// </summary>
internal struct RespReply
{
    public const int MaxValues = 8;

    private Values _values;

    public RespKind Kind;
    /// <summary>The integers seen (an array may hold more than <see cref="MaxValues"/>; the rest are counted, not kept).</summary>
    public int Count;
    /// <summary>An error reply's text, or why the command failed (<see cref="RespKind.Failed"/>).</summary>
    public string? Error;

    public readonly long this[int index] => (uint)index < (uint)Math.Min(Count, MaxValues) ? _values[index] : throw new IndexOutOfRangeException();

    public void Add(long value)
    {
        if (Count < MaxValues) _values[Count] = value;
        Count++;
    }

    /// <summary>Redis lost its script cache (a restart, SCRIPT FLUSH): the text must go again.</summary>
    public readonly bool IsNoScript => Kind == RespKind.Error && Error is not null && Error.StartsWith("NOSCRIPT", StringComparison.Ordinal);

    public static RespReply Failure(string why) => new() { Kind = RespKind.Failed, Error = why };

    [InlineArray(MaxValues)]
    private struct Values
    {
        private long _element;
    }
}
