using System.Diagnostics;
using Gateway.Observability;
using Prometheus;

namespace Gateway.Tests.Observability;

public sealed class GatewayLogTests
{
    /// <summary>A stdout that never accepts a byte until released: the log must drop, count and never block the caller.</summary>
    private sealed class StuckStream : Stream
    {
        public readonly TaskCompletionSource Release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => await Release.Task;
        public override void Write(byte[] buffer, int offset, int count) => Release.Task.Wait();
        public override void Flush() { }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => 0;
        public override long Position { get => 0; set { } }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    [Fact]
    public async Task A_full_queue_drops_and_counts_lines_without_blocking()
    {
        var dropped = Metrics.WithCustomRegistry(Metrics.NewCustomRegistry()).CreateCounter("dropped", "test");
        var sink = new StuckStream();
        var log = new GatewayLog("info", "json", sink, dropped);
        var record = new RequestRecord();
        record.Reset(Stopwatch.GetTimestamp());
        record.Status = 200;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < GatewayLog.Capacity * 2; i++) log.Request(record, Stopwatch.GetTimestamp());
        Assert.True(clock.ElapsedMilliseconds < 5000);
        // The writer may take a batch before the sink blocks, so not every line beyond the capacity is dropped; most must be.
        Assert.True(dropped.Value >= GatewayLog.Capacity / 2, $"dropped {dropped.Value}");
        sink.Release.SetResult();
        await log.DisposeAsync();
    }

    [Theory]
    [InlineData(200, LogLevel.Info)]
    [InlineData(302, LogLevel.Info)]
    [InlineData(401, LogLevel.Warn)]
    [InlineData(429, LogLevel.Warn)]
    [InlineData(499, LogLevel.Warn)]
    [InlineData(500, LogLevel.Error)]
    [InlineData(504, LogLevel.Error)]
    public void Level_follows_the_status(int status, LogLevel level) => Assert.Equal(level, GatewayLog.LevelOf(status));
}
