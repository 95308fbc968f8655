using System.Text.Json;

namespace Gateway.IntegrationTests.Admin;

/// <summary>Models and backends: every route's happy path, in the seed's shapes, and read-your-writes on /v1.</summary>
public abstract partial class AdminApiContract
{
    [Fact]
    public async Task Model_create_get_update_delete()
    {
        var created = await CreateModel(extra: """
            ,"active":true,"default_params":{"temperature":0.7,"max_tokens":4096},"reasoning_config":{"enabled":true},
            "transforms":{"system_prompt_prefix":"You are a helpful assistant."},"rate_limits":{"rpm":100}
            """);
        var id = created.GetProperty("id").GetString()!;
        Assert.True(Guid.TryParseExact(id, "D", out _), id);
        Assert.Equal("llama-3", created.GetProperty("name").GetString());
        Assert.Equal(SeedModelId, created.GetProperty("model_id").GetString());
        Assert.True(created.GetProperty("active").GetBoolean());
        Assert.Equal(0.7, created.GetProperty("default_params").GetProperty("temperature").GetDouble());
        Assert.Equal(4096, created.GetProperty("default_params").GetProperty("max_tokens").GetInt32());
        Assert.True(created.GetProperty("reasoning_config").GetProperty("enabled").GetBoolean());
        Assert.Equal("You are a helpful assistant.", created.GetProperty("transforms").GetProperty("system_prompt_prefix").GetString());
        Assert.Equal(100, created.GetProperty("rate_limits").GetProperty("rpm").GetInt32());
        Assert.False(created.GetProperty("managed_by_config").GetBoolean());
        Assert.Equal(JsonValueKind.Array, created.GetProperty("backends").ValueKind);
        Assert.Equal(0, created.GetProperty("backends").GetArrayLength());
        AssertRfc3339(created.GetProperty("created_at"));
        AssertRfc3339(created.GetProperty("updated_at"));

        var got = Expect(200, await Get($"/admin/v1/models/{id}"));
        Assert.Equal(created.GetRawText(), got.GetRawText());

        // PUT is partial: only the fields sent change.
        var updated = Expect(200, await Put($"/admin/v1/models/{id}", """{"model_id":"other/model","reasoning_config":{"enable_thinking":false}}"""));
        Assert.Equal("llama-3", updated.GetProperty("name").GetString());
        Assert.Equal("other/model", updated.GetProperty("model_id").GetString());
        Assert.False(updated.GetProperty("reasoning_config").GetProperty("enable_thinking").GetBoolean());
        Assert.False(updated.GetProperty("reasoning_config").TryGetProperty("enabled", out _));
        Assert.Equal(4096, updated.GetProperty("default_params").GetProperty("max_tokens").GetInt32());
        Assert.Equal(created.GetProperty("created_at").GetString(), updated.GetProperty("created_at").GetString());
        Assert.True(DateTimeOffset.Parse(updated.GetProperty("updated_at").GetString()!) >= DateTimeOffset.Parse(created.GetProperty("updated_at").GetString()!));

        var renamed = Expect(200, await Put($"/admin/v1/models/{id}", """{"name":"llama-3.1"}"""));
        Assert.Equal("llama-3.1", renamed.GetProperty("name").GetString());

        var list = Expect(200, await Get("/admin/v1/models"));
        Assert.Equal([ConfigModel, "llama-3.1"], list.EnumerateArray().Select(m => m.GetProperty("name").GetString()));

        var deleted = await Delete($"/admin/v1/models/{id}");
        Assert.Equal(204, deleted.Status);
        Assert.Equal("", deleted.Text);
        ExpectError(await Get($"/admin/v1/models/{id}"), 404, "not_found");
        ExpectError(await Delete($"/admin/v1/models/{id}"), 404, "not_found");
        Assert.Equal([ConfigModel], Expect(200, await Get("/admin/v1/models")).EnumerateArray().Select(m => m.GetProperty("name").GetString()));
    }

    [Fact]
    public async Task Lists_are_empty_arrays_without_any_entry()
    {
        await StopGatewayAsync();
        await ResetStoreAsync();
        await StartGatewayAsync(o => o with { Models = [], Keys = [] });
        Assert.Equal("[]", (await Get("/admin/v1/models")).Text);
        Assert.Equal("[]", (await Get("/admin/v1/keys")).Text);
    }

    [Fact]
    public async Task Backend_add_update_delete()
    {
        var modelId = (await CreateModel()).GetProperty("id").GetString()!;
        var backend = await AddBackend(modelId, Sim.BaseUrl + "/", weight: 3);
        var bid = backend.GetProperty("id").GetString()!;
        Assert.True(Guid.TryParseExact(bid, "D", out _));
        Assert.Equal(modelId, backend.GetProperty("model_id").GetString());
        Assert.Equal(Sim.BaseUrl.TrimEnd('/'), backend.GetProperty("url").GetString()); // stored without the trailing slash
        Assert.Equal(3, backend.GetProperty("weight").GetInt32());
        Assert.True(backend.GetProperty("active").GetBoolean());
        Assert.True(backend.GetProperty("healthy").GetBoolean());
        AssertRfc3339(backend.GetProperty("created_at"));

        // Weight defaults to 1; the model shows its backends, ordered by url.
        var second = Expect(201, await Post($"/admin/v1/models/{modelId}/backends", """{"url":"http://10.0.0.9:8000","active":false}"""));
        Assert.Equal(1, second.GetProperty("weight").GetInt32());
        Assert.False(second.GetProperty("active").GetBoolean());
        var model = Expect(200, await Get($"/admin/v1/models/{modelId}"));
        Assert.Equal(["http://10.0.0.9:8000", Sim.BaseUrl.TrimEnd('/')], model.GetProperty("backends").EnumerateArray().Select(b => b.GetProperty("url").GetString()));

        var updated = Expect(200, await Put($"/admin/v1/models/{modelId}/backends/{bid}", """{"weight":7}"""));
        Assert.Equal(7, updated.GetProperty("weight").GetInt32());
        Assert.Equal(Sim.BaseUrl.TrimEnd('/'), updated.GetProperty("url").GetString());
        Assert.True(updated.GetProperty("active").GetBoolean());

        Assert.Equal(204, (await Delete($"/admin/v1/models/{modelId}/backends/{bid}")).Status);
        ExpectError(await Delete($"/admin/v1/models/{modelId}/backends/{bid}"), 404, "not_found");
        model = Expect(200, await Get($"/admin/v1/models/{modelId}"));
        Assert.Equal(["http://10.0.0.9:8000"], model.GetProperty("backends").EnumerateArray().Select(b => b.GetProperty("url").GetString()));
    }

    [Fact]
    public async Task A_backend_id_under_another_model_is_not_found()
    {
        var a = (await CreateModel("a")).GetProperty("id").GetString()!;
        var b = (await CreateModel("b")).GetProperty("id").GetString()!;
        var backendOfA = (await AddBackend(a)).GetProperty("id").GetString()!;

        ExpectError(await Put($"/admin/v1/models/{b}/backends/{backendOfA}", """{"weight":2}"""), 404, "not_found");
        ExpectError(await Delete($"/admin/v1/models/{b}/backends/{backendOfA}"), 404, "not_found");
        var stillThere = Expect(200, await Get($"/admin/v1/models/{a}")).GetProperty("backends").EnumerateArray().Single();
        Assert.Equal(1, stillThere.GetProperty("weight").GetInt32());
    }

    [Fact]
    public async Task Duplicate_names_and_urls_are_conflicts()
    {
        await CreateModel("a");
        var b = (await CreateModel("b")).GetProperty("id").GetString()!;
        ExpectError(await Post("/admin/v1/models", """{"name":"a","model_id":"x"}"""), 409, "conflict", "name");
        ExpectError(await Post("/admin/v1/models", $$"""{"name":"{{ConfigModel}}","model_id":"x"}"""), 409, "conflict", "name");
        ExpectError(await Put($"/admin/v1/models/{b}", """{"name":"a"}"""), 409, "conflict", "name"); // rename onto an existing name
        Assert.Equal("b", Expect(200, await Put($"/admin/v1/models/{b}", """{"name":"b"}""")).GetProperty("name").GetString()); // onto itself: fine

        await AddBackend(b, "http://10.0.0.1:8000");
        ExpectError(await Post($"/admin/v1/models/{b}/backends", """{"url":"http://10.0.0.1:8000/"}"""), 409, "conflict", "url");
        var other = (await AddBackend(b, "http://10.0.0.2:8000")).GetProperty("id").GetString()!;
        ExpectError(await Put($"/admin/v1/models/{b}/backends/{other}", """{"url":"http://10.0.0.1:8000"}"""), 409, "conflict", "url");
        Assert.Equal(["a", "b", ConfigModel], Expect(200, await Get("/admin/v1/models")).EnumerateArray().Select(m => m.GetProperty("name").GetString()));
    }

    [Fact]
    public async Task Model_and_backend_changes_reach_v1_on_the_next_request()
    {
        var modelId = await ServedModel();
        var (key, _) = await CreateKey();
        Assert.Equal(200, (await Chat(key)).Status);

        // Deactivated model: 404 at once; back again: 200.
        Expect(200, await Put($"/admin/v1/models/{modelId}", """{"active":false}"""));
        ExpectError(await Chat(key), 404, "model_not_found", "model");
        Expect(200, await Put($"/admin/v1/models/{modelId}", """{"active":true}"""));
        Assert.Equal(200, (await Chat(key)).Status);

        // Its only backend deactivated: no backend to send to.
        var bid = Expect(200, await Get($"/admin/v1/models/{modelId}")).GetProperty("backends")[0].GetProperty("id").GetString()!;
        Expect(200, await Put($"/admin/v1/models/{modelId}/backends/{bid}", """{"active":false}"""));
        ExpectError(await Chat(key), 503, "no_healthy_backend", type: "service_unavailable");
        Expect(200, await Put($"/admin/v1/models/{modelId}/backends/{bid}", """{"active":true}"""));

        // Transforms apply: the default params reach the upstream.
        Expect(200, await Put($"/admin/v1/models/{modelId}", """{"default_params":{"temperature":0.25}}"""));
        Sim.ClearCaptured();
        Assert.Equal(200, (await Chat(key)).Status);
        using (var sent = JsonDocument.Parse(Sim.Captured.Last().Body))
        {
            Assert.Equal(0.25, sent.RootElement.GetProperty("temperature").GetDouble());
            Assert.Equal(SeedModelId, sent.RootElement.GetProperty("model").GetString());
        }

        // Renamed: the old alias is gone, the new one answers.
        Expect(200, await Put($"/admin/v1/models/{modelId}", """{"name":"llama-renamed"}"""));
        ExpectError(await Chat(key), 404, "model_not_found", "model");
        var renamed = await Chat(key, "llama-renamed");
        Assert.Equal("llama-renamed", Expect(200, renamed).GetProperty("model").GetString());

        Assert.Equal(204, (await Delete($"/admin/v1/models/{modelId}")).Status);
        ExpectError(await Chat(key, "llama-renamed"), 404, "model_not_found", "model");
    }

    [Fact]
    public async Task Writes_survive_a_restart()
    {
        var modelId = await ServedModel();
        var (key, keyId) = await CreateKey();
        await StartGatewayAsync();
        Assert.Single(Expect(200, await Get($"/admin/v1/models/{modelId}")).GetProperty("backends").EnumerateArray());
        Assert.Equal("dev-key", Expect(200, await Get($"/admin/v1/keys/{keyId}")).GetProperty("name").GetString());
        Assert.Equal(200, (await Chat(key)).Status);
    }

    [Fact]
    public async Task The_balancer_is_chosen_through_transforms_lb()
    {
        var created = await CreateModel(extra: ""","transforms":{"lb":"p2c"}""");
        Assert.Equal("p2c", created.GetProperty("transforms").GetProperty("lb").GetString());
        Assert.IsType<Gateway.Routing.LeastOutstanding>(Gateway.Snapshots.Current!.FindModel("llama-3")!.Balancer);

        var id = created.GetProperty("id").GetString()!;
        Expect(200, await Put($"/admin/v1/models/{id}", """{"transforms":{"lb":"wrr"}}"""));
        Assert.IsType<Gateway.Routing.SmoothWeightedRoundRobin>(Gateway.Snapshots.Current!.FindModel("llama-3")!.Balancer);
    }
}
