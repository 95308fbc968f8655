using System.Buffers;
using Gateway.Net;

namespace Gateway.Http.Transport;

/// <summary>
/// One link of a connection pipe's chain: a <see cref="BlockPool"/> block (or, for a write that asks for more than a block, an
/// ArrayPool array), filled up to <see cref="End"/>. <c>Memory</c> is the whole block while this is the chain's tail, so the
/// filler only moves <see cref="End"/>: a reader holding a sequence that ends here is bounded by its own end index. It is cut to
/// the bytes written when a successor is linked.
/// </summary>
internal sealed class BlockSegment : ReadOnlySequenceSegment<byte>
{
    private BlockPool.Block? _block;
    private byte[]? _array;
    private Memory<byte> _whole;

    /// <summary>Bytes written into the block.</summary>
    public int End;

    public int Writable => _whole.Length - End;
    public Memory<byte> FreeMemory => _whole[End..];
    public Span<byte> FreeSpan => _whole.Span[End..];

    /// <summary>The offset, in the connection's byte stream, just after this segment's written bytes.</summary>
    public long EndIndex => RunningIndex + End;

    /// <summary>A segment for <paramref name="runningIndex"/> onwards: the spare one if there is one, else a new one.</summary>
    public static BlockSegment Rent(ref BlockSegment? spare, long runningIndex, int sizeHint)
    {
        var segment = spare ?? new BlockSegment();
        spare = null;
        if (sizeHint <= BlockPool.BlockSize)
        {
            segment._block = BlockPool.Shared.RentBlock();
            segment._whole = segment._block.Memory;
        }
        else
        {
            segment._array = ArrayPool<byte>.Shared.Rent(sizeHint);
            segment._whole = segment._array;
        }
        segment.End = 0;
        segment.RunningIndex = runningIndex;
        segment.Memory = segment._whole;
        return segment;
    }

    /// <summary>Links <paramref name="next"/> after this segment, whose bytes are final from now on.</summary>
    public void Link(BlockSegment next)
    {
        Memory = _whole[..End];
        Next = next;
    }

    /// <summary>Gives the memory back and keeps this object as <paramref name="spare"/> for the next rent.</summary>
    public void Release(ref BlockSegment? spare)
    {
        _block?.Dispose();
        if (_array is not null) ArrayPool<byte>.Shared.Return(_array);
        _block = null;
        _array = null;
        _whole = default;
        Memory = default;
        Next = null;
        End = 0;
        spare = this;
    }

    /// <summary>The stream offset of a position in a chain of these (a default position, from an empty buffer, is <paramref name="empty"/>).</summary>
    public static long Offset(SequencePosition position, long empty) =>
        position.GetObject() is BlockSegment segment ? segment.RunningIndex + position.GetInteger() : empty;
}

/// <summary>
/// The bytes a connection pipe holds: a chain of <see cref="BlockSegment"/>s from <see cref="Start"/> (the first byte not yet
/// taken) to <see cref="End"/>, as offsets in the connection's byte stream. Not thread-safe: its owner locks.
/// </summary>
internal sealed class BlockChain
{
    private BlockSegment? _head, _tail, _spare;
    private int _headStart;
    private long _emptyAt; // Start and End while the chain holds no segment

    public long Start => _head is null ? _emptyAt : _head.RunningIndex + _headStart;
    public long End => _tail?.EndIndex ?? _emptyAt;
    public long Length => End - Start;
    public bool IsEmpty => _head is null;

    /// <summary>The tail when it has room for <paramref name="sizeHint"/> bytes, else null.</summary>
    public BlockSegment? TailWithRoom(int sizeHint) => _tail is { } tail && tail.Writable >= Math.Max(sizeHint, 1) ? tail : null;

    /// <summary>A segment that starts at <see cref="End"/>, not yet in the chain (<see cref="Add"/> it once it holds bytes, else <see cref="Return"/> it).</summary>
    public BlockSegment Rent(int sizeHint = 0) => BlockSegment.Rent(ref _spare, End, sizeHint);

    public void Add(BlockSegment segment)
    {
        if (_tail is null) (_head, _headStart) = (segment, 0);
        else _tail.Link(segment);
        _tail = segment;
    }

    public void Return(BlockSegment segment) => segment.Release(ref _spare);

    /// <summary>The bytes from <see cref="Start"/> to <see cref="End"/>.</summary>
    public ReadOnlySequence<byte> Sequence => _head is null ? default : new(_head, _headStart, _tail!, _tail!.End);

    /// <summary>Drops the bytes before <paramref name="offset"/>; segments wholly before it go back to the pool.</summary>
    public void TakeTo(long offset)
    {
        while (_head is { } head)
        {
            if (offset < head.EndIndex)
            {
                _headStart = (int)(offset - head.RunningIndex);
                return;
            }
            var next = (BlockSegment?)head.Next;
            head.Release(ref _spare);
            _head = next;
            _headStart = 0;
            if (next is null)
            {
                _tail = null;
                _emptyAt = offset;
            }
        }
    }

    /// <summary>Drops everything.</summary>
    public void Clear() => TakeTo(End);
}
