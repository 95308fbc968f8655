using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Sockets;
using Gateway.Proxy.Upstream;
using Gateway.Simulation;

namespace Gateway.Benchmarks;

/// <summary>
/// <c>--upstream-probe</c>: what BenchmarkDotNet cannot show for the two upstream clients, with the simulator in a child process so
/// that only the client is in this process's numbers:
/// <list type="bullet">
/// <item>CPU per request (<see cref="Environment.CpuUsage"/>, all threads: I/O, thread pool, GC) and bytes allocated per request,
/// sequential and 16 concurrent, JSON and SSE;</item>
/// <item>connections opened per stream when the caller stops at <c>data: [DONE]</c> as the relay does;</item>
/// <item>managed memory held per open idle stream: N streams waiting between tokens (a pending zero-byte read), full GC, delta / N.</item>
/// </list>
/// A report, not a test: nothing here asserts a timing.
/// </summary>
internal static class UpstreamProbe
{
    /// <summary>The runtime settings <c>gateway serve</c> runs with (Gateway.csproj, ServeCommand): the probe runs under the same.</summary>
    private static readonly (string Name, string Value)[] GatewayRuntime =
    [
        ("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1"), // server.inline_io = true (the default)
        ("DOTNET_ThreadPool_UnfairSemaphoreSpinLimit", "0"),
        ("DOTNET_gcConcurrent", "0"),
        ("DOTNET_gcServer", "0"),
    ];

    public static async Task<int> RunAsync(string[] args)
    {
        if (!args.Contains("--as-is") && GatewayRuntime.Any(v => Environment.GetEnvironmentVariable(v.Name) != v.Value))
            return await RerunWithGatewayRuntimeAsync(args);
        int streams = IntArg(args, "--streams", 1000);
        int requests = IntArg(args, "--requests", 20000);
        int rounds = IntArg(args, "--rounds", 3);
        using var child = SimulatorChild.Start();
        Console.WriteLine($"simulator child pid {child.Pid}: fast on {child.FastUrl}, slow (60 s between tokens) on {child.SlowUrl}");
        Console.WriteLine($"GC: server={System.Runtime.GCSettings.IsServerGC}, concurrent={System.Runtime.GCSettings.LatencyMode}; {Environment.ProcessorCount} cores");
        Console.WriteLine();

        Console.WriteLine($"CPU and allocations per exchange: median of {rounds} rounds, the two clients alternating within each round");
        Console.WriteLine("| exchange | concurrency | client | CPU µs/op | wall µs/op | allocated B/op |");
        Console.WriteLine("|---|---:|---|---:|---:|---:|");
        using (var calls = new UpstreamCalls(child.FastUrl))
        using (var floor = new RawSocketFloor(new Uri(child.FastUrl)))
        {
            foreach (int concurrency in new[] { 1, 32 })
            {
                await Compare("json", concurrency, requests, rounds,
                    ("SocketsHttpHandler", calls.JsonSocketsAsync), ("Http1Client", calls.JsonHttp1Async), ("raw socket floor", floor.JsonAsync));
                await Compare("sse (23 events)", concurrency, requests / 4, rounds,
                    ("SocketsHttpHandler", ct => calls.SseSocketsAsync(ct)), ("Http1Client, PipeReader.Create(Body)", ct => calls.SseHttp1Async(ct)),
                    ("Http1Client, BodyReader", ct => calls.SseHttp1ReaderAsync(ct)), ("raw socket floor", floor.SseAsync));
            }
        }

        Console.WriteLine();
        int connects = 0;
        using (var calls = new UpstreamCalls(child.FastUrl, handler => handler.ConnectCallback = async (context, token) =>
        {
            Interlocked.Increment(ref connects);
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try { await socket.ConnectAsync(context.DnsEndPoint, token); }
            catch { socket.Dispose(); throw; }
            return new NetworkStream(socket, ownsSocket: true);
        }))
        {
            const int n = 500;
            for (int i = 0; i < n; i++) await calls.SseSocketsAsync(default, stopAtDone: true);
            for (int i = 0; i < n; i++) await calls.SseHttp1Async(default, stopAtDone: true);
            long viaStream = calls.Http1.ConnectionsOpened(calls.Route);
            for (int i = 0; i < n; i++) await calls.SseHttp1ReaderAsync(default, stopAtDone: true);
            Console.WriteLine($"streams read until [DONE] then disposed (the relay's way), {n} in a row: connections opened — " +
                $"SocketsHttpHandler {connects}, Http1Client {viaStream} (PipeReader.Create(Body)), {calls.Http1.ConnectionsOpened(calls.Route) - viaStream} (BodyReader)");
        }

        Console.WriteLine();
        Console.WriteLine("Memory held per open stream waiting between tokens (pending zero-byte read), after a full compacting GC. 'first N' = Δ from");
        Console.WriteLine("before any stream / N; 'next N' = Δ from N to 2N open streams / N (fixed costs such as pooled arrays drop out).");
        Console.WriteLine("| client | managed heap, first N | managed heap, next N | GC heap size, next N | working set, next N |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        var gcdump = StringArg(args, "--gcdump");
        await StreamMemory("SocketsHttpHandler", streams, child.SlowUrl, Client.Sockets, gcdump);
        await StreamMemory("Http1Client, PipeReader.Create(Body)", streams, child.SlowUrl, Client.Http1Stream, gcdump);
        await StreamMemory("Http1Client, BodyReader", streams, child.SlowUrl, Client.Http1Reader, gcdump);
        return 0;
    }

    private static string? StringArg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    /// <summary>With <c>--gcdump DIR</c>: a heap snapshot of this process (dotnet-gcdump, if installed) while the streams are open.</summary>
    private static async Task GcDumpAsync(string? directory, string name)
    {
        if (directory is null) return;
        var tool = new[] { Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dotnet", "tools", "dotnet-gcdump"), "dotnet-gcdump" }
            .FirstOrDefault(File.Exists) ?? "dotnet-gcdump";
        Directory.CreateDirectory(directory);
        var file = Path.Combine(directory, name + ".gcdump");
        var info = new ProcessStartInfo(tool) { UseShellExecute = false, RedirectStandardOutput = true };
        foreach (var arg in new[] { "collect", "-p", Environment.ProcessId.ToString(), "-o", file }) info.ArgumentList.Add(arg);
        try
        {
            using var process = Process.Start(info)!;
            await process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync();
            Console.WriteLine($"(heap snapshot: {file}; `dotnet-gcdump report {file}` lists it by type)");
        }
        catch (System.ComponentModel.Win32Exception) { Console.WriteLine("(dotnet-gcdump not found: no heap snapshot)"); }
    }

    private static int IntArg(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out int v) ? v : fallback;
    }

    private static async Task<int> RerunWithGatewayRuntimeAsync(string[] args)
    {
        var info = SimulatorChild.SelfStartInfo();
        info.RedirectStandardInput = info.RedirectStandardOutput = false;
        info.ArgumentList.Add("--upstream-probe");
        foreach (var arg in args) info.ArgumentList.Add(arg);
        foreach (var (name, value) in GatewayRuntime) info.Environment[name] = value;
        Console.WriteLine("runtime as `gateway serve`: " + string.Join(" ", GatewayRuntime.Select(v => $"{v.Name}={v.Value}")) +
            (System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeSupported ? " (JIT; bench/Gateway.UpstreamProbe is the Native AOT build)" : " (Native AOT)"));
        using var process = Process.Start(info)!;
        await process.WaitForExitAsync();
        return process.ExitCode;
    }

    private static async Task Compare(string exchange, int concurrency, int count, int rounds, params (string Name, Func<CancellationToken, Task<long>> Op)[] clients)
    {
        var results = clients.Select(_ => new List<(double Cpu, double Wall, long Bytes)>()).ToArray();
        for (int round = 0; round < rounds; round++)
        {
            for (int i = 0; i < clients.Length; i++) results[i].Add(await Measure(concurrency, count, clients[i].Op));
        }
        for (int i = 0; i < clients.Length; i++)
        {
            var cpu = results[i].Select(r => r.Cpu).Order().ElementAt(rounds / 2);
            var wall = results[i].Select(r => r.Wall).Order().ElementAt(rounds / 2);
            var bytes = results[i].Select(r => r.Bytes).Order().ElementAt(rounds / 2);
            Console.WriteLine($"| {exchange} | {concurrency} | {clients[i].Name} | {cpu:0.0} | {wall:0.0} | {bytes:N0} |");
        }
    }

    private static async Task<(double Cpu, double Wall, long Bytes)> Measure(int concurrency, int count, Func<CancellationToken, Task<long>> op)
    {
        using var cts = new CancellationTokenSource();
        for (int i = 0; i < Math.Min(count, 2000); i++) await op(cts.Token); // warm-up: JIT tiers, pools, connections
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var cpu = Environment.CpuUsage.TotalTime;
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        var wall = Stopwatch.StartNew();
        int next = 0;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            while (Interlocked.Increment(ref next) <= count) await op(cts.Token);
        }));
        wall.Stop();
        var cpuUs = (Environment.CpuUsage.TotalTime - cpu).TotalMicroseconds / count;
        long bytes = (GC.GetTotalAllocatedBytes(precise: true) - allocated) / count;
        return (cpuUs, wall.Elapsed.TotalMicroseconds / count, bytes);
    }

    /// <summary>One open stream as the relay holds it between tokens: the response, a PipeReader with a zero-byte read pending.</summary>
    private sealed class OpenStream
    {
        public readonly CancellationTokenSource Cancel = new();
        public readonly TaskCompletionSource FirstEvent = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public HttpRequestMessage? Message;
        public HttpResponseMessage? Response;
        public Http1Response Http1;
        public Task Pump = Task.CompletedTask;

        public async Task PumpAsync(PipeReader reader)
        {
            try
            {
                while (true)
                {
                    var read = await reader.ReadAsync(Cancel.Token);
                    reader.AdvanceTo(read.Buffer.End);
                    FirstEvent.TrySetResult();
                    if (read.IsCompleted) break;
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or HttpRequestException or ObjectDisposedException) { }
            finally
            {
                FirstEvent.TrySetResult();
                await reader.CompleteAsync();
            }
        }
    }

    private enum Client { Sockets, Http1Stream, Http1Reader }

    private static async Task StreamMemory(string name, int count, string slowUrl, Client sockets, string? gcdump)
    {
        using var calls = new UpstreamCalls(slowUrl);
        // One stream opened and closed first, so the pools, handler internals and JIT'd code exist before the baseline.
        var warm = await Open(calls, sockets);
        await warm.FirstEvent.Task;
        await Close(warm);

        long heap0 = FullGc();
        var first = await OpenMany(calls, sockets, count);
        long heap1 = FullGc(), size1 = GC.GetGCMemoryInfo().HeapSizeBytes, ws1 = Environment.WorkingSet;
        var second = await OpenMany(calls, sockets, count);
        long heap2 = FullGc(), size2 = GC.GetGCMemoryInfo().HeapSizeBytes, ws2 = Environment.WorkingSet;
        Console.WriteLine($"| {name} (N = {count}) | {(heap1 - heap0) / count:N0} B | {(heap2 - heap1) / count:N0} B | {(size2 - size1) / count:N0} B | {(ws2 - ws1) / count:N0} B |");
        await GcDumpAsync(gcdump, $"{name}-{2 * count}-streams");
        foreach (var s in first.Concat(second)) await Close(s);
    }

    private static async Task<OpenStream[]> OpenMany(UpstreamCalls calls, Client sockets, int count)
    {
        var open = new OpenStream[count];
        using var gate = new SemaphoreSlim(32); // a burst of 32 connects at a time, as a busy gateway would open them
        await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                open[i] = await Open(calls, sockets);
                await open[i].FirstEvent.Task;
            }
            finally { gate.Release(); }
        }));
        await Task.Delay(500); // every pump is back in its pending zero-byte read
        return open;
    }

    private static async Task<OpenStream> Open(UpstreamCalls calls, Client client)
    {
        var s = new OpenStream();
        PipeReader reader;
        if (client == Client.Sockets)
        {
            s.Message = calls.Message(UpstreamCalls.SseBody);
            s.Response = await calls.Sockets.Invoker.SendAsync(s.Message, s.Cancel.Token);
            reader = PipeReader.Create(await s.Response.Content.ReadAsStreamAsync(s.Cancel.Token), UpstreamCalls.RelayReaderOptions);
        }
        else
        {
            s.Http1 = await calls.Http1.SendAsync(calls.Route, UpstreamCalls.SseBody, UpstreamCalls.RequestId, null, s.Cancel.Token);
            reader = client == Client.Http1Reader ? s.Http1.BodyReader : PipeReader.Create(s.Http1.Body, UpstreamCalls.RelayReaderOptions);
        }
        s.Pump = s.PumpAsync(reader);
        return s;
    }

    private static async Task Close(OpenStream s)
    {
        s.Cancel.Cancel();
        await s.Pump;
        s.Response?.Dispose();
        s.Message?.Dispose();
        s.Http1.Dispose();
        s.Cancel.Dispose();
    }

    private static long FullGc()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}

/// <summary>
/// <c>--simulator-child</c>: this same executable, started again, serving two simulators (fast; 60 s between tokens) until its
/// stdin closes. Out of process so its memory and CPU are not in the probe's numbers.
/// </summary>
internal sealed class SimulatorChild : IDisposable
{
    private readonly Process _process;

    private SimulatorChild(Process process, string fast, string slow)
    {
        _process = process;
        FastUrl = fast;
        SlowUrl = slow;
    }

    public int Pid => _process.Id;
    public string FastUrl { get; }
    public string SlowUrl { get; }

    /// <summary>This executable again (the apphost, or <c>dotnet Gateway.Benchmarks.dll</c>).</summary>
    public static ProcessStartInfo SelfStartInfo()
    {
        var self = Environment.ProcessPath!;
        var info = new ProcessStartInfo(self) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") info.ArgumentList.Add(Environment.GetCommandLineArgs()[0]); // the .dll
        return info;
    }

    public static SimulatorChild Start()
    {
        var info = SelfStartInfo();
        info.ArgumentList.Add("--simulator-child");
        var process = Process.Start(info)!;
        var line = process.StandardOutput.ReadLine() ?? throw new InvalidOperationException("the simulator child exited");
        var parts = line.Split(' ');
        return new SimulatorChild(process, parts[1], parts[2]);
    }

    public static async Task<int> ServeAsync()
    {
        await using var fast = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Tokens = 20 });
        await using var slow = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Tokens = 20, ItlMs = 60_000 });
        Console.WriteLine($"URLS {fast.BaseUrl} {slow.BaseUrl}");
        await Console.In.ReadToEndAsync(); // the parent closes our stdin when it is done (or dies)
        return 0;
    }

    public void Dispose()
    {
        _process.StandardInput.Close();
        if (!_process.WaitForExit(10_000)) _process.Kill();
        _process.Dispose();
    }
}
