using System.Buffers;

namespace Gateway.Json;

/// <summary>
/// A growable byte buffer over <see cref="ArrayPool{T}.Shared"/>; reusable after <see cref="Clear"/>. It rents on first write, and
/// <see cref="Release"/> hands the array back while the buffer object lives on: a long stream holds no buffer it no longer needs.
/// </summary>
public sealed class PooledBuffer : IBufferWriter<byte>, IDisposable
{
    private readonly int _initialCapacity;
    private byte[] _array = [];
    private int _length;

    public PooledBuffer(int initialCapacity = 4096) => _initialCapacity = initialCapacity;

    public int Length => _length;
    public ReadOnlySpan<byte> WrittenSpan => _array.AsSpan(0, _length);
    public ReadOnlyMemory<byte> WrittenMemory => _array.AsMemory(0, _length);
    public byte[] Array => _array;

    public void Clear() => _length = 0;

    public void Advance(int count) => _length += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _array.AsMemory(_length);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _array.AsSpan(_length);
    }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        Ensure(bytes.Length);
        bytes.CopyTo(_array.AsSpan(_length));
        _length += bytes.Length;
    }

    public void Write(byte b)
    {
        Ensure(1);
        _array[_length++] = b;
    }

    public void Ensure(int sizeHint)
    {
        if (sizeHint < 1) sizeHint = 1;
        if (_array.Length - _length >= sizeHint) return;
        var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(Math.Max(_array.Length * 2, _initialCapacity), _length + sizeHint));
        _array.AsSpan(0, _length).CopyTo(bigger);
        if (_array.Length > 0) ArrayPool<byte>.Shared.Return(_array);
        _array = bigger;
    }

    /// <summary>Empties the buffer and returns its array to the pool; the next write rents again.</summary>
    public void Release() => Dispose();

    public void Dispose()
    {
        var array = _array;
        _array = [];
        _length = 0;
        if (array.Length > 0) ArrayPool<byte>.Shared.Return(array);
    }
}
