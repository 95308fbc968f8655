using System.Diagnostics;
using System.Text;
using Gateway.Config;
using Gateway.Observability;
using Gateway.Routing;

namespace Gateway.Tests.Observability;

public sealed class GatewayMetricsTests
{
    private static ModelEntry Model() => ModelEntry.Create(new ModelConfig
    {
        Name = "qwen", ModelId = "Qwen/Qwen2.5-7B-Instruct", Backends = [new BackendConfig { Url = "http://127.0.0.1:8000" }],
    }, 0, null);

    private static async Task<string> Scrape(GatewayMetrics metrics)
    {
        using var buffer = new MemoryStream();
        await metrics.WriteAsync(buffer, default);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    [Fact]
    public void Children_are_resolved_once_per_model_and_per_gateway()
    {
        var model = Model();
        var a = new GatewayMetrics();
        var b = new GatewayMetrics();
        Assert.Same(a.For(model), a.For(model));
        Assert.Same(a.For(model).Requests(200, false), a.For(model).Requests(200, false));
        Assert.NotSame(a.For(model), b.For(model)); // two gateways in one process keep their own registries
        Assert.Same(a.For(model, model.Backends[0]), a.For(model, model.Backends[0]));
    }

    [Fact]
    public async Task A_stream_record_observes_ttft_itl_tokens_and_the_prompt_bucket()
    {
        var metrics = new GatewayMetrics();
        var model = Model();
        var f = Stopwatch.Frequency;
        var r = new RequestRecord();
        r.Reset(1000);
        r.Model = model;
        r.Streaming = true;
        r.Status = 200;
        r.OverheadRoute = metrics.OverheadChat;
        r.HasUsage = true;
        r.PromptTokens = 1500;
        r.CompletionTokens = 11;
        r.FirstContent = 1000 + f / 5;          // TTFT 200 ms
        r.LastContent = r.FirstContent + f / 2; // 10 gaps over 500 ms
        r.ContentChunks = 11;
        r.UpstreamTicks = f / 10;
        metrics.Record(r, r.LastContent + f / 100);

        var m = metrics.For(model);
        Assert.Equal(1, m.Requests(200, true).Value);
        Assert.Equal(0.2, m.TimeToFirstToken.Sum, 3);
        Assert.Equal(0.05, m.InterTokenLatency.Sum, 3);
        Assert.Equal(22, m.CompletionTokensPerSecond.Sum, 3);
        Assert.Equal(1500, m.PromptTokens.Value);
        var text = await Scrape(metrics);
        Assert.Contains("gateway_completion_tokens_per_second_by_prompt_bucket_count{model=\"qwen\",prompt_tokens_bucket=\"1k_2k\"} 1", text);
        Assert.Contains("gateway_requests_total{model=\"qwen\",status_code=\"200\",streaming=\"true\"} 1", text);
    }

    [Fact]
    public void A_stream_that_arrived_in_one_read_has_an_itl_of_zero_and_no_tokens_per_second()
    {
        var metrics = new GatewayMetrics();
        var model = Model();
        var r = new RequestRecord();
        r.Reset(1000);
        r.Model = model;
        r.Streaming = true;
        r.Status = 200;
        r.HasUsage = true;
        r.CompletionTokens = 5;
        r.FirstContent = r.LastContent = 2000; // every chunk stamped by the same read
        r.ContentChunks = 5;
        metrics.Record(r, 3000);

        var m = metrics.For(model);
        Assert.Equal(1, m.TimeToFirstToken.Count);
        Assert.Equal(1, m.InterTokenLatency.Count);
        Assert.Equal(0, m.InterTokenLatency.Sum);
        Assert.Equal(0, m.CompletionTokensPerSecond.Count);
    }

    [Fact]
    public async Task A_request_without_a_model_is_counted_under_the_empty_alias_without_empty_token_series()
    {
        var metrics = new GatewayMetrics();
        var r = new RequestRecord();
        r.Reset(Stopwatch.GetTimestamp());
        r.Status = 401;
        metrics.Record(r, Stopwatch.GetTimestamp());
        Assert.Equal(1, metrics.NoModel.Requests(401, false).Value);
        var text = await Scrape(metrics);
        Assert.Contains("gateway_requests_total{model=\"\",status_code=\"401\",streaming=\"false\"} 1", text);
        Assert.DoesNotContain("gateway_time_to_first_token_seconds_count{model=\"\"}", text);
        Assert.DoesNotContain("gateway_active_streams{model=\"\"}", text);
    }

    [Fact]
    public async Task Rate_limit_hits_are_counted_by_key_prefix_and_limit_type()
    {
        var metrics = new GatewayMetrics();
        var key = KeyEntry.Create(new KeyConfig { Name = "k", KeyHashHex = new string('a', 64), KeyPrefix = "ml-abcdefgh" });
        metrics.RateLimitHit(key, RateLimitKind.Rpm);
        metrics.RateLimitHit(key, RateLimitKind.Rpm);
        metrics.RateLimitHit(key, RateLimitKind.Tpm);
        var text = await Scrape(metrics);
        Assert.Contains("gateway_rate_limit_hits_total{key_prefix=\"ml-abcdefgh\",limit_type=\"rpm\"} 2", text);
        Assert.Contains("gateway_rate_limit_hits_total{key_prefix=\"ml-abcdefgh\",limit_type=\"tpm\"} 1", text);
    }
}
