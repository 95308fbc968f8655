using System.Text.Json;
using System.Text.RegularExpressions;
using Gateway.Testing;

namespace Gateway.IntegrationTests.Observability;

/// <summary>deploy/grafana/gateway-dashboard.json parses, is importable (datasource input) and queries only metrics a real scrape has.</summary>
[Collection("gateway")]
public sealed partial class DashboardTests(GatewayFixture fx)
{
    [GeneratedRegex(@"\bgateway_[a-z0-9_]+")]
    private static partial Regex MetricName();

    private static string DashboardPath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "deploy", "grafana", "gateway-dashboard.json");
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException("deploy/grafana/gateway-dashboard.json not found above " + AppContext.BaseDirectory);
    }

    private static IEnumerable<string> Expressions(JsonElement element)
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in element.EnumerateObject())
            {
                if (p.Name == "expr" && p.Value.ValueKind == JsonValueKind.String) yield return p.Value.GetString()!;
                else foreach (var e in Expressions(p.Value)) yield return e;
            }
        }
        else if (element.ValueKind == JsonValueKind.Array)
            foreach (var item in element.EnumerateArray()) foreach (var e in Expressions(item)) yield return e;
    }

    [Fact]
    public async Task Dashboard_parses_and_every_metric_it_queries_is_in_a_real_scrape()
    {
        var root = JsonDocument.Parse(File.ReadAllText(DashboardPath())).RootElement;
        Assert.Contains(root.GetProperty("__inputs").EnumerateArray(), i => i.GetProperty("name").GetString() == "DS_PROMETHEUS");
        Assert.True(root.GetProperty("panels").GetArrayLength() >= 9);

        using (var r = await fx.Client.SendAsync(fx.Post("/v1/chat/completions", "{\"model\":\"qwen\",\"stream\":true,\"max_tokens\":2,\"messages\":[]}")))
            await r.Content.ReadAsStringAsync();
        using var scrape = await fx.Client.GetAsync("/metrics");
        var parsed = PrometheusText.Parse(await scrape.Content.ReadAsStringAsync());

        var queried = Expressions(root).SelectMany(e => MetricName().Matches(e).Select(m => m.Value)).Distinct().ToList();
        Assert.NotEmpty(queried);
        foreach (var name in queried)
        {
            // Histograms are queried as _bucket/_sum/_count; a family with no series yet still has its # TYPE line.
            var family = Regex.Replace(name, "_(bucket|sum|count)$", "");
            Assert.True(parsed.Types.ContainsKey(family) || parsed.Types.ContainsKey(name), $"the dashboard queries {name}, which the scrape does not have");
        }
    }
}
