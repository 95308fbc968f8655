using System.Globalization;
using Gateway.Http;

namespace Gateway.Tests.Http;

public sealed class GatewayHeadersTests
{
    [Theory]
    [InlineData(0.0, "0")]
    [InlineData(3.0, "3")]
    [InlineData(2.5, "2.5")]
    [InlineData(0.101, "0.101")]
    [InlineData(0.05, "0.05")]
    [InlineData(0.0004, "0")]
    [InlineData(0.0006, "0.001")]
    [InlineData(12.3456, "12.346")]
    [InlineData(999.9996, "1000")]
    [InlineData(1234567.891, "1234567.891")]
    public void Overhead_milliseconds_read_like_the_custom_format(double ms, string expected)
    {
        Assert.Equal(expected, GatewayHeaders.FormatMilliseconds(ms));
        Assert.Equal(expected, ms.ToString("0.###", CultureInfo.InvariantCulture));
    }

    [Fact]
    public void Random_values_round_to_the_microsecond_without_trailing_zeros()
    {
        var random = new Random(7);
        for (int i = 0; i < 20_000; i++)
        {
            double ms = random.NextDouble() * Math.Pow(10, random.Next(-4, 6));
            var text = GatewayHeaders.FormatMilliseconds(ms);
            var parsed = double.Parse(text, CultureInfo.InvariantCulture);
            Assert.InRange(Math.Abs(parsed - ms), 0, 0.0005 + 1e-9);
            int dot = text.IndexOf('.');
            if (dot >= 0)
            {
                Assert.InRange(text.Length - dot - 1, 1, 3);
                Assert.NotEqual('0', text[^1]);
            }
            // Away from a rounding tie, the custom format agrees digit for digit.
            double scaled = ms * 1000;
            if (Math.Abs(scaled - Math.Floor(scaled) - 0.5) > 1e-6)
                Assert.Equal(ms.ToString("0.###", CultureInfo.InvariantCulture), text);
        }
    }

    [Fact]
    public void Negative_and_non_finite_values_fall_back_to_the_custom_format()
    {
        Assert.Equal("-1.5", GatewayHeaders.FormatMilliseconds(-1.5));
        Assert.Equal(double.NaN.ToString("0.###", CultureInfo.InvariantCulture), GatewayHeaders.FormatMilliseconds(double.NaN));
    }
}
