namespace Gateway.Routing;

/// <summary>The current snapshot: readers take one volatile read and never lock; writers swap the whole reference.</summary>
public sealed class SnapshotHolder
{
    private Snapshot? _current;

    public Snapshot? Current => Volatile.Read(ref _current);
    public bool IsLoaded => Current is not null;

    public void Swap(Snapshot snapshot) => Volatile.Write(ref _current, snapshot);
}
