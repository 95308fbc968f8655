using System.Net;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using Gateway.Simulation;

namespace Gateway.Tests.Simulation;

public sealed class VllmSimulatorTests : IAsyncLifetime
{
    private const string Model = "Qwen/Qwen2.5-7B-Instruct";
    private const string ChatBody = """{"model":"Qwen/Qwen2.5-7B-Instruct","messages":[{"role":"user","content":"hello world!"}]}"""; // 12 bytes → 3 prompt tokens

    private VllmSimulator _sim = null!;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(20) };

    public async Task InitializeAsync()
    {
        _sim = await VllmSimulator.StartAsync(new SimulatorOptions { Port = 0, Tokens = 4 });
        _http.BaseAddress = new Uri(_sim.BaseUrl);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _sim.DisposeAsync();
    }

    [Fact]
    public void BindsAnEphemeralLoopbackPort()
    {
        Assert.NotEqual(0, _sim.Port);
        Assert.Equal($"http://127.0.0.1:{_sim.Port}", _sim.BaseUrl);
    }

    [Fact]
    public async Task NonStreamChat_HasVllmShapeKeyOrderAndUsage()
    {
        using var response = await PostAsync("/v1/chat/completions", ChatBody);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var root = doc.RootElement;
        Assert.Equal(["id", "object", "created", "model", "choices", "usage", "prompt_logprobs"], Names(root));
        Assert.Matches("^chatcmpl-[0-9a-f]{32}$", root.GetProperty("id").GetString());
        Assert.Equal("chat.completion", root.GetProperty("object").GetString());
        Assert.InRange(root.GetProperty("created").GetInt64(), DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        Assert.Equal(Model, root.GetProperty("model").GetString());
        var choice = Assert.Single(root.GetProperty("choices").EnumerateArray().ToList());
        Assert.Equal(["index", "message", "logprobs", "finish_reason", "stop_reason"], Names(choice));
        var message = choice.GetProperty("message");
        Assert.Equal(["role", "reasoning_content", "content", "tool_calls"], Names(message));
        Assert.Equal("assistant", message.GetProperty("role").GetString());
        Assert.Equal(JsonValueKind.Null, message.GetProperty("reasoning_content").ValueKind);
        Assert.Equal("tok0 tok1 tok2 tok3 ", message.GetProperty("content").GetString());
        Assert.Equal(0, message.GetProperty("tool_calls").GetArrayLength());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(JsonValueKind.Null, choice.GetProperty("stop_reason").ValueKind);
        var usage = root.GetProperty("usage");
        Assert.Equal(["prompt_tokens", "total_tokens", "completion_tokens", "prompt_tokens_details"], Names(usage));
        Assert.Equal(3, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(4, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(7, usage.GetProperty("total_tokens").GetInt32());
    }

    [Theory]
    [InlineData("\"max_tokens\":2", 2, "length")]
    [InlineData("\"max_completion_tokens\":3,\"max_tokens\":1", 3, "length")]
    [InlineData("\"max_tokens\":50", 4, "stop")]
    public async Task MaxTokens_LimitsTheCompletion(string limit, int expected, string finish)
    {
        var body = $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"hi"}],{{limit}}}""";
        using var doc = await PostJsonAsync("/v1/chat/completions", body, HttpStatusCode.OK);
        Assert.Equal(expected, doc.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        var choice = doc.RootElement.GetProperty("choices")[0];
        Assert.Equal(finish, choice.GetProperty("finish_reason").GetString());
        Assert.Equal(string.Concat(Enumerable.Range(0, expected).Select(i => $"tok{i} ")), choice.GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task StreamChat_WithoutUsage_SendsRoleTokensAndDone()
    {
        var (contentType, events) = await StreamAsync("/v1/chat/completions", ChatBody[..^1] + ""","stream":true}""");
        Assert.Equal("text/event-stream; charset=utf-8", contentType);
        Assert.Equal("[DONE]", events[^1]);
        Assert.Equal(1, events.Count(e => e == "[DONE]"));
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.Equal(1 + 4, chunks.Count); // role chunk + one per token
        Assert.All(chunks, c => Assert.Equal(["id", "object", "created", "model", "choices"], Names(c)));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Equal("""{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}""",
            chunks[0].GetProperty("choices")[0].GetRawText());
        Assert.Equal("""{"index":0,"delta":{"content":"tok1 "},"logprobs":null,"finish_reason":null}""", chunks[2].GetProperty("choices")[0].GetRawText());
        Assert.Equal("""{"index":0,"delta":{"content":"tok3 "},"logprobs":null,"finish_reason":"stop","stop_reason":null}""",
            chunks[^1].GetProperty("choices")[0].GetRawText());
        Assert.Equal("tok0 tok1 tok2 tok3 ", string.Concat(chunks.Skip(1).Select(c => c.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString())));
    }

    [Fact]
    public async Task StreamChat_IncludeUsage_EndsWithOneUsageChunk()
    {
        var body = ChatBody[..^1] + ""","stream":true,"max_tokens":3,"stream_options":{"include_usage":true}}""";
        var (_, events) = await StreamAsync("/v1/chat/completions", body);
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.Equal(1 + 3 + 1, chunks.Count);
        Assert.All(chunks[..^1], c => Assert.False(c.TryGetProperty("usage", out _)));
        Assert.Equal("length", chunks[^2].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        var last = chunks[^1];
        Assert.Equal(["id", "object", "created", "model", "choices", "usage"], Names(last));
        Assert.Equal(0, last.GetProperty("choices").GetArrayLength());
        Assert.Equal("""{"prompt_tokens":3,"total_tokens":6,"completion_tokens":3}""", last.GetProperty("usage").GetRawText());
    }

    [Fact]
    public async Task StreamChat_ContinuousUsage_EveryChunkCarriesCumulativeUsage()
    {
        var body = ChatBody[..^1] + ""","stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}""";
        var (_, events) = await StreamAsync("/v1/chat/completions", body);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.Equal(1 + 4 + 1, chunks.Count);
        for (var i = 0; i < chunks.Count; i++)
        {
            Assert.Equal(["id", "object", "created", "model", "choices", "usage"], Names(chunks[i]));
            var completion = Math.Min(i, 4);
            Assert.Equal($$"""{"prompt_tokens":3,"total_tokens":{{3 + completion}},"completion_tokens":{{completion}}}""", chunks[i].GetProperty("usage").GetRawText());
        }
        Assert.Equal(0, chunks[^1].GetProperty("choices").GetArrayLength());
    }

    [Fact]
    public async Task ContinuousUsageWithoutIncludeUsage_SendsNoUsage()
    {
        var body = ChatBody[..^1] + ""","stream":true,"stream_options":{"continuous_usage_stats":true}}""";
        var (_, events) = await StreamAsync("/v1/chat/completions", body);
        Assert.Equal(6, events.Count);
        Assert.DoesNotContain(events, e => e.Contains("usage", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Completions_NonStreamAndStream()
    {
        using (var doc = await PostJsonAsync("/v1/completions", """{"model":"Qwen/Qwen2.5-7B-Instruct","prompt":"abcdefgh","max_tokens":2}""", HttpStatusCode.OK))
        {
            var root = doc.RootElement;
            Assert.Matches("^cmpl-[0-9a-f]{32}$", root.GetProperty("id").GetString());
            Assert.Equal("text_completion", root.GetProperty("object").GetString());
            Assert.Equal("""{"index":0,"text":"tok0 tok1 ","logprobs":null,"finish_reason":"length","stop_reason":null,"prompt_logprobs":null}""",
                root.GetProperty("choices")[0].GetRawText());
            Assert.Equal("""{"prompt_tokens":2,"total_tokens":4,"completion_tokens":2,"prompt_tokens_details":null}""", root.GetProperty("usage").GetRawText());
        }
        var (_, events) = await StreamAsync("/v1/completions", """{"prompt":[1,2,3,4,5],"stream":true,"stream_options":{"include_usage":true}}""");
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.Equal(4 + 1, chunks.Count); // no role chunk for completions
        Assert.All(chunks, c => Assert.Equal("text_completion", c.GetProperty("object").GetString()));
        Assert.Equal(Model, chunks[0].GetProperty("model").GetString());
        Assert.Equal("""{"index":0,"text":"tok0 ","logprobs":null,"finish_reason":null,"stop_reason":null}""", chunks[0].GetProperty("choices")[0].GetRawText());
        Assert.Equal("""{"index":0,"text":"tok3 ","logprobs":null,"finish_reason":"stop","stop_reason":null}""", chunks[3].GetProperty("choices")[0].GetRawText());
        Assert.Equal("""{"prompt_tokens":5,"total_tokens":9,"completion_tokens":4}""", chunks[4].GetProperty("usage").GetRawText());
    }

    [Fact]
    public async Task Embeddings_FloatAndBase64_AgreeAndAreDeterministic()
    {
        using var floats = await PostJsonAsync("/v1/embeddings", """{"model":"Qwen/Qwen2.5-7B-Instruct","input":["hello there","other"]}""", HttpStatusCode.OK);
        var root = floats.RootElement;
        Assert.Equal(["id", "object", "created", "model", "data", "usage"], Names(root));
        Assert.StartsWith("embd-", root.GetProperty("id").GetString());
        Assert.Equal("list", root.GetProperty("object").GetString());
        var data = root.GetProperty("data");
        Assert.Equal(2, data.GetArrayLength());
        Assert.Equal(["index", "object", "embedding"], Names(data[1]));
        Assert.Equal(1, data[1].GetProperty("index").GetInt32());
        Assert.Equal("embedding", data[1].GetProperty("object").GetString());
        var first = data[0].GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        var second = data[1].GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        Assert.Equal(8, first.Length);
        Assert.Equal(1.0, Math.Sqrt(first.Sum(v => (double)v * v)), 3);
        Assert.NotEqual(first, second);
        Assert.Equal("""{"prompt_tokens":3,"total_tokens":3,"completion_tokens":0,"prompt_tokens_details":null}""", root.GetProperty("usage").GetRawText());

        using var b64 = await PostJsonAsync("/v1/embeddings", """{"input":"hello there","encoding_format":"base64"}""", HttpStatusCode.OK);
        var bytes = Convert.FromBase64String(b64.RootElement.GetProperty("data")[0].GetProperty("embedding").GetString()!);
        Assert.Equal(8 * 4, bytes.Length);
        var decoded = Enumerable.Range(0, 8).Select(i => BitConverter.ToSingle(bytes, i * 4)).ToArray();
        Assert.Equal(first, decoded);

        using var dims = await PostJsonAsync("/v1/embeddings", """{"input":[[1,2,3],[4,5]],"dimensions":32,"encoding_format":"base64"}""", HttpStatusCode.OK);
        Assert.Equal(32 * 4, Convert.FromBase64String(dims.RootElement.GetProperty("data")[1].GetProperty("embedding").GetString()!).Length);
        Assert.Equal(5, dims.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task UnknownModel_Is404WithVllmBody()
    {
        using var response = await PostAsync("/v1/chat/completions", """{"model":"nope","messages":[]}""");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("""{"error":{"message":"The model `nope` does not exist.","type":"NotFoundError","param":null,"code":404}}""",
            await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("""{"model":"Qwen/Qwen2.5-7B-Instruct","messages":[],"stream_options":{"include_usage":true}}""", "Stream options can only be defined when `stream=True`.")]
    [InlineData("""{"model":"Qwen/Qwen2.5-7B-Instruct","messages":[],"stream":false,"stream_options":{"include_usage":true}}""", "Stream options can only be defined when `stream=True`.")]
    [InlineData("""{"model":"Qwen/Qwen2.5-7B-Instruct","messages":[],"max_tokens":0}""", "max_tokens must be at least 1, got 0.")]
    [InlineData("""{"model":"Qwen/Qwen2.5-7B-Instruct"}""", "messages: Field required")]
    public async Task InvalidRequests_Are400(string body, string message)
    {
        using var doc = await PostJsonAsync("/v1/chat/completions", body, HttpStatusCode.BadRequest);
        var error = doc.RootElement.GetProperty("error");
        Assert.Equal(message, error.GetProperty("message").GetString());
        Assert.Equal("BadRequestError", error.GetProperty("type").GetString());
        Assert.Equal(400, error.GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task InvalidJson_Is400()
    {
        using var doc = await PostJsonAsync("/v1/chat/completions", "{\"model\":", HttpStatusCode.BadRequest);
        Assert.Equal(["message", "type", "param", "code"], Names(doc.RootElement.GetProperty("error")));
        Assert.Equal("BadRequestError", doc.RootElement.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task StreamOptionsNullWithoutStream_IsAccepted()
    {
        using var doc = await PostJsonAsync("/v1/chat/completions", ChatBody[..^1] + ""","stream_options":null}""", HttpStatusCode.OK);
        Assert.Equal(4, doc.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public void TokensSigma_SamplesLogNormalLengthsAroundTheMedian()
    {
        var random = new Random(42);
        var lengths = Enumerable.Range(0, 20_000).Select(_ => CompletionResponder.SampleLength(200, 0.9, random)).Order().ToArray();
        double Quantile(double q) => lengths[(int)(q * (lengths.Length - 1))];
        // Median ≈ 200; for sigma 0.9 the 90th percentile is 200·e^(0.9·1.2816) ≈ 634 and the 10th ≈ 63.
        Assert.InRange(Quantile(0.5), 190, 210);
        Assert.InRange(Quantile(0.9), 580, 690);
        Assert.InRange(Quantile(0.1), 57, 70);
        Assert.True(lengths[0] >= 1 && lengths[^1] <= 3200, $"{lengths[0]}..{lengths[^1]}");
        Assert.Equal(200, CompletionResponder.SampleLength(200, 0, random));
    }

    [Fact]
    public async Task TokensSigma_VariesAnswerLengths_AndMaxTokensStillCaps()
    {
        _sim.Options.Tokens = 50;
        _sim.Options.TokensSigma = 1.0;
        var seen = new HashSet<int>();
        for (int i = 0; i < 20; i++)
        {
            using var doc = await PostJsonAsync("/v1/chat/completions", ChatBody, HttpStatusCode.OK);
            var usage = doc.RootElement.GetProperty("usage");
            seen.Add(usage.GetProperty("completion_tokens").GetInt32());
        }
        Assert.True(seen.Count > 5, $"lengths seen: {string.Join(",", seen)}");
        for (int i = 0; i < 10; i++)
        {
            using var doc = await PostJsonAsync("/v1/chat/completions", ChatBody[..^1] + ""","max_tokens":3}""", HttpStatusCode.OK);
            Assert.InRange(doc.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), 1, 3);
        }
    }

    [Fact]
    public async Task DieAfterEvents_BreaksTheStreamWithoutDone()
    {
        _sim.Options.DieAfterEvents = 2;
        _sim.Options.Tokens = 10;
        var events = new List<string>();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Json(ChatBody[..^1] + ""","stream":true}""") };
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var broken = false;
        try
        {
            await foreach (var item in SseParser.Create(await response.Content.ReadAsStreamAsync()).EnumerateAsync()) events.Add(item.Data);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            broken = true;
        }
        Assert.True(broken, "a clean end of the chunked body was not expected");
        Assert.DoesNotContain("[DONE]", events);
        Assert.Equal(2, events.Count);
    }

    [Fact]
    public async Task ClientLeavingMidStream_IsCounted()
    {
        _sim.Options.Tokens = 200;
        _sim.Options.ItlMs = 20;
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = Json("""{"prompt":"x","stream":true}""") })
        using (var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            var stream = await response.Content.ReadAsStreamAsync();
            await using var enumerator = SseParser.Create(stream).EnumerateAsync().GetAsyncEnumerator();
            Assert.True(await enumerator.MoveNextAsync());
            Assert.StartsWith("{\"id\":\"cmpl-", enumerator.Current.Data);
        }
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (_sim.CancelledStreams == 0 && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(1, _sim.CancelledStreams);
    }

    [Fact]
    public async Task Fifty_clients_leaving_mid_stream_are_all_counted_as_cancelled_and_none_completes()
    {
        // Many clients leaving at once is when Kestrel hands the simulator a closed response pipe (writes fail, flushes report
        // completion) before it signals RequestAborted: every one of these must still count as a cancel.
        const int streams = 50, chunks = 3;
        _sim.Options.Tokens = 200;
        _sim.Options.ItlMs = 20;
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = streams, MaxResponseDrainSize = 0 })
        {
            BaseAddress = new Uri(_sim.BaseUrl),
        };
        await Task.WhenAll(Enumerable.Range(0, streams).Select(async i =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = Json("""{"prompt":"x","stream":true}""") };
            request.Headers.Add("X-Request-ID", $"leaver-{i}");
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            using var stuck = new CancellationTokenSource(TimeSpan.FromSeconds(30)); // a broken stream fails the test, never hangs it
            int seen = 0;
            await foreach (var item in SseParser.Create(await response.Content.ReadAsStreamAsync()).EnumerateAsync(stuck.Token))
                if (++seen == chunks) break;
        })); // each response is disposed with its stream unread: the connection closes

        var wait = System.Diagnostics.Stopwatch.StartNew();
        while (_sim.CancelledStreams < streams && wait.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(20);
        Assert.Equal(streams, _sim.CancelledStreams);
        Assert.Equal(streams, _sim.Cancellations.Select(c => c.RequestId).Distinct().Count(id => id!.StartsWith("leaver-", StringComparison.Ordinal)));
        Assert.Equal(0, _sim.StatsFor(Model).Success); // not one ran to its end
    }

    [Fact]
    public async Task StallAfterTokens_SendsThatManyTokensThenWaitsForTheClientToLeave()
    {
        _sim.Options.Tokens = 10;
        _sim.Options.StallAfterTokens = 2;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = Json("""{"prompt":"x","stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}"""),
        };
        using var leave = new CancellationTokenSource();
        using (var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            var events = SseParser.Create(await response.Content.ReadAsStreamAsync()).EnumerateAsync(leave.Token).GetAsyncEnumerator();
            Assert.True(await events.MoveNextAsync());
            Assert.Contains("\"text\":\"tok0 \"", events.Current.Data);
            Assert.True(await events.MoveNextAsync());
            Assert.Contains("\"text\":\"tok1 \"", events.Current.Data);
            var next = events.MoveNextAsync().AsTask();
            Assert.NotSame(next, await Task.WhenAny(next, Task.Delay(300))); // stalled: no third token
            // The client leaves: cancelling its pending read closes the connection (disposing the response under a pending read
            // would race SocketsHttpHandler's drain against that read).
            await leave.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => next.WaitAsync(TimeSpan.FromSeconds(10)));
        }
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (_sim.CancelledStreams == 0 && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(1, _sim.CancelledStreams);
        Assert.Equal(1 + 2, _sim.ReportedUsageTokens); // "x" is one prompt token, then two completion tokens went out
    }

    [Fact]
    public async Task FailRateOne_Is500()
    {
        _sim.Options.FailRate = 1;
        using var response = await PostAsync("/v1/chat/completions", ChatBody);
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("""{"error":{"message":"Simulated failure","type":"InternalServerError","param":null,"code":500}}""", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Models_ListsServedModels_AndNothingWhenNotReady()
    {
        _sim.Options.Models = ["a/b", "c"];
        using (var doc = JsonDocument.Parse(await _http.GetStringAsync("/v1/models")))
        {
            Assert.Equal("list", doc.RootElement.GetProperty("object").GetString());
            var data = doc.RootElement.GetProperty("data");
            Assert.Equal(["a/b", "c"], data.EnumerateArray().Select(m => m.GetProperty("id").GetString()!).ToArray());
            Assert.Equal(["id", "object", "created", "owned_by", "root", "parent", "max_model_len", "permission"], Names(data[0]));
            Assert.Equal("vllm", data[0].GetProperty("owned_by").GetString());
            Assert.Equal("a/b", data[0].GetProperty("root").GetString());
            Assert.Equal(32768, data[0].GetProperty("max_model_len").GetInt32());
            Assert.Equal("model_permission", data[0].GetProperty("permission")[0].GetProperty("object").GetString());
        }
        _sim.Options.NotReady = true;
        Assert.Equal("""{"object":"list","data":[]}""", await _http.GetStringAsync("/v1/models"));
        using var response = await PostAsync("/v1/chat/completions", """{"model":"c","messages":[]}""");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
    }

    [Fact]
    public async Task Health_OkEmpty_Or503()
    {
        using (var ok = await _http.GetAsync("/health"))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Empty(await ok.Content.ReadAsByteArrayAsync());
        }
        _sim.Options.HealthFails = true;
        _sim.Options.HealthDelayMs = 100;
        var started = DateTime.UtcNow;
        using var failed = await _http.GetAsync("/health");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, failed.StatusCode);
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromMilliseconds(90));
    }

    [Fact]
    public async Task Captured_HoldsExactBodiesAndLowercasedHeaders()
    {
        var body = ChatBody + "  ";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Json(body) };
        request.Headers.Add("X-Request-Id", "abc-123");
        using (var response = await _http.SendAsync(request)) Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using (var missing = await PostAsync("/v1/embeddings", """{"model":"m","input":"x"}""")) Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        await _http.GetStringAsync("/v1/models");

        Assert.Equal(2, _sim.RequestCount);
        var captured = _sim.Captured;
        Assert.Equal(["/v1/chat/completions", "/v1/embeddings"], captured.Select(c => c.Path).ToArray());
        Assert.Equal(Encoding.UTF8.GetBytes(body), captured[0].Body);
        Assert.Equal("abc-123", captured[0].Headers["x-request-id"]);
        Assert.StartsWith("application/json", captured[0].Headers["content-type"]);
        _sim.ClearCaptured();
        Assert.Empty(_sim.Captured);
    }

    [Fact]
    public async Task UnknownRouteAndWrongMethod_UseFastApiBodies()
    {
        using (var missing = await _http.GetAsync("/v2/nothing"))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            Assert.Equal("""{"detail":"Not Found"}""", await missing.Content.ReadAsStringAsync());
        }
        using var wrong = await _http.GetAsync("/v1/chat/completions");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, wrong.StatusCode);
        Assert.Equal("""{"detail":"Method Not Allowed"}""", await wrong.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Metrics_ExposeVllmGauges()
    {
        using (await PostAsync("/v1/chat/completions", ChatBody)) { }
        var text = await _http.GetStringAsync("/metrics");
        Assert.Contains($"vllm:num_requests_running{{model_name=\"{Model}\"}} 0.0\n", text);
        Assert.Contains($"vllm:generation_tokens_total{{model_name=\"{Model}\"}} 4.0\n", text);
    }

    [Fact]
    public async Task Ttft_DelaysTheNonStreamResponse()
    {
        _sim.Options.TtftMs = 150;
        var started = DateTime.UtcNow;
        using var response = await PostAsync("/v1/chat/completions", ChatBody);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromMilliseconds(140));
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private Task<HttpResponseMessage> PostAsync(string path, string body) => _http.PostAsync(path, Json(body));

    private async Task<JsonDocument> PostJsonAsync(string path, string body, HttpStatusCode expected)
    {
        using var response = await PostAsync(path, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"{(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text);
    }

    /// <summary>Reads a whole SSE stream with the BCL parser as the framing oracle; returns the content type and each event's data.</summary>
    private async Task<(string? ContentType, List<string> Events)> StreamAsync(string path, string body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = Json(body) };
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = new List<string>();
        await foreach (var item in SseParser.Create(await response.Content.ReadAsStreamAsync()).EnumerateAsync())
        {
            Assert.Equal("message", item.EventType);
            events.Add(item.Data);
        }
        return (response.Content.Headers.ContentType?.ToString(), events);
    }

    private static string[] Names(JsonElement element) => element.EnumerateObject().Select(p => p.Name).ToArray();
}
