using System.Text;
using Gateway.Config;
using Gateway.Observability;
using Gateway.Routing;

namespace Gateway.Tests.Observability;

/// <summary>
/// Series follow the registry: each snapshot is attached as the control plane swaps it in, and what it no longer has leaves the
/// scrape (a health 0 of a deleted backend would fire alerts forever); what it has again comes back from zero.
/// </summary>
public sealed class MetricsSeriesLifetimeTests
{
    private const string A = "http://127.0.0.1:18501";
    private const string B = "http://127.0.0.1:18506";
    private const string C = "http://127.0.0.1:18507";

    private static Snapshot Registry(long version, params (string Alias, string[] Urls)[] models) =>
        new(models.Select(m => ModelEntry.Create(new ModelConfig
        {
            Name = m.Alias, ModelId = m.Alias + "/id", Backends = m.Urls.Select(u => new BackendConfig { Url = u }).ToArray(),
        }, 0, null)), [], version);

    private static async Task<string> Scrape(GatewayMetrics metrics)
    {
        using var buffer = new MemoryStream();
        await metrics.WriteAsync(buffer, default);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static string Health(string model, string url, int value) => $"gateway_backend_health{{model=\"{model}\",backend_url=\"{url}\"}} {value}\n";

    [Fact]
    public async Task A_backend_that_leaves_the_registry_takes_all_its_series_and_the_others_stay()
    {
        var metrics = new GatewayMetrics();
        var v1 = Registry(1, ("qwen", [A, B]), ("llama", [C]));
        metrics.Attach(v1);
        var qwen = v1.FindModel("qwen")!;
        metrics.For(qwen, qwen.Backends[0]).Connect.Inc();
        metrics.For(qwen, qwen.Backends[1]).Connect.Inc();
        metrics.For(qwen, qwen.Backends[1]).Health.Set(0); // the failing one
        Assert.Contains(Health("qwen", B, 0), await Scrape(metrics));

        metrics.Attach(Registry(2, ("qwen", [A]), ("llama", [C])));
        var text = await Scrape(metrics);
        Assert.DoesNotContain($"backend_url=\"{B}\"", text); // health, backend duration and upstream errors
        Assert.Contains(Health("qwen", A, 1), text);
        Assert.Contains($"gateway_upstream_errors_total{{model=\"qwen\",backend_url=\"{A}\",kind=\"connect\"}} 1\n", text);
        Assert.Contains(Health("llama", C, 1), text);
        Assert.Contains("gateway_active_streams{model=\"qwen\"} 0\n", text); // the model itself stays
    }

    [Fact]
    public async Task A_model_that_leaves_the_registry_takes_all_its_series_and_the_others_stay()
    {
        var metrics = new GatewayMetrics();
        var v1 = Registry(1, ("qwen", [A]), ("llama", [C]));
        metrics.Attach(v1);
        var record = new RequestRecord();
        record.Reset(1000);
        record.Model = v1.FindModel("llama");
        record.Status = 200;
        metrics.Record(record, 2000);
        Assert.Contains("gateway_requests_total{model=\"llama\",status_code=\"200\",streaming=\"false\"} 1\n", await Scrape(metrics));

        metrics.Attach(Registry(2, ("qwen", [A])));
        var text = await Scrape(metrics);
        Assert.DoesNotContain("model=\"llama\"", text); // gauges, counters and histograms alike
        Assert.Contains(Health("qwen", A, 1), text);
        Assert.Contains("gateway_active_streams{model=\"qwen\"} 0\n", text);
        Assert.Contains("gateway_time_to_first_token_seconds_count{model=\"qwen\"} 0\n", text);
    }

    [Fact]
    public async Task A_re_added_model_and_backend_come_back_from_zero()
    {
        var metrics = new GatewayMetrics();
        var v1 = Registry(1, ("qwen", [A]), ("llama", [C]));
        metrics.Attach(v1);
        var llama = v1.FindModel("llama")!;
        metrics.For(llama, llama.Backends[0]).Status5xx.Inc();
        metrics.For(llama).Failovers.Inc();
        metrics.Attach(Registry(2, ("qwen", [A])));

        metrics.Attach(Registry(3, ("qwen", [A]), ("llama", [C])));
        var text = await Scrape(metrics);
        Assert.Contains(Health("llama", C, 1), text);
        Assert.Contains($"gateway_upstream_errors_total{{model=\"llama\",backend_url=\"{C}\",kind=\"status_5xx\"}} 0\n", text);
        Assert.Contains("gateway_failovers_total{model=\"llama\"} 0\n", text);
    }

    [Fact]
    public async Task Requests_in_flight_on_a_deleted_model_neither_bring_its_series_back_nor_skew_the_re_added_one()
    {
        var metrics = new GatewayMetrics();
        var v1 = Registry(1, ("qwen", [A]), ("llama", [C]));
        metrics.Attach(v1);
        var old = v1.FindModel("llama")!;
        var oldMetrics = metrics.For(old);
        oldMetrics.ActiveStreams.Inc(); // two streams start on v1
        oldMetrics.ActiveStreams.Inc();
        metrics.Attach(Registry(2, ("qwen", [A])));

        // The first ends after the delete, with a status its model had not seen, a broken stream and a passive health mark.
        var backend = metrics.For(old, old.Backends[0]);
        backend.BrokenStream.Inc();
        backend.Health.Set(0);
        var record = new RequestRecord();
        record.Reset(1000);
        record.Model = old;
        record.Status = 502;
        record.Streaming = true;
        metrics.Record(record, 2000);
        oldMetrics.ActiveStreams.Dec();
        Assert.DoesNotContain("model=\"llama\"", await Scrape(metrics));

        // Re-added while the second still runs; a new stream starts, then the old one ends.
        var v3 = Registry(3, ("qwen", [A]), ("llama", [C]));
        metrics.Attach(v3);
        metrics.For(v3.FindModel("llama")!).ActiveStreams.Inc();
        oldMetrics.ActiveStreams.Dec();
        var text = await Scrape(metrics);
        Assert.Contains("gateway_active_streams{model=\"llama\"} 1\n", text); // the new stream only, never 0 or -1
        Assert.Contains(Health("llama", C, 1), text);
        Assert.Contains($"gateway_upstream_errors_total{{model=\"llama\",backend_url=\"{C}\",kind=\"broken_stream\"}} 0\n", text);
        Assert.DoesNotContain("status_code=\"502\"", text);
    }

    [Fact]
    public void Snapshots_that_keep_a_model_share_its_children()
    {
        var metrics = new GatewayMetrics();
        var v1 = Registry(1, ("qwen", [A]));
        var v2 = Registry(2, ("qwen", [A, B]));
        metrics.Attach(v1);
        metrics.Attach(v2);
        var (m1, m2) = (v1.FindModel("qwen")!, v2.FindModel("qwen")!);
        Assert.Same(metrics.For(m1), metrics.For(m2));
        Assert.Same(metrics.For(m1, m1.Backends[0]), metrics.For(m2, m2.Backends[0]));
    }
}
