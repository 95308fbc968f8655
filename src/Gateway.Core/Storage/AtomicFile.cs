using System.Runtime.InteropServices;

namespace Gateway.Storage;

/// <summary>
/// Replaces a file so that a crash (kill -9, power loss) at any moment leaves either the old or the new content, never a mix:
/// write a temp file in the same directory, fsync it, rename it over the target (atomic on POSIX), fsync the directory so the
/// rename itself is durable.
/// </summary>
public static partial class AtomicFile
{
    /// <summary>Temp files are <c>{target}{TempMarker}{random}</c>; a stray one is what a crash before the rename leaves behind.</summary>
    public const string TempMarker = ".tmp-";

    public static void Write(string path, ReadOnlySpan<byte> content)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        var temp = full + TempMarker + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6));
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.None))
            {
                fs.Write(content);
                fs.Flush(flushToDisk: true); // fsync: the bytes are on disk before the name points at them
            }
            File.Move(temp, full, overwrite: true); // rename(2)
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        FsyncDirectory(dir);
    }

    /// <summary>Deletes temp files a crash left next to <paramref name="path"/>; they never hold the current state.</summary>
    public static void RemoveStrayTemps(string path)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) return;
        foreach (var stray in Directory.EnumerateFiles(dir, Path.GetFileName(full) + TempMarker + "*")) TryDelete(stray);
    }

    /// <summary>.NET cannot open a directory as a FileStream, so fsync it through libc (a no-op where there is no such call).</summary>
    public static void FsyncDirectory(string dir)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS() && !OperatingSystem.IsFreeBSD()) return;
        var fd = Open(dir, 0 /* O_RDONLY */);
        if (fd < 0) throw new IOException($"cannot open directory {dir} to fsync it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (Fsync(fd) != 0) throw new IOException($"fsync of directory {dir} failed (errno {Marshal.GetLastPInvokeError()})");
        }
        finally
        {
            _ = Close(fd);
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
