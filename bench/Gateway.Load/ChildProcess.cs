using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Gateway.Load;

/// <summary>A process this tool started (simulator or gateway): output kept as a short tail for error messages, stopped with
/// SIGTERM (so the gateway drains and releases its port) and SIGKILL if it does not exit in time.</summary>
internal sealed partial class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Queue<string> _tail = new();

    public string Name { get; }
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;

    private ChildProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    public static ChildProcess Start(string name, string fileName, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        if (env is not null) foreach (var (k, v) in env) info.Environment[k] = v;
        var process = new Process { StartInfo = info };
        var child = new ChildProcess(name, process);
        // Drain both pipes (a full pipe would block the child) and keep the last lines for "it exited: …" messages.
        process.OutputDataReceived += (_, e) => child.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => child.Keep(e.Data);
        if (!process.Start()) throw new InvalidOperationException($"could not start {fileName}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    private void Keep(string? line)
    {
        if (line is null) return;
        lock (_tail)
        {
            _tail.Enqueue(line);
            while (_tail.Count > 20) _tail.Dequeue();
        }
    }

    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    public string Tail()
    {
        lock (_tail) return string.Join('\n', _tail);
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                if (OperatingSystem.IsLinux()) Kill(_process.Id, 15); // SIGTERM
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try { await _process.WaitForExitAsync(wait.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) { _process.Kill(entireProcessTree: true); }
            }
        }
        catch (InvalidOperationException)
        {
            // Never started or already reaped.
        }
        _process.Dispose();
    }
}
