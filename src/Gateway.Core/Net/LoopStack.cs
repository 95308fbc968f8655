namespace Gateway.Net;

/// <summary>
/// A few free objects an event-loop thread keeps for itself in front of a shared, thread-safe pool. What a connection rents on its
/// loop it mostly returns there, so most rents and returns touch no interlocked state. Not thread-safe: each loop thread holds its
/// own in a [ThreadStatic] field of the pool, set on a loop's thread only (null on other threads). <see cref="PooledTaskBuilder"/>'s
/// boxes use it alone, on every thread, with no shared pool behind it.
/// </summary>
internal sealed class LoopStack<T>(int capacity) where T : class
{
    private readonly T?[] _items = new T?[capacity];
    private int _count;

    public bool TryPop(out T item)
    {
        if (_count == 0) { item = null!; return false; }
        int i = --_count;
        item = _items[i]!;
        _items[i] = null;
        return true;
    }

    /// <summary>False when full: the caller gives the object to the shared pool instead.</summary>
    public bool TryPush(T item)
    {
        if (_count == _items.Length) return false;
        _items[_count++] = item;
        return true;
    }
}
