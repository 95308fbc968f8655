using Gateway.Observability;

namespace Gateway.Tests.Observability;

public sealed class PromptBucketsTests
{
    [Theory]
    [InlineData(0, "le_1k")]
    [InlineData(1, "le_1k")]
    [InlineData(1024, "le_1k")]
    [InlineData(1025, "1k_2k")]
    [InlineData(2048, "1k_2k")]
    [InlineData(2049, "2k_4k")]
    [InlineData(4096, "2k_4k")]
    [InlineData(4097, "4k_8k")]
    [InlineData(8192, "4k_8k")]
    [InlineData(8193, "8k_16k")]
    [InlineData(16384, "8k_16k")]
    [InlineData(16385, "16k_32k")]
    [InlineData(32768, "16k_32k")]
    [InlineData(32769, "32k_64k")]
    [InlineData(65536, "32k_64k")]
    [InlineData(65537, "gt_64k")]
    [InlineData(10_000_000, "gt_64k")]
    [InlineData(-5, "le_1k")]
    public void Prompt_tokens_fall_in_the_bucket_whose_upper_edge_is_inclusive(long tokens, string bucket) =>
        Assert.Equal(bucket, PromptBuckets.Label(tokens));
}
