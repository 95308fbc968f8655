using System.Runtime.CompilerServices;

namespace Gateway.IntegrationTests;

/// <summary>
/// The test process blocks thread-pool threads in one-second socket polls that are not the gateway's (a gdb snapshot during a
/// stall showed a pool worker in poll(…, 1000), which nothing in src/ calls; strace showed two threads doing it, the test host's
/// message loops). On a 2-core machine the pool starts with 2 workers, so the in-process gateway, simulator and HTTP client could
/// all wait for the pool to inject a thread (about one per 0.5 s): run alone, the TTFT/ITL metrics test measured 0.72–1.15 s for
/// the simulator's 0.2 s delay in 5 of 6 runs (6 of 6 passed with two more minimum workers). The gateway's own process has no
/// such threads.
/// </summary>
internal static class TestThreadPool
{
#pragma warning disable CA2255 // a module initializer is the one place that runs before any test of this assembly
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Widen()
    {
        // Two more than the default (one per core): room for the test host's two pollers, not so much that a blocking regression
        // in src/ would go unnoticed.
        ThreadPool.GetMinThreads(out int workers, out int io);
        ThreadPool.SetMinThreads(workers + 2, io);
    }
}
