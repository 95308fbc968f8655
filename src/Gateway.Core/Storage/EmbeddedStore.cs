using System.Text.Json;

namespace Gateway.Storage;

/// <summary>
/// <see cref="IStore"/> for embedded mode: the whole state in memory, persisted to <c>{data_dir}/state.json</c> on every write with
/// <see cref="AtomicFile"/> (a kill -9 leaves the old or the new file). Writers are serialized and replace an immutable state object;
/// readers never lock. A write whose file update fails changes nothing. A lock file keeps a second process off the same directory.
/// </summary>
public sealed partial class EmbeddedStore : IStore
{
    public const string FileName = "state.json";
    private const string LockName = "state.lock";

    private readonly SemaphoreSlim _writer = new(1, 1);
    private readonly FileStream _lock;
    private EmbeddedStateFile _state;
    private int _disposed;

    private EmbeddedStore(string path, FileStream lockFile, EmbeddedStateFile state)
    {
        FilePath = path;
        _lock = lockFile;
        _state = state;
    }

    public string FilePath { get; }
    /// <summary>The state file is locked to one process: nobody else writes it.</summary>
    public bool IsShared => false;

    /// <summary>
    /// Opens (or creates) the store in <paramref name="dataDir"/>. A state file that does not parse is refused with one line naming
    /// it, and left untouched for the operator: starting empty would silently drop every model and key.
    /// </summary>
    public static EmbeddedStore Open(string dataDir)
    {
        try { Directory.CreateDirectory(dataDir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StoreException(StoreErrorKind.Unavailable, $"storage.data_dir {Path.GetFullPath(dataDir)}: cannot create the directory: {e.Message}");
        }
        var path = Path.GetFullPath(Path.Combine(dataDir, FileName));
        FileStream lockFile;
        try
        {
            lockFile = new FileStream(Path.Combine(dataDir, LockName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (IsSharingViolation(e))
        {
            throw new StoreException(StoreErrorKind.Unavailable, $"{Path.GetFullPath(dataDir)} is in use by another gateway process (could not lock {LockName})");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Read-only, not ours, full: not another gateway, so not reported as one.
            throw new StoreException(StoreErrorKind.Unavailable, $"storage.data_dir {Path.GetFullPath(dataDir)}: cannot create {LockName}: {e.Message}");
        }

        try
        {
            AtomicFile.RemoveStrayTemps(path); // leftovers of a crash before the rename; the target still holds the last good state
            var state = File.Exists(path) ? Read(path) : new EmbeddedStateFile(EmbeddedStateFile.CurrentFormat, [], []);
            return new EmbeddedStore(path, lockFile, state);
        }
        catch
        {
            lockFile.Dispose();
            throw;
        }
    }

    /// <summary>The lock is taken: on Linux .NET's FileShare.None is flock(2), and its EWOULDBLOCK (11) is the exception's HResult.</summary>
    private static bool IsSharingViolation(IOException e) => e.HResult == 11;

    private static EmbeddedStateFile Read(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StoreException(StoreErrorKind.Unavailable, $"cannot read state file {path}: {e.Message}");
        }
        EmbeddedStateFile? state;
        try { state = JsonSerializer.Deserialize(bytes, EmbeddedStateJson.Default.EmbeddedStateFile); }
        catch (JsonException e)
        {
            throw new StoreException(StoreErrorKind.Unavailable,
                $"state file {path} is corrupt or truncated ({e.Message.Split('\n')[0]}); refusing to start. " +
                "Restore it from a backup or move it away to start empty.");
        }
        if (state is null || state.Format != EmbeddedStateFile.CurrentFormat)
            throw new StoreException(StoreErrorKind.Unavailable,
                $"state file {path} has an unsupported format ({state?.Format.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "null"}); refusing to start.");
        return state;
    }

    private EmbeddedStateFile State => Volatile.Read(ref _state);

    /// <summary>Runs one write: computes the next state from the current one, persists it, then publishes it. A change that returns
    /// the current state object writes nothing.</summary>
    private async Task<T> WriteAsync<T>(Func<EmbeddedStateFile, (EmbeddedStateFile Next, T Result)> change, CancellationToken ct)
    {
        await _writer.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var (next, result) = change(_state);
            if (ReferenceEquals(next, _state)) return result; // a change that changes nothing costs no file write
            var bytes = JsonSerializer.SerializeToUtf8Bytes(next, EmbeddedStateJson.Default.EmbeddedStateFile);
            try { AtomicFile.Write(FilePath, bytes); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new StoreException(StoreErrorKind.Unavailable, $"could not write state file {FilePath}: {e.Message}", null, e);
            }
            Volatile.Write(ref _state, next);
            return result;
        }
        finally
        {
            _writer.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _writer.WaitAsync().ConfigureAwait(false); // let a write in progress finish
        await _lock.DisposeAsync().ConfigureAwait(false);
        _writer.Dispose();
    }

    /// <summary>PostgreSQL keeps microseconds; so do we, so both stores round-trip the same timestamps.</summary>
    private static DateTimeOffset Now() => Truncate(DateTimeOffset.UtcNow);

    private static DateTimeOffset Truncate(DateTimeOffset t)
    {
        var utc = t.ToUniversalTime();
        return new DateTimeOffset(utc.Ticks - utc.Ticks % 10, TimeSpan.Zero);
    }

    public Task<StoreContents> LoadAllAsync(CancellationToken ct = default)
    {
        var s = State;
        return Task.FromResult(new StoreContents(s.Models, s.Keys));
    }
}
