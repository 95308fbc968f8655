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

    /// <summary>As <see cref="GetMemory(int)"/>, growing the array no further than <paramref name="capacityLimit"/> bytes (unless the hint needs more).</summary>
    public Memory<byte> GetMemory(int sizeHint, int capacityLimit)
    {
        Ensure(sizeHint, capacityLimit);
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

    public void Ensure(int sizeHint) => Ensure(sizeHint, int.MaxValue);

    public void Ensure(int sizeHint, int capacityLimit)
    {
        if (sizeHint < 1) sizeHint = 1;
        if (_array.Length - _length >= sizeHint) return;
        int needed = _length + sizeHint;
        int size = Math.Max(needed, Math.Min(Math.Max(_array.Length * 2, _initialCapacity), capacityLimit));
        // The shared pool rounds up to a power of two and keeps what it is given: a 64 MB answer would cost 128 MB, kept for good.
        var bigger = size <= MaxPooledArray ? ArrayPool<byte>.Shared.Rent(size) : GC.AllocateUninitializedArray<byte>(size);
        _array.AsSpan(0, _length).CopyTo(bigger);
        Return(_array);
        _array = bigger;
    }

    /// <summary>Larger arrays (a rare, huge body) are left to the GC instead of pooled.</summary>
    public const int MaxPooledArray = 16 * 1024 * 1024;

    private static void Return(byte[] array)
    {
        if (array.Length is > 0 and <= MaxPooledArray) ArrayPool<byte>.Shared.Return(array);
    }

    /// <summary>Empties the buffer and returns its array to the pool; the next write rents again.</summary>
    public void Release() => Dispose();

    public void Dispose()
    {
        var array = _array;
        _array = [];
        _length = 0;
        Return(array);
    }
}
