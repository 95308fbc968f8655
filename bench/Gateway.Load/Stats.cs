namespace Gateway.Load;

/// <summary>Percentiles over raw samples (no histogram buckets: a step holds at most a few hundred thousand values).</summary>
internal static class Stats
{
    /// <summary>
    /// The p-th percentile (0..100) of <paramref name="values"/>, by linear interpolation between closest ranks (Hyndman–Fan type 7,
    /// the default of NumPy, R and Excel's PERCENTILE.INC): rank h = (n − 1)·p/100, result = x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]).
    /// Chosen because it is continuous in p, returns the minimum at p=0 and the maximum at p=100, and matches what readers check
    /// a report against. Empty input → NaN (reported as "–" / null), one value → that value. Sorts a copy; the input is untouched.
    /// </summary>
    public static double Percentile(IReadOnlyList<double> values, double p)
    {
        if (values.Count == 0) return double.NaN;
        var sorted = values.ToArray();
        Array.Sort(sorted);
        return PercentileOfSorted(sorted, p);
    }

    /// <summary>As <see cref="Percentile"/> for an already sorted array (several percentiles of one step sort once).</summary>
    public static double PercentileOfSorted(double[] sorted, double p)
    {
        if (double.IsNaN(p) || p < 0 || p > 100) throw new ArgumentOutOfRangeException(nameof(p), p, "a percentile is in 0..100");
        if (sorted.Length == 0) return double.NaN;
        if (sorted.Length == 1) return sorted[0];
        var h = (sorted.Length - 1) * p / 100.0;
        var lo = (int)Math.Floor(h);
        if (lo >= sorted.Length - 1) return sorted[^1];
        return sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]);
    }

    /// <summary>p50, p90, p99 of one sample set, sorting once.</summary>
    public static Percentiles Summarize(IReadOnlyList<double> values)
    {
        var sorted = values.ToArray();
        Array.Sort(sorted);
        return new Percentiles(sorted.Length, PercentileOfSorted(sorted, 50), PercentileOfSorted(sorted, 90), PercentileOfSorted(sorted, 99));
    }
}

/// <summary>Milliseconds; NaN where there were no samples.</summary>
internal readonly record struct Percentiles(int Count, double P50, double P90, double P99)
{
    public static readonly Percentiles Empty = new(0, double.NaN, double.NaN, double.NaN);
}
