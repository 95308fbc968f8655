using System.Text.Json;
using Gateway.Auth;

namespace Gateway.IntegrationTests.Admin;

/// <summary>The seed README's quick start, step by step over HTTP, then a scan of everything the gateway logged meanwhile.</summary>
public abstract partial class AdminApiContract
{
    [Fact]
    public async Task The_seed_readme_quick_start_works_as_written()
    {
        // 4. Register a model via the admin API.
        var created = await Post("/admin/v1/models", $$"""
            {
              "name": "llama-3",
              "model_id": "{{SeedModelId}}"
            }
            """);
        Assert.Equal(201, created.Status);
        var modelId = Expect(200, await Get("/admin/v1/models")).EnumerateArray()
            .Single(m => m.GetProperty("name").GetString() == "llama-3").GetProperty("id").GetString()!;
        var backend = await Post($"/admin/v1/models/{modelId}/backends", $$"""
            {
              "url": "{{Sim.BaseUrl}}",
              "weight": 1
            }
            """);
        Assert.Equal(201, backend.Status);

        // 5. Create an API key; the key field is shown only once.
        var key = Expect(201, await Post("/admin/v1/keys", """{"name": "dev-key"}""")).GetProperty("key").GetString()!;

        // 6. Non-streaming.
        var chat = Expect(200, await Chat(key));
        Assert.Equal("chat.completion", chat.GetProperty("object").GetString());
        Assert.Equal("llama-3", chat.GetProperty("model").GetString());
        Assert.False(string.IsNullOrEmpty(chat.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()));
        Assert.True(chat.GetProperty("usage").GetProperty("total_tokens").GetInt32() > 0);
        Assert.Equal(SeedModelId, JsonDocument.Parse(Sim.Captured.Last().Body).RootElement.GetProperty("model").GetString());

        // 6. Streaming: every chunk carries the alias; the stream ends with [DONE].
        var stream = await Chat(key, stream: true);
        Assert.Equal(200, stream.Status);
        Assert.Equal("text/event-stream", stream.Response.Content.Headers.ContentType?.MediaType);
        var events = stream.Text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => e.Trim()).ToList();
        Assert.Equal("data: [DONE]", events[^1]);
        Assert.True(events.Count > 2);
        var content = "";
        foreach (var e in events[..^1])
        {
            using var chunk = JsonDocument.Parse(e["data: ".Length..]);
            Assert.Equal("llama-3", chunk.RootElement.GetProperty("model").GetString());
            foreach (var choice in chunk.RootElement.GetProperty("choices").EnumerateArray())
                if (choice.GetProperty("delta").TryGetProperty("content", out var c)) content += c.GetString();
        }
        Assert.NotEmpty(content);
    }

    [Fact]
    public async Task No_log_line_holds_the_admin_key_a_plaintext_key_or_a_hash()
    {
        var sink = new MemoryStream();
        await StartGatewayAsync(o => o with { LogLevel = "debug" }, sink);
        var modelId = await ServedModel();
        var (key, keyId) = await CreateKey("""{"name":"logged","rpm_limit":50}""");
        var (other, _) = await CreateKey("""{"name":"other","allowed_models":["nope"]}""");
        Assert.Equal(200, (await Chat(key)).Status);
        Assert.Equal(200, (await Chat(key, stream: true)).Status);
        Assert.Equal(200, (await V1Models(key)).Status);
        Assert.Equal(403, (await Chat(other)).Status);
        Assert.Equal(200, (await Chat(ConfigKey, ConfigModel)).Status);
        Expect(200, await Get($"/admin/v1/keys/{keyId}"));
        Expect(200, await Put($"/admin/v1/keys/{keyId}", """{"rpm_limit":60}"""));
        Assert.Equal(204, (await Delete($"/admin/v1/keys/{keyId}")).Status);
        Assert.Equal(401, (await Chat(key)).Status);
        Assert.Equal(401, (await Admin(HttpMethod.Get, "/admin/v1/keys", adminKey: AdminKey + "-wrong")).Status);
        Assert.Equal(409, (await Put($"/admin/v1/models/{modelId}", """{"name":"cfg-model"}""")).Status);
        await StopGatewayAsync(); // flushes the log

        var log = System.Text.Encoding.UTF8.GetString(sink.ToArray());
        var lines = log.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // The admin calls are logged (method, path, status), so the scan below looks at real lines.
        Assert.Contains(lines, l => l.Contains("\"path\":\"/admin/v1/keys\"", StringComparison.Ordinal) && l.Contains("\"method\":\"POST\"", StringComparison.Ordinal) && l.Contains("\"status\":201", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains($"\"path\":\"/admin/v1/keys/{keyId}\"", StringComparison.Ordinal) && l.Contains("\"status\":204", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("\"path\":\"/admin/v1/keys\"", StringComparison.Ordinal) && l.Contains("\"status\":401", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("\"path\":\"/v1/chat/completions\"", StringComparison.Ordinal) && l.Contains(ApiKey.DisplayPrefix(key), StringComparison.Ordinal));

        foreach (var secret in new[] { AdminKey, AdminKey + "-wrong", key, other, ConfigKey, ApiKey.HashHex(key), ApiKey.HashHex(other), ApiKey.HashHex(ConfigKey) })
            Assert.DoesNotContain(secret, log, StringComparison.OrdinalIgnoreCase);
        foreach (var secret in new[] { key, other, ConfigKey })
            Assert.DoesNotContain(secret[3..], log, StringComparison.OrdinalIgnoreCase); // not even without its ml- prefix
    }
}
