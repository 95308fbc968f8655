using Gateway.Http;

namespace Gateway.Core.Tests.Http;

public sealed class OpenAiErrorTests
{
    [Fact]
    public void An_unknown_route_is_named_and_a_request_without_a_path_says_so()
    {
        Assert.Equal("Unknown route: /v2/x.", OpenAiError.NotFound("/v2/x").Message);
        Assert.Equal("Unknown route: the request names no path (e.g. OPTIONS *).", OpenAiError.NotFound("").Message); // was "Unknown route: ."
    }
}
