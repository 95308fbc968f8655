using System.Text;

namespace Gateway.Load.Tests;

public sealed class ProbeAndParsingTests
{
    [Fact]
    public void Cpu_ticks_are_counted_from_the_last_parenthesis()
    {
        // Field 2 may contain spaces and ')'; utime = 1234, stime = 56.
        const string stat = "4242 (we ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 4 0 100 1000000 500";
        Assert.Equal(1290, ProcessProbe.ParseCpuTicks(stat));
        Assert.Null(ProcessProbe.ParseCpuTicks("garbage"));
    }

    [Fact]
    public void Own_process_has_cpu_time_and_rss()
    {
        if (!OperatingSystem.IsLinux()) return;
        Assert.True(ProcessProbe.ClockTicksPerSecond > 0);
        Assert.True(ProcessProbe.RssBytes(Environment.ProcessId) > 1_000_000);
        Assert.NotNull(ProcessProbe.CpuSeconds(Environment.ProcessId));
        Assert.Null(ProcessProbe.RssBytes(int.MaxValue));
    }

    [Theory]
    [InlineData("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok1 \"}}]}", true)]
    [InlineData("{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}", false)]
    [InlineData("{\"choices\":[{\"index\":0,\"delta\":{\"content\":null}}]}", false)]
    [InlineData("{\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hmm\"}}]}", false)]
    [InlineData("{\"choices\":[],\"usage\":{\"prompt_tokens\":3}}", false)]
    public void Content_events_are_the_ones_with_non_empty_delta_content(string payload, bool expected) =>
        Assert.Equal(expected, SseMeter.HasContent(Encoding.UTF8.GetBytes(payload)));

    [Fact]
    public void Source_addresses_count_up_from_127_0_0_1()
    {
        Assert.Equal("127.0.0.1", LoadHttp.SourceAddress(0).ToString());
        Assert.Equal("127.0.0.2", LoadHttp.SourceAddress(1).ToString());
        Assert.Equal("127.0.1.0", LoadHttp.SourceAddress(255).ToString());
    }

    [Fact]
    public void Options_defaults_and_levels()
    {
        Assert.Null(LoadOptions.Parse(["--profile", "sweep", "--upstream", "simulator"], out var o));
        Assert.Equal([1, 4, 16, 64], o.LoadLevels());
        Assert.Equal(10, o.DurationSeconds);
        Assert.Equal(5, o.SloMs);
        Assert.Null(LoadOptions.Parse(["--profile=streams", "--streams", "500", "--upstream", "simulator"], out o));
        Assert.Equal([125, 250, 375, 500], o.LoadLevels());
        Assert.Null(LoadOptions.Parse(["--profile", "sweep", "--sweep-by", "rate", "--steps", "40,10,20", "--direct", "http://127.0.0.1:1", "--direct-model", "m"], out o));
        Assert.Equal([10, 20, 40], o.LoadLevels());
        Assert.Equal("rate", o.LoadKind);
        Assert.Null(LoadOptions.Parse(["--upstream", "simulator", "--tokens", "200", "--tokens-sigma", "0.9"], out o));
        Assert.Equal(0.9, o.TokensSigma);
    }

    [Theory]
    [InlineData("--profile", "bogus")]
    [InlineData("--duration", "0")]
    [InlineData("--gateway", "http://127.0.0.1:1")]          // no --key
    [InlineData("--direct", "http://127.0.0.1:1")]           // no --direct-model
    [InlineData("--upstream", "ftp://x")]
    [InlineData("--steps", "1,-2")]
    [InlineData("--tokens-sigma", "4")]
    [InlineData("--upstream-client", "curl")]
    public void Bad_arguments_are_rejected(string option, string value)
    {
        var error = LoadOptions.Parse([option, value], out _);
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void Generated_gateway_config_carries_the_key_and_the_upstream()
    {
        var toml = UpstreamStack.Toml(18080, ["http://127.0.0.1:18000", "http://127.0.0.2:18001"], "Qwen/Qwen2.5-7B-Instruct", "ml-abc", "/tmp/x");
        Assert.Contains("port = 18080", toml);
        Assert.Contains("url = \"http://127.0.0.1:18000\"", toml);
        Assert.Contains("key = \"ml-abc\"", toml);
        Assert.Contains("host = \"127.0.0.1\"", toml);
        Assert.Contains("url = \"http://127.0.0.2:18001\"", toml);
        Assert.Equal(2, toml.Split("[[models.backends]]").Length - 1);
        Assert.DoesNotContain("[proxy]", toml);
        var http1 = UpstreamStack.Toml(18080, ["http://127.0.0.1:18000"], "m", "ml-abc", "/tmp/x", "http1");
        Assert.Contains("[proxy]\nupstream_client = \"http1\"\n[[models]]", http1);
    }
}
