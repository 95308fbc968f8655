using Gateway.Testing;

namespace Gateway.IntegrationTests.Admin;

/// <summary>/metrics follows admin writes: a deleted backend or model leaves the scrape at once, a re-added one comes back.</summary>
public abstract partial class AdminApiContract
{
    private async Task<PrometheusText> ScrapeAsync()
    {
        using var response = await Client.GetAsync("/metrics");
        Assert.Equal(200, (int)response.StatusCode);
        return PrometheusText.Parse(await response.Content.ReadAsStringAsync());
    }

    private static bool AnySeries(PrometheusText scrape, string label, string value) =>
        scrape.Samples.Any(s => s.Labels.TryGetValue(label, out var v) && v == value);

    [Fact]
    public async Task Deleting_a_backend_or_a_model_removes_its_series_from_metrics_and_re_adding_brings_them_back()
    {
        const string Dead = "http://127.0.0.1:18506";
        var served = Sim.BaseUrl.TrimEnd('/');
        var failing = await ServedModel("failing");
        var deadBody = $$"""{"url":"{{Dead}}","active":false}""";
        var dead = Expect(201, await Post($"/admin/v1/models/{failing}/backends", deadBody)).GetProperty("id").GetString()!;
        await ServedModel("llama-3");
        var (key, _) = await CreateKey();
        Assert.Equal(200, (await Chat(key, "failing")).Status);
        Assert.Equal(200, (await Chat(key, "llama-3")).Status);
        var scrape = await ScrapeAsync();
        Assert.True(scrape.Has("gateway_backend_health", ("model", "failing"), ("backend_url", Dead)));
        Assert.Equal(0, scrape.Value("gateway_backend_health", ("model", "failing"), ("backend_url", Dead)));

        Assert.Equal(204, (await Delete($"/admin/v1/models/{failing}/backends/{dead}")).Status);
        scrape = await ScrapeAsync();
        Assert.False(AnySeries(scrape, "backend_url", Dead));
        Assert.Equal(1, scrape.Value("gateway_backend_health", ("model", "failing"), ("backend_url", served)));
        Assert.Equal(1, scrape.Value("gateway_requests_total", ("model", "failing"), ("status_code", "200")));

        Assert.Equal(204, (await Delete($"/admin/v1/models/{failing}")).Status);
        scrape = await ScrapeAsync();
        Assert.False(AnySeries(scrape, "model", "failing"));
        Assert.Equal(1, scrape.Value("gateway_backend_health", ("model", "llama-3"), ("backend_url", served)));
        Assert.Equal(1, scrape.Value("gateway_requests_total", ("model", "llama-3"), ("status_code", "200")));
        Assert.True(scrape.Has("gateway_backend_health", ("model", ConfigModel)));

        var again = (await CreateModel("failing")).GetProperty("id").GetString()!;
        Expect(201, await Post($"/admin/v1/models/{again}/backends", deadBody));
        scrape = await ScrapeAsync();
        Assert.True(scrape.Has("gateway_backend_health", ("model", "failing"), ("backend_url", Dead)));
        Assert.True(scrape.Has("gateway_prompt_tokens_total", ("model", "failing")));
        Assert.Equal(0, scrape.Value("gateway_prompt_tokens_total", ("model", "failing"))); // a new series, from zero
    }
}
