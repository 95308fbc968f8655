using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Gateway.Testing;

/// <summary>Small helpers the server fixtures share: free loopback ports, running a tool to completion, locating binaries.</summary>
public static class LocalProcess
{
    /// <summary>A port that was free on 127.0.0.1 a moment ago (bind to port 0, read it, release it).</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try { return ((IPEndPoint)listener.LocalEndpoint).Port; }
        finally { listener.Stop(); }
    }

    /// <summary>True when this process runs as root (uid 0).</summary>
    public static bool IsRoot => GetUid() is var uid && uid >= 0 ? uid == 0 : Environment.UserName == "root";

    private static int GetUid()
    {
        try
        {
            // /proc/self/status: "Uid:\treal\teffective\t…"
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("Uid:", StringComparison.Ordinal))
                    return int.Parse(line.AsSpan(4).Trim().ToString().Split('\t', ' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return -1;
    }

    /// <summary>The first existing file among <paramref name="candidates"/> and <c>$PATH</c>/<paramref name="name"/>, or null.</summary>
    public static string? FindExecutable(string name, params string[] candidates)
    {
        foreach (var c in candidates)
            if (File.Exists(c)) return c;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var path = Path.Combine(dir, name);
            if (File.Exists(path)) return path;
        }
        return null;
    }

    /// <summary>Result of <see cref="RunAsync"/>.</summary>
    public sealed record Result(int ExitCode, string StdOut, string StdErr)
    {
        /// <summary>Both streams, for error messages.</summary>
        public string Output => (StdOut.Trim() + "\n" + StdErr.Trim()).Trim();
    }

    /// <summary>
    /// Runs <paramref name="fileName"/> to completion with stdout/stderr captured. Kills it (and its children) after
    /// <paramref name="timeout"/> and throws. Never throws for a non-zero exit code: the caller decides.
    /// </summary>
    public static async Task<Result> RunAsync(string fileName, IEnumerable<string> args, TimeSpan timeout, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        // Tools such as initdb refuse unusual locales; make the environment predictable.
        psi.Environment["LC_ALL"] = "C";
        psi.Environment["LANG"] = "C";

        using var process = new Process { StartInfo = psi };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"could not start '{fileName}': {e.Message}", e);
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw new TimeoutException(
                $"'{fileName} {string.Join(' ', psi.ArgumentList)}' did not finish within {timeout.TotalSeconds:0} s.\n{Snapshot(stdout)}\n{Snapshot(stderr)}");
        }
        // WaitForExitAsync also waits for the redirected streams to reach EOF.
        return new Result(process.ExitCode, Snapshot(stdout), Snapshot(stderr));
    }

    internal static string Snapshot(StringBuilder sb)
    {
        lock (sb) return sb.ToString();
    }

    /// <summary>The last <paramref name="maxChars"/> characters of a file, or a note that it could not be read.</summary>
    public static string Tail(string path, int maxChars = 4000)
    {
        try
        {
            if (!File.Exists(path)) return $"({path} does not exist)";
            var text = File.ReadAllText(path);
            return text.Length <= maxChars ? text : "…" + text[^maxChars..];
        }
        catch (IOException e) { return $"(could not read {path}: {e.Message})"; }
        catch (UnauthorizedAccessException e) { return $"(could not read {path}: {e.Message})"; }
    }

    /// <summary>Deletes a directory tree, ignoring errors (best effort cleanup).</summary>
    public static void TryDeleteDirectory(string? path)
    {
        if (string.IsNullOrEmpty(path)) return;
        try
        {
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>
    /// A fresh directory for a server's files. As root, the directory is made in a location the <c>postgres</c> user can traverse
    /// (every ancestor world-executable), falling back to /tmp when <see cref="Path.GetTempPath"/> is not.
    /// </summary>
    public static string CreateTempDirectory(string prefix, bool traversableByOthers)
    {
        var root = Path.GetTempPath();
        if (traversableByOthers && !AllAncestorsTraversable(root)) root = "/tmp";
        // Keep it short: PostgreSQL puts its Unix socket here and socket paths are limited to 107 bytes.
        var dir = Path.Combine(root, $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)]);
        Directory.CreateDirectory(dir);
        if (traversableByOthers && !OperatingSystem.IsWindows())
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return dir;
    }

    private static bool AllAncestorsTraversable(string path)
    {
        for (var d = new DirectoryInfo(Path.GetFullPath(path)); d is not null; d = d.Parent)
        {
            try
            {
                if (!d.Exists || (d.UnixFileMode & UnixFileMode.OtherExecute) == 0) return false;
            }
            catch (IOException) { return false; }
        }
        return true;
    }
}
