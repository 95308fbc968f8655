namespace Gateway.Load;

/// <summary>Where the gateway stops being free: the capacity-planning answer of a sweep.</summary>
internal static class Knee
{
    /// <summary>More than this share of failed requests ends a sweep and disqualifies a step from being the knee.</summary>
    public const double MaxErrorRate = 0.01;

    /// <summary>
    /// The highest-load step of the unbroken run of good steps from the lowest load up: a step is good when its p99 added overhead
    /// (gateway − direct) is known and below <paramref name="sloMs"/> and neither side failed more than 1 %. Stopping at the first bad
    /// step (rather than taking the highest good step anywhere) keeps a lucky quiet step above a breach from being reported as
    /// capacity. Null when the lowest step already breaches or there are no steps.
    /// </summary>
    public static StepResult? Find(IReadOnlyList<StepResult> steps, double sloMs)
    {
        StepResult? knee = null;
        foreach (var step in steps.OrderBy(s => s.Load))
        {
            if (!IsGood(step, sloMs)) break;
            knee = step;
        }
        return knee;
    }

    public static bool IsGood(StepResult step, double sloMs) =>
        !double.IsNaN(step.OverheadP99) && step.OverheadP99 < sloMs && !TooManyErrors(step);

    public static bool TooManyErrors(StepResult step) =>
        (step.Gateway?.ErrorRate ?? 0) > MaxErrorRate || (step.Direct?.ErrorRate ?? 0) > MaxErrorRate;
}
