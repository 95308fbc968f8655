using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using Gateway.Streaming;

namespace Gateway.Tests.Streaming;

/// <summary>The relay with its watchdog over in-memory pipes: why a stream ended decides the last event the client gets.</summary>
public sealed class UpstreamWatchdogTests
{
    private static readonly byte[] Alias = "\"qwen\""u8.ToArray();
    private static readonly byte[] FirstEvent = Encoding.UTF8.GetBytes(VllmStream.Chat(3).Split("\n\n")[0] + "\n\n");

    private static async Task<(RelayOutcome Outcome, List<string> Events, TimeSpan Elapsed)> Run(
        TimeSpan firstByte, TimeSpan idle, Func<Pipe, CancellationTokenSource, Task> upstream, CancellationToken drain = default,
        CancellationToken client = default)
    {
        var source = new Pipe();
        var sink = new Pipe();
        using var state = new StreamState(Alias, false, false);
        using var reads = CancellationTokenSource.CreateLinkedTokenSource(client);
        using var watchdog = new UpstreamWatchdog();
        var clock = Stopwatch.StartNew();
        watchdog.Start(reads, firstByte, idle, drain);
        var relay = SseRelay.RunAsync(source.Reader, sink.Writer, state, client, watchdog).AsTask();
        await upstream(source, reads);
        var outcome = await relay.WaitAsync(TimeSpan.FromSeconds(20));
        clock.Stop();
        watchdog.Stop();
        await sink.Writer.CompleteAsync();
        var bytes = (await sink.Reader.ReadAtLeastAsync(int.MaxValue)).Buffer.ToArray();
        var events = SseParser.Create(new MemoryStream(bytes)).Enumerate().Select(e => e.Data).ToList();
        return (outcome, events, clock.Elapsed);
    }

    private static string Code(string data) => JsonDocument.Parse(data).RootElement.GetProperty("error").GetProperty("code").GetString()!;

    [Fact]
    public async Task Silence_after_the_first_event_past_the_idle_limit_is_a_timeout_event()
    {
        var (outcome, events, elapsed) = await Run(TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(200),
            async (pipe, _) => await pipe.Writer.WriteAsync(FirstEvent)); // then nothing, and the pipe stays open
        Assert.Equal(RelayOutcome.UpstreamTimedOut, outcome);
        Assert.Equal(2, events.Count);
        Assert.Equal("backend_timeout", Code(events[^1]));
        Assert.InRange(elapsed, TimeSpan.FromMilliseconds(190), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Before_the_first_byte_the_first_byte_limit_applies_not_the_idle_one()
    {
        var (outcome, events, elapsed) = await Run(TimeSpan.FromMilliseconds(600), TimeSpan.FromMilliseconds(50), (_, _) => Task.CompletedTask);
        Assert.Equal(RelayOutcome.UpstreamTimedOut, outcome);
        Assert.Equal("backend_timeout", Code(Assert.Single(events)));
        Assert.InRange(elapsed, TimeSpan.FromMilliseconds(590), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Gaps_under_the_idle_limit_never_fire()
    {
        // 100 ms gaps against a 1.5 s limit: a loaded CI machine stretched a 100 ms delay past a 400 ms limit once. The watchdog
        // ticks every limit/8 (~190 ms here), so the stream's 600 ms still spans several ticks that must each see a recent read.
        var (outcome, events, _) = await Run(TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(1500), async (pipe, _) =>
        {
            foreach (var line in VllmStream.Chat(4).Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
            {
                await Task.Delay(100);
                await pipe.Writer.WriteAsync(Encoding.UTF8.GetBytes(line + "\n\n"));
            }
        });
        Assert.Equal(RelayOutcome.Completed, outcome);
        Assert.Equal("[DONE]", events[^1]);
    }

    [Fact]
    public async Task An_expired_drain_ends_the_stream_with_a_shutting_down_event()
    {
        using var drain = new CancellationTokenSource();
        var (outcome, events, _) = await Run(TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30), async (pipe, _) =>
        {
            await pipe.Writer.WriteAsync(FirstEvent);
            await Task.Delay(100);
            await drain.CancelAsync();
        }, drain.Token);
        Assert.Equal(RelayOutcome.ShuttingDown, outcome);
        Assert.DoesNotContain("[DONE]", events);
        using var last = JsonDocument.Parse(events[^1]);
        Assert.Equal("shutting_down", last.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("server_error", last.RootElement.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_client_that_leaves_gets_nothing_more_whatever_the_watchdog_would_say()
    {
        using var client = new CancellationTokenSource();
        var (outcome, events, _) = await Run(TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30), async (pipe, _) =>
        {
            await pipe.Writer.WriteAsync(FirstEvent);
            await Task.Delay(100);
            await client.CancelAsync();
        }, client: client.Token);
        Assert.Equal(RelayOutcome.ClientGone, outcome);
        Assert.Single(events);
    }

    [Theory]
    [InlineData(0, 10)]
    [InlineData(400, 50)]
    [InlineData(120_000, 1000)]
    public void Ticks_come_an_eighth_of_the_limit_apart_between_10_ms_and_1_s(int limitMs, int periodMs) =>
        Assert.Equal(TimeSpan.FromMilliseconds(periodMs), UpstreamWatchdog.TickPeriod(TimeSpan.FromMilliseconds(limitMs)));
}
