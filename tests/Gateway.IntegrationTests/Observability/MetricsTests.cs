using System.Globalization;
using System.Net;
using System.Text.Json;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Observability;

/// <summary>
/// Real requests through the shared gateway, then a real scrape of /metrics, parsed. The fixture is shared by the collection, so
/// every assertion compares a scrape before and after.
/// </summary>
[Collection("gateway")]
public sealed class MetricsTests : IDisposable
{
    private const string Chat = "{\"model\":\"qwen\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    private const string StreamChat = "{\"model\":\"qwen\",\"stream\":true,\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    private readonly GatewayFixture _fx;

    public MetricsTests(GatewayFixture fx)
    {
        _fx = fx;
        fx.ResetSimulator();
    }

    public void Dispose() => _fx.ResetSimulator();

    private string Backend => _fx.Simulator.BaseUrl.TrimEnd('/');

    private async Task<PrometheusText> ScrapeAsync()
    {
        using var response = await _fx.Client.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        return PrometheusText.Parse(await response.Content.ReadAsStringAsync());
    }

    private static (string, string) L(string key, string value) => (key, value);

    [Fact]
    public async Task Non_stream_request_counts_the_request_its_tokens_backend_time_and_overhead()
    {
        var before = await ScrapeAsync();
        using var response = await _fx.Client.SendAsync(_fx.Post("/v1/chat/completions", Chat));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var usage = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("usage");
        var overheadMs = double.Parse(response.Headers.GetValues("X-Gateway-Overhead-Ms").Single(), CultureInfo.InvariantCulture);
        Assert.InRange(overheadMs, 0, 1000);
        var after = await ScrapeAsync();

        double Delta(string name, params (string, string)[] labels) => after.Value(name, labels) - before.Value(name, labels);
        Assert.Equal(1, Delta("gateway_requests_total", L("model", "qwen"), L("status_code", "200"), L("streaming", "false")));
        Assert.Equal(1, Delta("gateway_request_duration_seconds_count", L("model", "qwen"), L("streaming", "false")));
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32(), Delta("gateway_prompt_tokens_total", L("model", "qwen")));
        Assert.Equal(5, Delta("gateway_completion_tokens_total", L("model", "qwen")));
        Assert.Equal(1, Delta("gateway_tokens_per_request_count", L("model", "qwen"), L("type", "prompt")));
        Assert.Equal(5, Delta("gateway_tokens_per_request_sum", L("model", "qwen"), L("type", "completion")));
        Assert.Equal(1, Delta("gateway_backend_request_duration_seconds_count", L("model", "qwen"), L("backend_url", Backend)));
        Assert.Equal(1, Delta("gateway_overhead_seconds_count", L("route", "chat_completions")));
        Assert.Equal(1, after.Value("gateway_backend_health", L("model", "qwen"), L("backend_url", Backend)));
    }

    [Fact]
    public async Task Stream_counts_ttft_itl_tokens_per_second_and_leaves_no_active_stream()
    {
        _fx.Simulator.Options.ItlMs = 20; // tokens in separate reads: chunks are stamped per read, and one read has no rate
        var before = await ScrapeAsync();
        using (var response = await _fx.Client.SendAsync(_fx.Post("/v1/chat/completions", StreamChat)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.True(response.Headers.Contains("X-Gateway-Overhead-Ms"));
            Assert.EndsWith("data: [DONE]\n\n", await response.Content.ReadAsStringAsync());
        }
        var after = await ScrapeAsync();
        double Delta(string name, params (string, string)[] labels) => after.Value(name, labels) - before.Value(name, labels);
        Assert.Equal(1, Delta("gateway_requests_total", L("model", "qwen"), L("status_code", "200"), L("streaming", "true")));
        Assert.Equal(1, Delta("gateway_request_duration_seconds_count", L("model", "qwen"), L("streaming", "true")));
        Assert.Equal(1, Delta("gateway_time_to_first_token_seconds_count", L("model", "qwen")));
        Assert.Equal(1, Delta("gateway_inter_token_latency_seconds_count", L("model", "qwen")));
        Assert.Equal(1, Delta("gateway_tokens_per_second_count", L("model", "qwen"), L("type", "completion")));
        Assert.Equal(1, Delta("gateway_completion_tokens_per_second_by_prompt_bucket_count", L("model", "qwen"), L("prompt_tokens_bucket", "le_1k")));
        Assert.Equal(5, Delta("gateway_completion_tokens_total", L("model", "qwen")));
        Assert.Equal(0, after.Value("gateway_active_streams", L("model", "qwen")));
    }

    [Fact]
    public async Task Ttft_and_itl_match_the_simulators_delays()
    {
        _fx.Simulator.Options.TtftMs = 200;
        _fx.Simulator.Options.ItlMs = 50;
        _fx.Simulator.Options.Tokens = 6;
        var before = await ScrapeAsync();
        using (var response = await _fx.Client.SendAsync(_fx.Post("/v1/chat/completions", "{\"model\":\"qwen\",\"stream\":true,\"messages\":[]}")))
            await response.Content.ReadAsStringAsync();
        var after = await ScrapeAsync();
        double Delta(string name) => after.Value(name, L("model", "qwen")) - before.Value(name, L("model", "qwen"));

        Assert.Equal(1, Delta("gateway_time_to_first_token_seconds_count"));
        Assert.InRange(Delta("gateway_time_to_first_token_seconds_sum"), 0.19, 0.6);
        Assert.Equal(1, Delta("gateway_inter_token_latency_seconds_count"));
        Assert.InRange(Delta("gateway_inter_token_latency_seconds_sum"), 0.035, 0.15);
        // 6 tokens in 6 chunks, 5 gaps of ~50 ms: roughly 6 / 0.25 s.
        Assert.InRange(after.Value("gateway_tokens_per_second_sum", L("model", "qwen")) - before.Value("gateway_tokens_per_second_sum", L("model", "qwen")), 8, 40);
    }

    [Fact]
    public async Task A_401_is_counted_with_an_empty_model()
    {
        var before = await ScrapeAsync();
        using (var response = await _fx.Client.SendAsync(_fx.Post("/v1/chat/completions", Chat, key: GatewayFixture.RevokedKey)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.True(response.Headers.Contains("X-Gateway-Overhead-Ms"));
        }
        var after = await ScrapeAsync();
        var labels = new[] { L("model", ""), L("status_code", "401"), L("streaming", "false") };
        Assert.Equal(1, after.Value("gateway_requests_total", labels) - before.Value("gateway_requests_total", labels));
    }

    [Fact]
    public async Task An_upstream_500_is_counted_as_a_request_and_an_upstream_error()
    {
        _fx.Simulator.Options.FailRate = 1;
        var before = await ScrapeAsync();
        using (var response = await _fx.Client.SendAsync(_fx.Post("/v1/chat/completions", Chat)))
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var after = await ScrapeAsync();
        double Delta(string name, params (string, string)[] labels) => after.Value(name, labels) - before.Value(name, labels);
        Assert.Equal(1, Delta("gateway_requests_total", L("model", "qwen"), L("status_code", "500"), L("streaming", "false")));
        Assert.Equal(1, Delta("gateway_upstream_errors_total", L("model", "qwen"), L("backend_url", Backend), L("kind", "status_5xx")));
    }

    [Fact]
    public async Task A_refused_connection_is_a_connect_error_and_no_failover_without_a_second_backend()
    {
        var before = await ScrapeAsync();
        using (var response = await _fx.Client.SendAsync(_fx.Post("/v1/chat/completions", "{\"model\":\"down\",\"messages\":[]}")))
            Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var after = await ScrapeAsync();
        double Delta(string name, params (string, string)[] labels) => after.Value(name, labels) - before.Value(name, labels);
        Assert.Equal(1, Delta("gateway_upstream_errors_total", L("model", "down"), L("backend_url", "http://127.0.0.1:9"), L("kind", "connect")));
        Assert.Equal(0, Delta("gateway_failovers_total", L("model", "down"))); // "down" has one backend: nothing to fail over to
        Assert.Equal(1, Delta("gateway_requests_total", L("model", "down"), L("status_code", "502")));
    }

    [Fact]
    public async Task Every_metric_family_of_the_issue_is_exposed()
    {
        // Make sure per-model series exist, then look at the families (# TYPE lines) of one scrape.
        using (var r = await _fx.Client.SendAsync(_fx.Post("/v1/chat/completions", StreamChat))) await r.Content.ReadAsStringAsync();
        var scrape = await ScrapeAsync();
        foreach (var name in ExpectedFamilies)
            Assert.True(scrape.Types.ContainsKey(name), $"{name} is missing from the scrape");
    }

    internal static readonly string[] ExpectedFamilies =
    [
        "gateway_requests_total", "gateway_request_duration_seconds", "gateway_time_to_first_token_seconds",
        "gateway_inter_token_latency_seconds", "gateway_tokens_per_second", "gateway_tokens_per_request",
        "gateway_completion_tokens_per_second_by_prompt_bucket", "gateway_prompt_tokens_total", "gateway_completion_tokens_total",
        "gateway_active_streams", "gateway_backend_health", "gateway_rate_limit_hits_total", "gateway_backend_request_duration_seconds",
        "gateway_overhead_seconds", "gateway_rate_limiter_errors_total", "gateway_upstream_errors_total", "gateway_failovers_total",
        "gateway_log_lines_dropped_total",
    ];
}
