using System.Buffers;
using System.Text;
using System.Text.Json;
using Gateway.Config;

namespace Gateway.Storage;

/// <summary>
/// Copies the static <c>[[models]]</c> and <c>[[keys]]</c> of gateway.toml into the store at start-up.
/// Decision: the config file wins for the entries it names. A model is matched by name and overwritten with the file's fields; its
/// backends become exactly the file's list (matched by URL, so ids survive). A key is matched by hash, else by name (a rotated key),
/// and overwritten likewise. Entries the file does not name are left alone, including ones removed from the file since the last start
/// (the store cannot tell them from admin-created ones). Admin changes to a config-named entry therefore last until the next restart;
/// the admin API is expected to refuse them with a message saying the entry is managed by gateway.toml.
/// </summary>
public static class StoreSeeder
{
    /// <summary>
    /// Instances started together on a fresh database seed at the same moment: one may insert what another just inserted (a
    /// conflict) or delete a backend the other just deleted (not found). Seeding matches by name, hash and URL, so another pass
    /// finds the other's rows and brings them to the file's values.
    /// </summary>
    public static async Task SeedAsync(IStore store, GatewayOptions options, CancellationToken ct = default)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                await SeedOnceAsync(store, options, ct).ConfigureAwait(false);
                return;
            }
            catch (StoreException e) when (e.Kind is StoreErrorKind.Conflict or StoreErrorKind.NotFound && attempt < 6)
            {
                await Task.Delay(Random.Shared.Next(10, 50) * attempt, ct).ConfigureAwait(false); // apart, so the passes do not meet again
            }
        }
    }

    private static async Task SeedOnceAsync(IStore store, GatewayOptions options, CancellationToken ct)
    {
        foreach (var config in options.Models) await SeedModelAsync(store, config, ct).ConfigureAwait(false);
        if (options.Keys.Count == 0) return;
        var keys = await store.ListKeysAsync(ct).ConfigureAwait(false);
        foreach (var config in options.Keys) await SeedKeyAsync(store, keys, config, ct).ConfigureAwait(false);
    }

    private static async Task SeedModelAsync(IStore store, ModelConfig config, CancellationToken ct)
    {
        var existing = await store.FindModelByNameAsync(config.Name, ct).ConfigureAwait(false);
        var defaults = DefaultParamsJson(config);
        var reasoning = config.EnableThinking is { } t ? (t ? """{"enable_thinking":true}""" : """{"enable_thinking":false}""") : "{}";
        var transforms = TransformsJson(config);
        var limits = RateLimitsJson(config);
        StoredModel model;
        if (existing is null)
        {
            model = await store.CreateModelAsync(new NewModel
            {
                Name = config.Name, ModelId = config.ModelId, Active = config.Active,
                DefaultParams = defaults, ReasoningConfig = reasoning, Transforms = transforms, RateLimits = limits,
            }, ct).ConfigureAwait(false);
        }
        else
        {
            model = await store.UpdateModelAsync(existing.Id, new ModelPatch
            {
                ModelId = config.ModelId, Active = config.Active, DefaultParams = defaults, ReasoningConfig = reasoning, Transforms = transforms,
                RateLimits = limits,
            }, ct).ConfigureAwait(false);
        }

        var wanted = config.Backends.ToDictionary(b => StoreValidation.Url(b.Url), StringComparer.Ordinal);
        foreach (var b in model.Backends)
        {
            if (!wanted.TryGetValue(b.Url, out var want)) await store.DeleteBackendAsync(model.Id, b.Id, ct).ConfigureAwait(false);
            else if (b.Weight != want.Weight || b.Active != want.Active)
                await store.UpdateBackendAsync(model.Id, b.Id, new BackendPatch { Weight = want.Weight, Active = want.Active }, ct).ConfigureAwait(false);
        }
        foreach (var (url, b) in wanted)
        {
            if (model.Backends.Any(x => x.Url == url)) continue;
            await store.AddBackendAsync(model.Id, new NewBackend { Url = url, Weight = b.Weight, Active = b.Active }, ct).ConfigureAwait(false);
        }
    }

    private static async Task SeedKeyAsync(IStore store, IReadOnlyList<StoredKey> keys, KeyConfig config, CancellationToken ct)
    {
        var prefix = config.KeyPrefix ?? "";
        var existing = keys.FirstOrDefault(k => k.KeyHash == config.KeyHashHex) ?? keys.FirstOrDefault(k => k.Name == config.Name);
        if (existing is null)
        {
            await store.CreateKeyAsync(new NewKey
            {
                KeyHash = config.KeyHashHex, KeyPrefix = prefix, Name = config.Name, Active = config.Active, RpmLimit = config.RpmLimit,
                TpmLimit = config.TpmLimit, AllowedModels = config.AllowedModels, ExpiresAt = config.ExpiresAt,
            }, ct).ConfigureAwait(false);
            return;
        }
        await store.UpdateKeyAsync(existing.Id, new KeyPatch
        {
            KeyHash = config.KeyHashHex, KeyPrefix = prefix, Name = config.Name, Active = config.Active,
            RpmLimit = new Set<long?>(config.RpmLimit), TpmLimit = new Set<long?>(config.TpmLimit),
            AllowedModels = config.AllowedModels, ExpiresAt = new Set<DateTimeOffset?>(config.ExpiresAt),
        }, ct).ConfigureAwait(false);
    }

    private static string DefaultParamsJson(ModelConfig config)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach (var (name, json) in config.DefaultParams)
            {
                w.WritePropertyName(name);
                w.WriteRawValue(json);
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static string RateLimitsJson(ModelConfig config) => (config.RpmLimit, config.TpmLimit) switch
    {
        (null, null) => "{}",
        (var rpm, null) => $$"""{"rpm":{{rpm}}}""",
        (null, var tpm) => $$"""{"tpm":{{tpm}}}""",
        var (rpm, tpm) => $$"""{"rpm":{{rpm}},"tpm":{{tpm}}}""",
    };

    /// <summary>The stored form of the model's transforms, which also carries its balancing policy (<c>"lb":"p2c"</c>).</summary>
    private static string TransformsJson(ModelConfig config)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            if (config.SystemPromptPrefix is not null) w.WriteString("system_prompt_prefix", config.SystemPromptPrefix);
            if (config.Lb == BalancerKind.LeastOutstanding) w.WriteString("lb", "p2c");
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
