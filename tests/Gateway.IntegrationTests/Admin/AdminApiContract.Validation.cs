using System.Text;

namespace Gateway.IntegrationTests.Admin;

/// <summary>Bad input: the right 4xx, OpenAI-shaped, naming the field; nothing is written; never a 500.</summary>
public abstract partial class AdminApiContract
{
    private static readonly string LongName = new('n', 201);

    public static TheoryData<string, int, string, string?> BadModels => new()
    {
        // body, status, code, param
        { "{}", 400, "validation_error", "name" },
        { """{"model_id":"x"}""", 400, "validation_error", "name" },
        { """{"name":"","model_id":"x"}""", 400, "validation_error", "name" },
        { """{"name":"   ","model_id":"x"}""", 400, "validation_error", "name" },
        { """{"name":" padded","model_id":"x"}""", 400, "validation_error", "name" },
        { $$"""{"name":"{{LongName}}","model_id":"x"}""", 400, "validation_error", "name" },
        { """{"name":5,"model_id":"x"}""", 400, "validation_error", "name" },
        { """{"name":null,"model_id":"x"}""", 400, "validation_error", "name" },
        { """{"name":"m"}""", 400, "validation_error", "model_id" },
        { """{"name":"m","model_id":""}""", 400, "validation_error", "model_id" },
        { """{"name":"m","model_id":["x"]}""", 400, "validation_error", "model_id" },
        { """{"name":"m","model_id":"x","active":"yes"}""", 400, "validation_error", "active" },
        { """{"name":"m","model_id":"x","active":1}""", 400, "validation_error", "active" },
        { """{"name":"m","model_id":"x","default_params":[1]}""", 400, "validation_error", "default_params" },
        { """{"name":"m","model_id":"x","default_params":"{}"}""", 400, "validation_error", "default_params" },
        { """{"name":"m","model_id":"x","default_params":null}""", 400, "validation_error", "default_params" },
        { """{"name":"m","model_id":"x","default_params":{"model":"y"}}""", 400, "validation_error", "default_params.model" },
        { """{"name":"m","model_id":"x","default_params":{"stream":true}}""", 400, "validation_error", "default_params.stream" },
        { """{"name":"m","model_id":"x","default_params":{"top_p":1,"top_p":2}}""", 400, "validation_error", "default_params.top_p" },
        { """{"name":"m","model_id":"x","reasoning_config":true}""", 400, "validation_error", "reasoning_config" },
        { """{"name":"m","model_id":"x","reasoning_config":{"enabled":"yes"}}""", 400, "validation_error", "reasoning_config.enabled" },
        { """{"name":"m","model_id":"x","reasoning_config":{"think":true}}""", 400, "validation_error", "reasoning_config.think" },
        { """{"name":"m","model_id":"x","transforms":[]}""", 400, "validation_error", "transforms" },
        { """{"name":"m","model_id":"x","transforms":{"system_prompt_prefix":1}}""", 400, "validation_error", "transforms.system_prompt_prefix" },
        { """{"name":"m","model_id":"x","transforms":{"rewrite":true}}""", 400, "validation_error", "transforms.rewrite" },
        { """{"name":"m","model_id":"x","transforms":{"lb":"random"}}""", 400, "validation_error", "transforms.lb" },
        { """{"name":"m","model_id":"x","transforms":{"lb":2}}""", 400, "validation_error", "transforms.lb" },
        { """{"name":"m","model_id":"x","rate_limits":5}""", 400, "validation_error", "rate_limits" },
        { """{"name":"\ud800","model_id":"x"}""", 400, "validation_error", "name" },
        { """{"name":"m","model_id":"x","default_params":{"stop":["\udfff"]}}""", 400, "validation_error", "default_params" },
        { """{"name":"m","model_id":"x","default_params":{"\ud800":1}}""", 400, "validation_error", "default_params" },
        { """{"name":"m","model_id":"x","rate_limits":{"rpm":-1}}""", 400, "validation_error", "rate_limits.rpm" },
        { """{"name":"m","model_id":"x","rate_limits":{"tpm":1.5}}""", 400, "validation_error", "rate_limits.tpm" },
        { """{"name":"m","model_id":"x","rate_limits":{"rph":1}}""", 400, "validation_error", "rate_limits.rph" },
        { """{"name":"m","model_id":"x","colour":"red"}""", 400, "validation_error", "colour" },
        { """{"name":"m","model_id":"x","id":"6f1c2b1e-0000-4000-8000-000000000000"}""", 400, "validation_error", "id" },
        { """{"name":"m","model_id":"x","name":"n"}""", 400, "validation_error", "name" },
        { "{\"name\":\"has\\nnewline\",\"model_id\":\"x\"}", 400, "validation_error", "name" },
        { "not json", 400, "validation_error", null },
        { """{"name":"m","model_id":"x" """, 400, "validation_error", null },
        { "", 400, "validation_error", null },
        { "[1,2]", 400, "validation_error", null },
        { "\"just a string\"", 400, "validation_error", null },
        { "null", 400, "validation_error", null },
    };

    [Theory]
    [MemberData(nameof(BadModels))]
    public async Task Bad_model_bodies_are_refused(string body, int status, string code, string? param)
    {
        ExpectError(await Post("/admin/v1/models", body), status, code, param);
        var id = (await CreateModel("target")).GetProperty("id").GetString()!;
        if (body is not ("{}" or """{"model_id":"x"}""" or """{"name":"m"}""")) // bodies valid as a partial update
            ExpectError(await Put($"/admin/v1/models/{id}", body), status, code, param);
        var models = Expect(200, await Get("/admin/v1/models")).EnumerateArray().ToList();
        Assert.Equal([ConfigModel, "target"], models.Select(m => m.GetProperty("name").GetString()));
        Assert.Equal(SeedModelId, models[1].GetProperty("model_id").GetString());
    }

    [Fact]
    public async Task Invalid_json_is_told_by_where_it_breaks_not_by_the_parsers_words()
    {
        var error = ExpectError(await Post("/admin/v1/models", "{\"name\":\"m\",\n  bad}"), 400, "validation_error");
        Assert.Equal("The request body is not valid JSON (line 2, byte 3).", error.GetProperty("message").GetString());
    }

    public static TheoryData<string, string?> BadBackends => new()
    {
        // body, param
        { "{}", "url" },
        { """{"url":""}""", "url" },
        { """{"url":5}""", "url" },
        { """{"url":"ftp://10.0.0.1:8000"}""", "url" },
        { """{"url":"localhost:8000"}""", "url" },
        { """{"url":"/v1"}""", "url" },
        { """{"url":"http://"}""", "url" },
        { """{"url":"http://10.0.0.1:8000?x=1"}""", "url" },
        { """{"url":"http://user:pw@10.0.0.1:8000"}""", "url" },
        { """{"url":"http://10.0.0.1:8000","weight":0}""", "weight" },
        { """{"url":"http://10.0.0.1:8000","weight":-3}""", "weight" },
        { """{"url":"http://10.0.0.1:8000","weight":1000001}""", "weight" },
        { """{"url":"http://10.0.0.1:8000","weight":99999999999}""", "weight" },
        { """{"url":"http://10.0.0.1:8000","weight":1.5}""", "weight" },
        { """{"url":"http://10.0.0.1:8000","weight":"2"}""", "weight" },
        { """{"url":"http://10.0.0.1:8000","weight":null}""", "weight" },
        { """{"url":"http://10.0.0.1:8000","active":"no"}""", "active" },
        { """{"url":"http://10.0.0.1:8000","healthy":false}""", "healthy" },
        { "[]", null },
        { "{", null },
    };

    [Theory]
    [MemberData(nameof(BadBackends))]
    public async Task Bad_backend_bodies_are_refused(string body, string? param)
    {
        var modelId = (await CreateModel()).GetProperty("id").GetString()!;
        ExpectError(await Post($"/admin/v1/models/{modelId}/backends", body), 400, "validation_error", param);
        var bid = (await AddBackend(modelId, "http://10.0.0.7:8000", 2)).GetProperty("id").GetString()!;
        if (body != "{}") ExpectError(await Put($"/admin/v1/models/{modelId}/backends/{bid}", body), 400, "validation_error", param);
        var backend = Expect(200, await Get($"/admin/v1/models/{modelId}")).GetProperty("backends").EnumerateArray().Single();
        Assert.Equal("http://10.0.0.7:8000", backend.GetProperty("url").GetString());
        Assert.Equal(2, backend.GetProperty("weight").GetInt32());
    }

    public static TheoryData<string, string?> BadKeys => new()
    {
        // body, param
        { "{}", "name" },
        { """{"name":""}""", "name" },
        { """{"name":false}""", "name" },
        { """{"name":"k\u0007"}""", "name" },
        { """{"name":"k","rpm_limit":0}""", "rpm_limit" },
        { """{"name":"k","rpm_limit":-5}""", "rpm_limit" },
        { """{"name":"k","rpm_limit":"10"}""", "rpm_limit" },
        { """{"name":"k","rpm_limit":1.5}""", "rpm_limit" },
        { """{"name":"k","rpm_limit":99999999999999999999}""", "rpm_limit" },
        { """{"name":"k","tpm_limit":0}""", "tpm_limit" },
        { """{"name":"k","tpm_limit":{}}""", "tpm_limit" },
        { """{"name":"k","allowed_models":"llama-3"}""", "allowed_models" },
        { """{"name":"k","allowed_models":[1]}""", "allowed_models" },
        { """{"name":"k","allowed_models":[""]}""", "allowed_models" },
        { """{"name":"k","allowed_models":null}""", "allowed_models" },
        { """{"name":"k","expires_at":"2030-12-31"}""", "expires_at" },
        { """{"name":"k","expires_at":"2030-12-31T23:59:59"}""", "expires_at" },
        { """{"name":"k","expires_at":"tomorrow"}""", "expires_at" },
        { """{"name":"k","expires_at":1893456000}""", "expires_at" },
        { """{"name":"k","expires_at":"2030-02-30T00:00:00Z"}""", "expires_at" },
        { """{"name":"k","key":"ml-0000000000000000000000000000000000000000000000000000000000000002"}""", "key" },
        { """{"name":"k","key_hash":"00"}""", "key_hash" },
        { """{"name":"k","rpm":10}""", "rpm" },
        // Escaped halves of surrogate pairs: valid JSON, no text (were 500s)
        { """{"name":"\udc00"}""", "name" },
        { """{"name":"k","allowed_models":["a\ud800"]}""", "allowed_models" },
        { """{"name":"k","expires_at":"\ud800"}""", "expires_at" },
        { """{"\ud800":1}""", null },
        { "{\"name\":\"k\"} trailing", null },
    };

    [Theory]
    [MemberData(nameof(BadKeys))]
    public async Task Bad_key_bodies_are_refused(string body, string? param)
    {
        ExpectError(await Post("/admin/v1/keys", body), 400, "validation_error", param);
        var (_, id) = await CreateKey("""{"name":"target","rpm_limit":7}""");
        if (body is not ("{}" or """{"name":"k","key_hash":"00"}""" or """{"name":"k","key":"ml-0000000000000000000000000000000000000000000000000000000000000002"}"""))
            ExpectError(await Put($"/admin/v1/keys/{id}", body), 400, "validation_error", param);
        var key = Expect(200, await Get("/admin/v1/keys")).EnumerateArray().Single(k => !k.GetProperty("managed_by_config").GetBoolean());
        Assert.Equal("target", key.GetProperty("name").GetString());
        Assert.Equal(7, key.GetProperty("rpm_limit").GetInt64());
    }

    [Fact]
    public async Task Key_fields_that_only_exist_on_update_are_unknown_on_create()
    {
        ExpectError(await Post("/admin/v1/keys", """{"name":"k","active":false}"""), 400, "validation_error", "active");
        var (_, id) = await CreateKey();
        ExpectError(await Put($"/admin/v1/keys/{id}", """{"key_prefix":"ml-1234"}"""), 400, "validation_error", "key_prefix");
    }

    [Fact]
    public async Task Malformed_and_unknown_ids_are_404_never_500()
    {
        var modelId = (await CreateModel()).GetProperty("id").GetString()!;
        var unknown = Guid.NewGuid().ToString();
        foreach (var bad in new[] { "not-a-uuid", "123", unknown, "6F1C2B1E-0000-4000-8000-00000000000Z", new string('a', 300) })
        {
            ExpectError(await Get($"/admin/v1/models/{bad}"), 404, "not_found");
            ExpectError(await Put($"/admin/v1/models/{bad}", """{"active":false}"""), 404, "not_found");
            ExpectError(await Delete($"/admin/v1/models/{bad}"), 404, "not_found");
            ExpectError(await Post($"/admin/v1/models/{bad}/backends", """{"url":"http://10.0.0.1:8000"}"""), 404, "not_found");
            ExpectError(await Put($"/admin/v1/models/{modelId}/backends/{bad}", """{"weight":2}"""), 404, "not_found");
            ExpectError(await Delete($"/admin/v1/models/{modelId}/backends/{bad}"), 404, "not_found");
            ExpectError(await Get($"/admin/v1/keys/{bad}"), 404, "not_found");
            ExpectError(await Put($"/admin/v1/keys/{bad}", """{"name":"x"}"""), 404, "not_found");
            ExpectError(await Delete($"/admin/v1/keys/{bad}"), 404, "not_found");
        }
    }

    [Fact]
    public async Task Unknown_paths_are_404_and_wrong_methods_405_with_allow()
    {
        var modelId = (await CreateModel()).GetProperty("id").GetString()!;
        var bid = (await AddBackend(modelId)).GetProperty("id").GetString()!;
        foreach (var path in new[] { "/admin/v1/nope", "/admin/v1/models/", "/admin/v1//models", "/admin/v2/models", "/admin/v1", "/admin/",
                     $"/admin/v1/models/{modelId}/backend", $"/admin/v1/models/{modelId}/backends/{bid}/x", "/admin/v1/keys/a/b" })
            ExpectError(await Get(path), 404, "not_found");

        async Task NotAllowed(HttpMethod method, string path, string allow)
        {
            var reply = await Admin(method, path, method == HttpMethod.Get || method == HttpMethod.Delete ? null : "{}");
            ExpectError(reply, 405, "method_not_allowed");
            Assert.Equal(allow, string.Join(", ", reply.Response.Content.Headers.Allow));
        }
        await NotAllowed(HttpMethod.Delete, "/admin/v1/models", "GET, POST");
        await NotAllowed(HttpMethod.Patch, $"/admin/v1/models/{modelId}", "GET, PUT, DELETE");
        await NotAllowed(HttpMethod.Post, $"/admin/v1/models/{modelId}", "GET, PUT, DELETE");
        await NotAllowed(HttpMethod.Get, $"/admin/v1/models/{modelId}/backends", "POST");
        await NotAllowed(HttpMethod.Get, $"/admin/v1/models/{modelId}/backends/{bid}", "PUT, DELETE");
        await NotAllowed(HttpMethod.Put, "/admin/v1/keys", "GET, POST");
        await NotAllowed(HttpMethod.Post, $"/admin/v1/keys/{Guid.NewGuid()}", "GET, PUT, DELETE");
        Assert.Equal(200, (await Get($"/admin/v1/models/{modelId}")).Status); // nothing was changed by any of it
    }

    [Theory]
    [InlineData("text/plain", 415, "unsupported_media_type")]
    [InlineData("application/x-www-form-urlencoded", 415, "unsupported_media_type")]
    [InlineData("application/json; charset=utf-8", 201, null)]
    [InlineData("application/merge-patch+json", 201, null)]
    public async Task Only_json_bodies_are_read(string contentType, int status, string? code)
    {
        var reply = await Admin(HttpMethod.Post, "/admin/v1/models", """{"name":"m","model_id":"x"}""", contentType: contentType);
        if (code is null) Expect(status, reply);
        else ExpectError(reply, status, code);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Bodies_over_one_mebibyte_are_413(bool declaredLength)
    {
        var body = Encoding.UTF8.GetBytes($$$"""{"name":"big","model_id":"x","default_params":{"pad":"{{{new string('x', 1 << 20)}}}"}}""");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/v1/models")
        {
            Content = declaredLength ? new ByteArrayContent(body) : new StreamContent(new ChunkedStream(body)),
        };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.TryAddWithoutValidation("X-Admin-Key", AdminKey);
        using var response = await Client.SendAsync(request);
        ExpectError(new Reply((int)response.StatusCode, await response.Content.ReadAsStringAsync(), response), 413, "request_too_large");
        Assert.DoesNotContain("big", (await Get("/admin/v1/models")).Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_utf8_is_a_400()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/v1/models")
        {
            Content = new ByteArrayContent([.. Encoding.ASCII.GetBytes("{\"name\":\"m"), 0xff, .. Encoding.ASCII.GetBytes("\",\"model_id\":\"x\"}")]),
        };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.TryAddWithoutValidation("X-Admin-Key", AdminKey);
        using var response = await Client.SendAsync(request);
        ExpectError(new Reply((int)response.StatusCode, await response.Content.ReadAsStringAsync(), response), 400, "validation_error");
    }

    /// <summary>A stream of unknown length, so the client sends it chunked (no Content-Length).</summary>
    private sealed class ChunkedStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
