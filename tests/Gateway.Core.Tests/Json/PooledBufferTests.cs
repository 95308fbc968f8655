using Gateway.Json;

namespace Gateway.Tests.Json;

public sealed class PooledBufferTests
{
    [Fact]
    public void Growth_stops_at_the_capacity_limit()
    {
        // As the JSON relay reads an endless body 16 KB at a time with a limit of max + 1 bytes. (Past the pooled sizes, so the
        // arrays are exact: pooled ones round up to a power of two anyway.)
        const int limit = 40 * 1024 * 1024 + 1;
        using var buffer = new PooledBuffer(4096);
        while (buffer.Length < limit)
        {
            int room = Math.Min(1024 * 1024, limit - buffer.Length);
            buffer.GetMemory(room, limit);
            buffer.Advance(room);
            Assert.True(buffer.Array.Length <= limit, $"{buffer.Array.Length} bytes held for a {limit}-byte limit"); // doubling: 64 MB
        }
        Assert.Equal(limit, buffer.Length);
    }

    [Fact]
    public void A_hint_past_the_limit_still_gets_its_room()
    {
        using var buffer = new PooledBuffer(16);
        Assert.True(buffer.GetMemory(1000, 100).Length >= 1000);
    }

    [Fact]
    public void Arrays_past_the_pooled_size_are_exact_not_rounded_up()
    {
        using var buffer = new PooledBuffer(16);
        int size = PooledBuffer.MaxPooledArray + 1;
        buffer.GetMemory(size, size);
        Assert.Equal(size, buffer.Array.Length); // the shared pool would have given 32 MB
    }
}
