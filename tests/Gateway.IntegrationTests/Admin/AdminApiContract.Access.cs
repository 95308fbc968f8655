namespace Gateway.IntegrationTests.Admin;

/// <summary>Who may call the admin API, what gateway.toml keeps for itself, and a store that went away.</summary>
public abstract partial class AdminApiContract
{
    [Fact]
    public async Task Missing_or_wrong_admin_key_is_401_before_anything_else()
    {
        var modelId = (await CreateModel()).GetProperty("id").GetString()!;
        foreach (var key in new string?[] { null, "", "wrong", AdminKey + "x", AdminKey[..^1], AdminKey.ToUpperInvariant(), " " + AdminKey + "x" })
        {
            ExpectError(await Admin(HttpMethod.Get, "/admin/v1/models", adminKey: key), 401, "invalid_admin_key", type: "authentication_error");
            ExpectError(await Admin(HttpMethod.Delete, $"/admin/v1/models/{modelId}", adminKey: key), 401, "invalid_admin_key", type: "authentication_error");
            ExpectError(await Admin(HttpMethod.Post, "/admin/v1/keys", """{"name":"x"}""", adminKey: key), 401, "invalid_admin_key", type: "authentication_error");
            // Unknown routes and wrong methods are not revealed without the key either.
            ExpectError(await Admin(HttpMethod.Get, "/admin/v1/nope", adminKey: key), 401, "invalid_admin_key", type: "authentication_error");
            ExpectError(await Admin(HttpMethod.Patch, "/admin/v1/models", "{}", adminKey: key), 401, "invalid_admin_key", type: "authentication_error");
        }

        using var twice = new HttpRequestMessage(HttpMethod.Get, "/admin/v1/models");
        twice.Headers.TryAddWithoutValidation("X-Admin-Key", [AdminKey, AdminKey]);
        using var response = await Client.SendAsync(twice);
        Assert.Equal(401, (int)response.StatusCode);

        // Nothing was changed by any of it; the right key still works, and an admin key is no API key.
        Assert.Equal(["cfg-model", "llama-3"], Expect(200, await Get("/admin/v1/models")).EnumerateArray().Select(m => m.GetProperty("name").GetString()));
        Assert.Single(Expect(200, await Get("/admin/v1/keys")).EnumerateArray());
        ExpectError(await Chat(AdminKey, ConfigModel), 401, "invalid_api_key", type: "authentication_error");
    }

    [Fact]
    public async Task Without_an_admin_key_the_admin_api_is_off_and_v1_serves_on()
    {
        foreach (var disabled in new[] { null, "", "   " })
        {
            await StartGatewayAsync(o => o with { AdminKey = disabled });
            Assert.False(Gateway.Admin.Enabled);
            Assert.Contains("disabled", Gateway.Admin.Status, StringComparison.Ordinal);
            foreach (var key in new string?[] { null, "", AdminKey, "anything" })
            {
                var error = ExpectError(await Admin(HttpMethod.Get, "/admin/v1/models", adminKey: key), 404, "admin_api_disabled");
                Assert.Contains("admin_key", error.GetProperty("message").GetString(), StringComparison.Ordinal);
                ExpectError(await Admin(HttpMethod.Post, "/admin/v1/keys", """{"name":"x"}""", adminKey: key), 404, "admin_api_disabled");
            }
            Assert.Equal(200, (await Chat(ConfigKey, ConfigModel)).Status);
        }
    }

    [Fact]
    public async Task Config_entries_can_be_read_but_not_changed()
    {
        var models = Expect(200, await Get("/admin/v1/models")).EnumerateArray().ToList();
        var cfg = Assert.Single(models);
        Assert.Equal(ConfigModel, cfg.GetProperty("name").GetString());
        Assert.True(cfg.GetProperty("managed_by_config").GetBoolean());
        var id = cfg.GetProperty("id").GetString()!;
        var bid = cfg.GetProperty("backends")[0].GetProperty("id").GetString()!;
        Assert.True(Expect(200, await Get($"/admin/v1/models/{id}")).GetProperty("managed_by_config").GetBoolean());

        var error = ExpectError(await Put($"/admin/v1/models/{id}", """{"active":false}"""), 409, "managed_by_config");
        Assert.Contains("gateway.toml", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        ExpectError(await Delete($"/admin/v1/models/{id}"), 409, "managed_by_config");
        ExpectError(await Post($"/admin/v1/models/{id}/backends", """{"url":"http://10.0.0.1:8000"}"""), 409, "managed_by_config");
        ExpectError(await Put($"/admin/v1/models/{id}/backends/{bid}", """{"weight":5}"""), 409, "managed_by_config");
        ExpectError(await Delete($"/admin/v1/models/{id}/backends/{bid}"), 409, "managed_by_config");

        var cfgKey = Assert.Single(Expect(200, await Get("/admin/v1/keys")).EnumerateArray());
        Assert.True(cfgKey.GetProperty("managed_by_config").GetBoolean());
        Assert.Equal(ConfigKey[..11], cfgKey.GetProperty("key_prefix").GetString());
        var keyId = cfgKey.GetProperty("id").GetString()!;
        ExpectError(await Put($"/admin/v1/keys/{keyId}", """{"rpm_limit":1}"""), 409, "managed_by_config");
        ExpectError(await Delete($"/admin/v1/keys/{keyId}"), 409, "managed_by_config");

        // Untouched: the model still routes, the key still works, nothing changed in the store.
        Assert.Equal(200, (await Chat(ConfigKey, ConfigModel)).Status);
        var after = Expect(200, await Get($"/admin/v1/models/{id}"));
        Assert.True(after.GetProperty("active").GetBoolean());
        Assert.Equal(1, after.GetProperty("backends").GetArrayLength());
        Assert.True(Expect(200, await Get($"/admin/v1/keys/{keyId}")).GetProperty("active").GetBoolean());

        // An entry dropped from gateway.toml is the admin API's from the next start on.
        await StartGatewayAsync(o => o with { Models = [], Keys = [] });
        Assert.False(Expect(200, await Get($"/admin/v1/models/{id}")).GetProperty("managed_by_config").GetBoolean());
        Assert.False(Expect(200, await Put($"/admin/v1/models/{id}", """{"active":false}""")).GetProperty("active").GetBoolean());
        Assert.Equal(204, (await Delete($"/admin/v1/keys/{keyId}")).Status);
    }

    [Fact]
    public async Task A_store_that_went_away_is_503_while_v1_serves_on()
    {
        await ServedModel();
        var (key, keyId) = await CreateKey();
        await BreakStoreAsync();

        foreach (var reply in new[]
                 {
                     await Post("/admin/v1/models", """{"name":"new","model_id":"x"}"""),
                     await Post("/admin/v1/keys", """{"name":"new"}"""),
                     await Delete($"/admin/v1/keys/{keyId}"),
                 })
        {
            var error = ExpectError(reply, 503, "store_unavailable", type: "service_unavailable");
            Assert.Contains("unavailable", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        }
        // The data plane serves from its snapshot: the key created before, and not revoked, still works.
        Assert.Equal(200, (await Chat(key)).Status);
        Assert.Equal(200, (await Chat(ConfigKey, ConfigModel)).Status);
    }
}
