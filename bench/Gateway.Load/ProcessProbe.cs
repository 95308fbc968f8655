using System.Globalization;
using System.Runtime.InteropServices;

namespace Gateway.Load;

/// <summary>CPU time and resident memory of another process, read from /proc (Linux only; elsewhere every read is null).</summary>
internal static partial class ProcessProbe
{
    private const int ScClkTck = 2; // _SC_CLK_TCK in glibc's and musl's unistd.h

    /// <summary>Clock ticks per second of /proc/PID/stat's utime/stime; sysconf through a source-generated P/Invoke (AOT-safe),
    /// 100 (every mainstream Linux build) if that fails.</summary>
    public static readonly long ClockTicksPerSecond = ReadClockTicks();

    [LibraryImport("libc", EntryPoint = "sysconf")]
    private static partial long SysConf(int name);

    private static long ReadClockTicks()
    {
        try
        {
            return OperatingSystem.IsLinux() && SysConf(ScClkTck) is var t and > 0 ? t : 100;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return 100;
        }
    }

    /// <summary>utime + stime in seconds, or null when the process is gone or /proc is not there.</summary>
    public static double? CpuSeconds(int pid)
    {
        string stat;
        try { stat = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        return ParseCpuTicks(stat) is { } ticks ? (double)ticks / ClockTicksPerSecond : null;
    }

    /// <summary>utime (field 14) + stime (field 15) of a /proc/PID/stat line. The command name (field 2) is in parentheses and may
    /// contain spaces and ')' itself, so fields are counted from the last ')'.</summary>
    internal static long? ParseCpuTicks(string stat)
    {
        var close = stat.LastIndexOf(')');
        if (close < 0) return null;
        var fields = stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // fields[0] is field 3 (state), so field 14 is fields[11] and field 15 is fields[12].
        if (fields.Length < 13) return null;
        return long.TryParse(fields[11], NumberStyles.None, CultureInfo.InvariantCulture, out var u)
            && long.TryParse(fields[12], NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? u + s : null;
    }

    /// <summary>VmRSS in bytes, or null.</summary>
    public static long? RssBytes(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (!line.StartsWith("VmRSS:", StringComparison.Ordinal)) continue;
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return parts.Length >= 2 && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var kb) ? kb * 1024 : null;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return null;
    }
}
