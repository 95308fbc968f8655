using Gateway.Http;
using Microsoft.Extensions.Primitives;

namespace Gateway.Core.Tests.Http;

public sealed class RequestIdTests
{
    [Fact]
    public void Every_byte_is_written_as_convert_writes_it_in_lowercase_hex()
    {
        var bytes = Enumerable.Range(0, 256).Select(b => (byte)b).ToArray();
        var chars = new char[512];
        RequestId.WriteHex(bytes, chars);
        Assert.Equal(Convert.ToHexStringLower(bytes), new string(chars));
    }

    [Fact]
    public void New_ids_are_32_lowercase_hex_and_differ()
    {
        var ids = Enumerable.Range(0, 1000).Select(_ => RequestId.New()).ToList();
        Assert.All(ids, id => Assert.Matches("^[0-9a-f]{32}$", id));
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    [Theory]
    [InlineData("trace-42", "trace-42")]
    [InlineData("two words", null)]
    [InlineData("", null)]
    public void A_sane_incoming_id_is_kept_and_any_other_replaced(string incoming, string? kept)
    {
        var id = RequestId.From(new StringValues(incoming));
        if (kept is not null) Assert.Equal(kept, id);
        else Assert.Matches("^[0-9a-f]{32}$", id);
    }
}
