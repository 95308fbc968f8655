namespace Gateway.Limits;

/// <summary>
/// An exact sliding log of request times for one scope: a ring of the last <c>limit</c> timestamps. A request is allowed when fewer
/// than <c>limit</c> remain in the window. O(1) amortized, no allocation after construction.
/// </summary>
internal sealed class RequestWindow
{
    private long[] _times; // Stopwatch ticks, oldest at _head
    private int _head, _count;

    public RequestWindow(long limit) => _times = new long[Math.Clamp(limit, 1, 1_000_000)];

    /// <summary>Requests in the window at <paramref name="now"/>, and the time until the oldest of them leaves it.</summary>
    public long Count(long now, long windowTicks, out long resetTicks)
    {
        Expire(now, windowTicks);
        resetTicks = _count == 0 ? 0 : _times[_head] + windowTicks - now;
        return _count;
    }

    /// <summary>Records a request the caller has checked is allowed (the count is below <paramref name="limit"/>).</summary>
    public void Add(long now, long windowTicks, long limit, out long resetTicks)
    {
        if (_times.Length != Math.Clamp(limit, 1, 1_000_000)) Resize(limit);
        Expire(now, windowTicks);
        if (_count == _times.Length) { _head = (_head + 1) % _times.Length; _count--; } // only after a limit was lowered
        _times[(_head + _count) % _times.Length] = now;
        _count++;
        resetTicks = _times[_head] + windowTicks - now;
    }

    private void Expire(long now, long windowTicks)
    {
        while (_count > 0 && _times[_head] <= now - windowTicks)
        {
            _head = (_head + 1) % _times.Length;
            _count--;
        }
    }

    private void Resize(long limit)
    {
        var bigger = new long[Math.Clamp(limit, 1, 1_000_000)];
        int keep = Math.Min(_count, bigger.Length);
        for (int i = 0; i < keep; i++) bigger[i] = _times[(_head + _count - keep + i) % _times.Length];
        _times = bigger;
        _head = 0;
        _count = keep;
    }
}

/// <summary>
/// A count in the window, in buckets of 1/100 of the window (600 ms for a minute): the total is exact; an entry leaves the window with its
/// bucket, at most 1/100 of the window early. Used for tokens (charges arrive as many small live deltas, so a log of each
/// would grow) and for request limits too large for an exact log.
/// </summary>
internal sealed class BucketWindow
{
    private const int Buckets = 100;
    private readonly long[] _counts = new long[Buckets];
    private long _total, _currentId = long.MinValue, _oldestHint = long.MinValue;

    public void Add(long now, long windowTicks, long amount)
    {
        long id = Advance(now, windowTicks);
        _counts[Slot(id)] += amount;
        _total += amount;
        if (_oldestHint < id - Buckets + 1) _oldestHint = id;
    }

    /// <summary>The total in the window now, and the time until the oldest non-empty bucket leaves it.</summary>
    public long Total(long now, long windowTicks, out long resetTicks)
    {
        long id = Advance(now, windowTicks);
        resetTicks = 0;
        if (_total == 0) return 0;
        long bucketTicks = Math.Max(1, windowTicks / Buckets);
        for (long b = Math.Max(_oldestHint, id - Buckets + 1); b <= id; b++)
        {
            if (_counts[Slot(b)] == 0) continue;
            _oldestHint = b; // amortized: the scan never goes back over buckets already found empty
            resetTicks = (b + Buckets) * bucketTicks - now;
            break;
        }
        return _total;
    }

    private static int Slot(long id) => (int)(((id % Buckets) + Buckets) % Buckets);

    // Moves the window to now's bucket, emptying the buckets that left it. Amortized O(1): each bucket is emptied once per pass.
    private long Advance(long now, long windowTicks)
    {
        long id = now / Math.Max(1, windowTicks / Buckets);
        if (id == _currentId) return id;
        if (_currentId == long.MinValue || id - _currentId >= Buckets)
        {
            Array.Clear(_counts);
            _total = 0;
        }
        else
        {
            for (long b = _currentId + 1; b <= id; b++)
            {
                int slot = Slot(b);
                _total -= _counts[slot];
                _counts[slot] = 0;
            }
        }
        _currentId = id;
        return id;
    }
}
