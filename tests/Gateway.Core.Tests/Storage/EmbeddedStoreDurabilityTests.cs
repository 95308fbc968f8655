using Gateway.Auth;
using Gateway.Storage;

namespace Gateway.Tests.Storage;

public sealed class EmbeddedStoreDurabilityTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "gw-embedded-" + Guid.NewGuid().ToString("N"));
    private string StatePath => Path.Combine(_dir, EmbeddedStore.FileName);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (DirectoryNotFoundException) { }
    }

    private async Task<(StoredModel Model, StoredKey Key)> WriteSomethingAsync()
    {
        await using var store = EmbeddedStore.Open(_dir);
        var model = await store.CreateModelAsync(new NewModel { Name = "m", ModelId = "org/m", DefaultParams = """{"temperature":0.5}""" });
        await store.AddBackendAsync(model.Id, new NewBackend { Url = "http://127.0.0.1:8000", Weight = 2 });
        var plaintext = ApiKey.Generate();
        var key = await store.CreateKeyAsync(new NewKey
        {
            KeyHash = ApiKey.HashHex(plaintext), KeyPrefix = ApiKey.DisplayPrefix(plaintext), Name = "k",
            AllowedModels = ["m"], ExpiresAt = new DateTimeOffset(2031, 5, 6, 7, 8, 9, TimeSpan.Zero), TpmLimit = 1000,
        });
        return (model, key);
    }

    [Fact]
    public async Task A_new_directory_starts_empty_and_writes_nothing_until_the_first_change()
    {
        await using var store = EmbeddedStore.Open(_dir);
        Assert.Empty(await store.ListModelsAsync());
        Assert.False(File.Exists(StatePath));
    }

    [Fact]
    public async Task State_survives_reopening()
    {
        var (model, key) = await WriteSomethingAsync();
        await using var store = EmbeddedStore.Open(_dir);
        var m = await store.GetModelAsync(model.Id);
        Assert.Equal("org/m", m.ModelId);
        Assert.Equal(model.CreatedAt, m.CreatedAt);
        Assert.Equal(2, Assert.Single(m.Backends).Weight);
        var k = await store.GetKeyAsync(key.Id);
        Assert.Equal(key, k with { AllowedModels = key.AllowedModels });
        Assert.Equal(["m"], k.AllowedModels);
        Assert.Equal(key.ExpiresAt, k.ExpiresAt);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.95)]
    [InlineData(0.0)]
    public async Task A_truncated_state_file_is_refused_naming_the_file_and_kept_as_is(double keep)
    {
        await WriteSomethingAsync();
        var full = await File.ReadAllBytesAsync(StatePath);
        var truncated = full.AsSpan(0, (int)(full.Length * keep)).ToArray();
        await File.WriteAllBytesAsync(StatePath, truncated);

        var e = Assert.Throws<StoreException>(() => EmbeddedStore.Open(_dir));
        Assert.Contains(Path.GetFullPath(StatePath), e.Message, StringComparison.Ordinal);
        Assert.Contains("refusing to start", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(truncated, await File.ReadAllBytesAsync(StatePath)); // untouched for the operator
    }

    [Theory]
    [InlineData("""{"format":1,"models":[{"id":"x"}],"keys":[]}""")]
    [InlineData("""{"format":1,"models":null,"keys":[]}""")]
    [InlineData("""{"format":2,"models":[],"keys":[]}""")]
    [InlineData("""[]""")]
    [InlineData("""null""")]
    public void A_state_file_with_the_wrong_shape_is_refused(string content)
    {
        Directory.CreateDirectory(_dir);
        File.WriteAllText(StatePath, content);
        var e = Assert.Throws<StoreException>(() => EmbeddedStore.Open(_dir));
        Assert.Contains(StatePath, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_crash_between_temp_write_and_rename_leaves_the_old_state()
    {
        var (model, _) = await WriteSomethingAsync();
        var before = await File.ReadAllBytesAsync(StatePath);
        // What a kill -9 after writing the temp file but before the rename leaves behind: a complete or partial newer file.
        var stray = StatePath + AtomicFile.TempMarker + "deadbeef0001";
        await File.WriteAllTextAsync(stray, """{"format":1,"models":[],"ke""");

        await using var store = EmbeddedStore.Open(_dir);
        Assert.Equal(model.Id, Assert.Single(await store.ListModelsAsync()).Id);
        Assert.Equal(before, await File.ReadAllBytesAsync(StatePath));
        Assert.False(File.Exists(stray)); // cleaned up on open
    }

    [Fact]
    public async Task Writes_leave_no_temp_files_and_replace_the_file_whole()
    {
        await WriteSomethingAsync();
        Assert.Equal([EmbeddedStore.FileName], Directory.GetFiles(_dir, "state.json*").Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_second_process_on_the_same_directory_is_refused()
    {
        await using var first = EmbeddedStore.Open(_dir);
        var e = Assert.Throws<StoreException>(() => EmbeddedStore.Open(_dir));
        Assert.Equal(StoreErrorKind.Unavailable, e.Kind);
        Assert.Contains("in use", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_rejected_write_changes_neither_memory_nor_disk()
    {
        await WriteSomethingAsync();
        var before = await File.ReadAllBytesAsync(StatePath);
        await using var store = EmbeddedStore.Open(_dir);
        await Assert.ThrowsAsync<StoreException>(() => store.CreateModelAsync(new NewModel { Name = "m", ModelId = "dup" }));
        Assert.Single(await store.ListModelsAsync());
        Assert.Equal(before, await File.ReadAllBytesAsync(StatePath));
    }

    [Fact]
    public void AtomicFile_replaces_content_and_fsyncs_the_directory()
    {
        Directory.CreateDirectory(_dir);
        var path = Path.Combine(_dir, "f.bin");
        AtomicFile.Write(path, "one"u8);
        AtomicFile.Write(path, "two"u8);
        Assert.Equal("two", File.ReadAllText(path));
        AtomicFile.FsyncDirectory(_dir);
        Assert.Throws<IOException>(() => AtomicFile.FsyncDirectory(Path.Combine(_dir, "missing")));
    }
}
