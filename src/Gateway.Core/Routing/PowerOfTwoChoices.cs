namespace Gateway.Routing;

/// <summary>
/// Weighted least-outstanding by power of two choices: pick two eligible backends at random and take the one with fewer requests
/// in flight per unit of weight. No shared state to lock: the counters are the backends' own.
/// </summary>
public static class PowerOfTwoChoices
{
    public static int Pick(ReadOnlySpan<int> outstanding, ReadOnlySpan<int> weights, ReadOnlySpan<bool> eligible)
    {
        int count = 0, only = -1;
        for (int i = 0; i < eligible.Length; i++)
            if (eligible[i]) { count++; only = i; }
        if (count <= 1) return only;

        int first = Random.Shared.Next(count);
        int second = (first + Random.Shared.Next(1, count)) % count; // a different one
        int a = Nth(eligible, first), b = Nth(eligible, second);
        // Compare outstanding/weight without division: a/wa < b/wb ⇔ a·wb < b·wa.
        long costA = (long)outstanding[a] * weights[b], costB = (long)outstanding[b] * weights[a];
        return costA < costB || (costA == costB && weights[a] >= weights[b]) ? a : b;
    }

    private static int Nth(ReadOnlySpan<bool> eligible, int n)
    {
        for (int i = 0; i < eligible.Length; i++)
            if (eligible[i] && n-- == 0) return i;
        return -1;
    }
}
