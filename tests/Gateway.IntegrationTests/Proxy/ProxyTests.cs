using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Gateway.Config;
using Gateway.Proxy;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Proxy;

/// <summary>The proxy path end to end, over each upstream client (the subclasses at the end pick the fixture).</summary>
public abstract class ProxyTests(GatewayFixture fx) : SimulatorResetting(fx)
{
    private static JsonElement Json(byte[] body) => JsonDocument.Parse(body).RootElement.Clone();

    [Fact]
    public async Task Chat_returns_the_alias_and_the_upstream_gets_the_model_id_and_transforms()
    {
        var body = "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}],\"max_tokens\":5}";
        using var response = await _fx.Client.SendAsync(_fx.Post("/v1/chat/completions", body));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(Encoding.UTF8.GetByteCount(text), response.Content.Headers.ContentLength);
        var json = JsonDocument.Parse(text).RootElement;
        Assert.Equal("qwen", json.GetProperty("model").GetString());
        Assert.Equal("chat.completion", json.GetProperty("object").GetString());
        Assert.Equal(5, json.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        var upstream = Assert.Single(_fx.Simulator.Captured);
        Assert.Equal("/v1/chat/completions", upstream.Path);
        Assert.Equal(
            "{\"model\":\"Qwen/Qwen2.5-7B-Instruct\",\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\"},{\"role\":\"user\",\"content\":\"Hello!\"}],\"max_tokens\":5," +
            "\"chat_template_kwargs\":{\"enable_thinking\":false},\"temperature\":0.7}",
            Encoding.UTF8.GetString(upstream.Body));
    }

    [Fact]
    public async Task Only_safe_headers_go_upstream_and_the_request_id_round_trips()
    {
        var request = _fx.Post("/v1/chat/completions", "{\"model\":\"qwen\",\"messages\":[]}");
        request.Headers.TryAddWithoutValidation("X-Request-ID", "my-trace-42");
        request.Headers.TryAddWithoutValidation("Cookie", "session=secret");
        request.Headers.TryAddWithoutValidation("X-Api-Key", "secret");
        using var response = await _fx.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("my-trace-42", response.Headers.GetValues("X-Request-ID").Single());
        var headers = Assert.Single(_fx.Simulator.Captured).Headers;
        Assert.Equal("my-trace-42", headers["x-request-id"]);
        Assert.False(headers.ContainsKey("authorization"));
        Assert.False(headers.ContainsKey("cookie"));
        Assert.False(headers.ContainsKey("x-api-key"));
        Assert.StartsWith("application/json", headers["content-type"]);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("has spaces in it")]
    [InlineData("")]
    public async Task A_missing_or_insane_request_id_is_replaced_by_32_hex(string? incoming)
    {
        var request = _fx.Post("/v1/chat/completions", "{\"model\":\"qwen\",\"messages\":[]}");
        if (incoming is not null) request.Headers.TryAddWithoutValidation("X-Request-ID", incoming);
        using var response = await _fx.Client.SendAsync(request);
        var id = response.Headers.GetValues("X-Request-ID").Single();
        Assert.Matches("^[0-9a-f]{32}$", id);
        Assert.Equal(id, Assert.Single(_fx.Simulator.Captured).Headers["x-request-id"]);
    }

    [Fact]
    public async Task Completions_and_embeddings_get_the_alias_back()
    {
        using (var response = await _fx.Client.SendAsync(_fx.Post("/v1/completions", "{\"model\":\"qwen\",\"prompt\":\"Once\",\"max_tokens\":3}")))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var json = Json(await response.Content.ReadAsByteArrayAsync());
            Assert.Equal("qwen", json.GetProperty("model").GetString());
            Assert.Equal("text_completion", json.GetProperty("object").GetString());
        }
        // No chat transforms on completions: only the model and the default params change.
        Assert.Equal("{\"model\":\"Qwen/Qwen2.5-7B-Instruct\",\"prompt\":\"Once\",\"max_tokens\":3,\"temperature\":0.7}",
            Encoding.UTF8.GetString(_fx.Simulator.Captured[^1].Body));

        foreach (var format in new[] { "float", "base64" })
        {
            using var response = await _fx.Client.SendAsync(_fx.Post("/v1/embeddings", $"{{\"model\":\"qwen\",\"input\":[\"a\",\"b\"],\"encoding_format\":\"{format}\"}}"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var json = Json(await response.Content.ReadAsByteArrayAsync());
            Assert.Equal("qwen", json.GetProperty("model").GetString());
            Assert.Equal(2, json.GetProperty("data").GetArrayLength());
            var kind = json.GetProperty("data")[0].GetProperty("embedding").ValueKind;
            Assert.Equal(format == "float" ? JsonValueKind.Array : JsonValueKind.String, kind);
        }
    }

    [Fact]
    public async Task Models_are_listed_per_key_in_the_seed_shape()
    {
        async Task<string[]> List(string key)
        {
            var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            using var response = await _fx.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var json = Json(await response.Content.ReadAsByteArrayAsync());
            Assert.Equal("list", json.GetProperty("object").GetString());
            return json.GetProperty("data").EnumerateArray().Select(m =>
            {
                Assert.Equal("model", m.GetProperty("object").GetString());
                Assert.Equal("inference-gateway", m.GetProperty("owned_by").GetString());
                Assert.True(m.GetProperty("created").GetInt64() > 0);
                return m.GetProperty("id").GetString()!;
            }).ToArray();
        }
        Assert.Equal(["down", "ghost", "other", "qwen"], await List(GatewayFixture.Key)); // "retired" is inactive
        Assert.Equal(["other"], await List(GatewayFixture.OtherModelKey));
    }

    [Fact]
    public async Task Upstream_errors_pass_through_with_their_status()
    {
        // "ghost" maps to a model id the simulator does not serve: vLLM's own 404 comes back.
        using (var response = await _fx.Client.SendAsync(_fx.Post("/v1/chat/completions", "{\"model\":\"ghost\",\"messages\":[]}")))
        {
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Contains("does not exist", await response.Content.ReadAsStringAsync());
        }
        _fx.Simulator.Options.FailRate = 1;
        using (var response = await _fx.Client.SendAsync(_fx.Post("/v1/chat/completions", "{\"model\":\"qwen\",\"messages\":[]}")))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
            Assert.Contains("Simulated failure", await response.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task An_unreachable_backend_is_a_502()
    {
        using var response = await _fx.Client.SendAsync(_fx.Post("/v1/chat/completions", "{\"model\":\"down\",\"messages\":[]}"));
        await BadInputTests.AssertError(response, 502, "backend_error", null);
    }

    [Theory]
    [InlineData("GET", "/health", 200)]
    [InlineData("GET", "/ready", 200)]
    [InlineData("GET", "/metrics", 200)]
    [InlineData("GET", "/v1/models", 200)]
    [InlineData("GET", "/nope", 404)]
    [InlineData("PUT", "/v1/models", 405)]
    [InlineData("GET", "/v1/models/qwen", 200)]
    [InlineData("POST", "/v1/models/qwen", 405)]
    [InlineData("GET", "/v1/chat/completions", 405)]
    public async Task Every_route_echoes_the_request_id(string method, string path, int status)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + GatewayFixture.Key);
        request.Headers.Add("X-Request-ID", "echo-me-1");
        using var response = await _fx.Client.SendAsync(request);
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("echo-me-1", Assert.Single(response.Headers.GetValues("X-Request-ID")));
    }

    [Fact]
    public async Task A_model_is_retrieved_by_its_alias_and_only_if_the_key_may_use_it()
    {
        async Task<(int Status, JsonElement Body)> Get(string path, string key)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + key);
            using var response = await _fx.Client.SendAsync(request);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            return ((int)response.StatusCode, doc.RootElement.Clone());
        }
        var (status, body) = await Get("/v1/models/qwen", GatewayFixture.Key);
        Assert.Equal(200, status);
        Assert.Equal(["id", "object", "created", "owned_by"], body.EnumerateObject().Select(p => p.Name));
        Assert.Equal("qwen", body.GetProperty("id").GetString());
        Assert.Equal("model", body.GetProperty("object").GetString());
        // Not allowed for the key, unknown, or the backend's id rather than the alias: as absent as in the list.
        foreach (var (path, key) in new[] { ("/v1/models/qwen", GatewayFixture.OtherModelKey), ("/v1/models/nope", GatewayFixture.Key),
                     ("/v1/models/Qwen%2FQwen2.5-7B-Instruct", GatewayFixture.Key),
                     ("/v1/models/q%2577en", GatewayFixture.Key) }) // the alias "q%77en": decoded once, it is not "qwen"
        {
            (status, body) = await Get(path, key);
            Assert.Equal(404, status);
            Assert.Equal("model_not_found", body.GetProperty("error").GetProperty("code").GetString());
        }
        (status, body) = await Get("/v1/models/qwen", "ml-" + new string('0', 64));
        Assert.Equal(401, status);
    }

    [Fact]
    public async Task Health_and_ready()
    {
        using var health = await _fx.Client.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal("{\"status\":\"ok\"}", await health.Content.ReadAsStringAsync());
        using var ready = await _fx.Client.GetAsync("/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
    }

    [Fact]
    public async Task Many_concurrent_requests_all_succeed()
    {
        var tasks = Enumerable.Range(0, 64).Select(async i =>
        {
            using var response = await _fx.Client.SendAsync(_fx.Post("/v1/chat/completions", $"{{\"model\":\"qwen\",\"messages\":[{{\"role\":\"user\",\"content\":\"{i}\"}}],\"stream\":{(i % 2 == 0 ? "true" : "false")}}}"));
            var text = await response.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.DoesNotContain("Qwen/Qwen2.5-7B-Instruct", text);
        });
        await Task.WhenAll(tasks);
    }

    [Fact]
    public async Task Requests_go_through_the_configured_upstream_client_and_reuse_its_connections()
    {
        // One client connection, so its requests have one home loop: upstream connections are pooled per loop, and a second
        // client connection on another loop would rightly open its own. The first request warms this loop's pool, also when
        // Kestrel starts it on the thread pool (the connection names its loop).
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1 }) { BaseAddress = _fx.Client.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        async Task Chat()
        {
            using var response = await client.SendAsync(_fx.Post("/v1/chat/completions", "{\"model\":\"qwen\",\"messages\":[]}"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        await Chat();
        var upstream = _fx.Gateway.Upstream;
        var backend = _fx.Gateway.Snapshots.Current!.FindModel("qwen")!.Backends[0];
        var route = upstream.RouteFor(backend, ProxyEndpoint.ChatCompletions);
        if (_fx.Gateway.Options.Proxy.UpstreamClient == UpstreamClientKind.Sockets)
        {
            Assert.Null(route);
            return;
        }
        Assert.NotNull(route);
        Assert.Same(route, upstream.RouteFor(backend, ProxyEndpoint.ChatCompletions)); // resolved with the snapshot, not per request
        var opened = upstream.Http1!.ConnectionsOpened(route);
        Assert.True(opened > 0);
        // A JSON body read to its end gives the connection back to the pool: one after another, no new connection.
        for (int i = 0; i < 3; i++) await Chat();
        Assert.Equal(opened, upstream.Http1.ConnectionsOpened(route));
    }
}

[Collection("gateway")]
public sealed class ProxyTestsOverHttp1(GatewayFixture fx) : ProxyTests(fx);

[Collection("gateway-sockets")]
public sealed class ProxyTestsOverSockets(SocketsGatewayFixture fx) : ProxyTests(fx);
