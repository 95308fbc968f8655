using System.Text.Json;
using System.Text.RegularExpressions;
using Gateway.Auth;

namespace Gateway.IntegrationTests.Admin;

/// <summary>Keys: the plaintext once, never a hash, and every change (revoke, expiry, models, limits) effective on the next /v1 call.</summary>
public abstract partial class AdminApiContract
{
    private static readonly string[] KeyFields =
        ["id", "name", "key_prefix", "active", "rpm_limit", "tpm_limit", "allowed_models", "expires_at", "managed_by_config", "created_at", "last_used_at"];

    [Fact]
    public async Task Key_create_shows_the_plaintext_once_and_never_a_hash()
    {
        var reply = await Post("/admin/v1/keys", """{"name":"production-service","rpm_limit":120,"tpm_limit":500000,"allowed_models":["llama-3"],"expires_at":"2035-12-31T23:59:59Z"}""");
        var created = Expect(201, reply);
        Assert.Equal(["key", "api_key"], created.EnumerateObject().Select(p => p.Name));
        var key = created.GetProperty("key").GetString()!;
        Assert.Matches(new Regex("^ml-[0-9a-f]{64}$"), key);
        Assert.True(ApiKey.IsWellFormed(key));
        Assert.Equal("no-store", reply.Response.Headers.CacheControl?.ToString());

        var apiKey = created.GetProperty("api_key");
        Assert.Equal(KeyFields, apiKey.EnumerateObject().Select(p => p.Name));
        Assert.Equal("production-service", apiKey.GetProperty("name").GetString());
        Assert.Equal(key[..11], apiKey.GetProperty("key_prefix").GetString());
        Assert.True(apiKey.GetProperty("active").GetBoolean());
        Assert.Equal(120, apiKey.GetProperty("rpm_limit").GetInt64());
        Assert.Equal(500000, apiKey.GetProperty("tpm_limit").GetInt64());
        Assert.Equal(["llama-3"], apiKey.GetProperty("allowed_models").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal("2035-12-31T23:59:59Z", apiKey.GetProperty("expires_at").GetString());
        Assert.False(apiKey.GetProperty("managed_by_config").GetBoolean());
        AssertRfc3339(apiKey.GetProperty("created_at"));
        Assert.Equal(JsonValueKind.Null, apiKey.GetProperty("last_used_at").ValueKind);

        var id = apiKey.GetProperty("id").GetString()!;
        var got = await Get($"/admin/v1/keys/{id}");
        Assert.Equal(apiKey.GetRawText(), Expect(200, got).GetRawText());
        var list = await Get("/admin/v1/keys");
        Assert.Contains(id, Expect(200, list).EnumerateArray().Select(k => k.GetProperty("id").GetString()));
        foreach (var r in new[] { got, list })
        {
            Assert.DoesNotContain(key, r.Text, StringComparison.Ordinal);
            Assert.DoesNotContain(ApiKey.HashHex(key), r.Text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(ApiKey.HashHex(ConfigKey), r.Text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("hash", r.Text, StringComparison.OrdinalIgnoreCase);
        }

        // A minimal key: no limits (the gateway's defaults), every model, no expiry.
        var minimal = Expect(201, await Post("/admin/v1/keys", """{"name":"dev-key"}""")).GetProperty("api_key");
        Assert.Equal(JsonValueKind.Null, minimal.GetProperty("rpm_limit").ValueKind);
        Assert.Equal(JsonValueKind.Null, minimal.GetProperty("expires_at").ValueKind);
        Assert.Equal("[]", minimal.GetProperty("allowed_models").GetRawText());
    }

    [Fact]
    public async Task Key_update_is_partial_and_null_clears()
    {
        var (_, id) = await CreateKey("""{"name":"k","rpm_limit":10,"tpm_limit":1000,"allowed_models":["a"],"expires_at":"2035-01-01T00:00:00+02:00"}""");
        var renamed = Expect(200, await Put($"/admin/v1/keys/{id}", """{"name":"k2"}"""));
        Assert.Equal("k2", renamed.GetProperty("name").GetString());
        Assert.Equal(10, renamed.GetProperty("rpm_limit").GetInt64());
        Assert.Equal("2034-12-31T22:00:00Z", renamed.GetProperty("expires_at").GetString()); // kept in UTC

        var cleared = Expect(200, await Put($"/admin/v1/keys/{id}", """{"rpm_limit":null,"expires_at":null,"allowed_models":[],"tpm_limit":5}"""));
        Assert.Equal(JsonValueKind.Null, cleared.GetProperty("rpm_limit").ValueKind);
        Assert.Equal(JsonValueKind.Null, cleared.GetProperty("expires_at").ValueKind);
        Assert.Equal("[]", cleared.GetProperty("allowed_models").GetRawText());
        Assert.Equal(5, cleared.GetProperty("tpm_limit").GetInt64());
        Assert.Equal("k2", cleared.GetProperty("name").GetString());
        Assert.Equal(cleared.GetRawText(), Expect(200, await Get($"/admin/v1/keys/{id}")).GetRawText());
    }

    [Fact]
    public async Task Revoke_then_the_next_v1_request_is_401()
    {
        await ServedModel();
        var (key, id) = await CreateKey();
        Assert.Equal(200, (await Chat(key)).Status);
        Assert.Equal(200, (await V1Models(key)).Status);

        var revoked = await Delete($"/admin/v1/keys/{id}");
        Assert.Equal(204, revoked.Status);
        ExpectError(await Chat(key), 401, "invalid_api_key", type: "authentication_error");
        ExpectError(await V1Models(key), 401, "invalid_api_key", type: "authentication_error");
        Assert.False(Expect(200, await Get($"/admin/v1/keys/{id}")).GetProperty("active").GetBoolean()); // kept for audit
        Assert.Equal(204, (await Delete($"/admin/v1/keys/{id}")).Status); // idempotent

        // Re-activated through PUT: works again at once.
        Assert.True(Expect(200, await Put($"/admin/v1/keys/{id}", """{"active":true}""")).GetProperty("active").GetBoolean());
        Assert.Equal(200, (await Chat(key)).Status);
        ExpectError(await Delete($"/admin/v1/keys/{Guid.NewGuid()}"), 404, "not_found");
    }

    [Fact]
    public async Task Expired_keys_are_401()
    {
        await ServedModel();
        var (expired, _) = await CreateKey("""{"name":"old","expires_at":"2020-01-01T00:00:00Z"}""");
        var error = ExpectError(await Chat(expired), 401, "invalid_api_key", type: "authentication_error");
        Assert.Contains("expired", error.GetProperty("message").GetString(), StringComparison.Ordinal);

        var (key, id) = await CreateKey("""{"name":"soon","expires_at":"2099-01-01T00:00:00Z"}""");
        Assert.Equal(200, (await Chat(key)).Status);
        Expect(200, await Put($"/admin/v1/keys/{id}", $$"""{"expires_at":"{{DateTimeOffset.UtcNow.AddSeconds(-1):yyyy-MM-dd'T'HH:mm:ss'Z'}}"}"""));
        ExpectError(await Chat(key), 401, "invalid_api_key", type: "authentication_error");
        Expect(200, await Put($"/admin/v1/keys/{id}", """{"expires_at":null}"""));
        Assert.Equal(200, (await Chat(key)).Status);
    }

    [Fact]
    public async Task Allowed_models_filter_v1_models_and_forbid_chat()
    {
        await ServedModel();
        var (key, id) = await CreateKey("""{"name":"llama-only","allowed_models":["llama-3"]}""");
        var models = Expect(200, await V1Models(key));
        Assert.Equal(["llama-3"], models.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        Assert.Equal(200, (await Chat(key)).Status);
        ExpectError(await Chat(key, ConfigModel), 403, "model_not_allowed", "model", type: "permission_error");

        Expect(200, await Put($"/admin/v1/keys/{id}", """{"allowed_models":[]}""")); // [] = every model
        Assert.Equal([ConfigModel, "llama-3"], Expect(200, await V1Models(key)).GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        Assert.Equal(200, (await Chat(key, ConfigModel)).Status);
    }

    [Fact]
    public async Task Key_limits_apply_on_the_next_request()
    {
        await ServedModel();
        var (key, id) = await CreateKey("""{"name":"limited","rpm_limit":2}""");
        Assert.Equal(200, (await Chat(key)).Status);
        Assert.Equal(200, (await Chat(key)).Status);
        ExpectError(await Chat(key), 429, "rate_limit_exceeded", type: "rate_limit_error");
        Expect(200, await Put($"/admin/v1/keys/{id}", """{"rpm_limit":100}"""));
        Assert.Equal(200, (await Chat(key)).Status);
    }
}
