using System.Collections.Concurrent;
using System.Diagnostics.Tracing;
internal class StartupHook
{
    static AllocListener? s_l;
    public static void Initialize()
    {
        s_l = new AllocListener();
        var t = new Thread(() => { while (true) { Thread.Sleep(5000); s_l.Dump(); } }) { IsBackground = true };
        t.Start();
    }
}
sealed class AllocListener : EventListener
{
    readonly ConcurrentDictionary<string, long> _bytes = new();
    long _total;
    protected override void OnEventSourceCreated(EventSource s)
    {
        if (s.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(s, EventLevel.Verbose, (EventKeywords)0x1);
    }
    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName is null || !e.EventName.StartsWith("GCAllocationTick")) return;
        string type = "?"; long amount = 0;
        for (int i = 0; i < e.PayloadNames!.Count; i++)
        {
            if (e.PayloadNames[i] == "TypeName") type = e.Payload![i]?.ToString() ?? "?";
            if (e.PayloadNames[i] == "AllocationAmount64") amount = Convert.ToInt64(e.Payload![i]);
        }
        _bytes.AddOrUpdate(type, amount, (_, v) => v + amount);
        Interlocked.Add(ref _total, amount);
    }
    public void Dump()
    {
        var lines = _bytes.OrderByDescending(kv => kv.Value).Take(40).Select(kv => $"{kv.Value,14} {kv.Key}");
        File.WriteAllText("/tmp/ngt/alloc.txt", $"total {_total}\n" + string.Join("\n", lines) + "\n");
    }
}
