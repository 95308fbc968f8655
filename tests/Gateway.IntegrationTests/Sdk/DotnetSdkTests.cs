using System.ClientModel;
using Gateway.Testing;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Embeddings;
using OpenAI.Models;

namespace Gateway.IntegrationTests.Sdk;

/// <summary>The official OpenAI .NET library (NuGet OpenAI) against the gateway, unchanged.</summary>
[Collection("gateway")]
public sealed class DotnetSdkTests
{
    private readonly GatewayFixture _fx;
    private readonly OpenAIClientOptions _options;

    public DotnetSdkTests(GatewayFixture fx)
    {
        _fx = fx;
        fx.ResetSimulator();
        _options = new OpenAIClientOptions { Endpoint = new Uri(fx.BaseUrl + "/v1"), RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(0) };
    }

    private ChatClient Chat(string key = "", string model = "qwen") => new(model, new ApiKeyCredential(key.Length > 0 ? key : GatewayFixture.Key), _options);

    [Fact]
    public async Task Chat_completion()
    {
        ChatCompletion completion = await Chat().CompleteChatAsync([new UserChatMessage("Hello!")], new ChatCompletionOptions { MaxOutputTokenCount = 4 });
        Assert.Equal("qwen", completion.Model);
        Assert.False(string.IsNullOrEmpty(completion.Content[0].Text));
        Assert.Equal(4, completion.Usage.OutputTokenCount);
    }

    [Fact]
    public async Task Chat_streaming()
    {
        var text = "";
        int updates = 0;
        ChatTokenUsage? usage = null;
        await foreach (var update in Chat().CompleteChatStreamingAsync([new UserChatMessage("hi")], new ChatCompletionOptions { MaxOutputTokenCount = 5 }))
        {
            updates++;
            Assert.Equal("qwen", update.Model);
            foreach (var part in update.ContentUpdate) text += part.Text;
            usage ??= update.Usage;
        }
        Assert.True(updates >= 6);
        Assert.False(string.IsNullOrEmpty(text));
        // The .NET library always asks for include_usage when streaming, and gets exactly one usage report.
        Assert.NotNull(usage);
        Assert.Equal(5, usage!.OutputTokenCount);
    }

    [Fact]
    public async Task Embeddings()
    {
        var client = new EmbeddingClient("qwen", new ApiKeyCredential(GatewayFixture.Key), _options);
        OpenAIEmbedding embedding = await client.GenerateEmbeddingAsync("hello");
        Assert.True(embedding.ToFloats().Length > 0);
    }

    [Fact]
    public async Task Models()
    {
        var client = new OpenAIModelClient(new ApiKeyCredential(GatewayFixture.OtherModelKey), _options);
        OpenAIModelCollection models = await client.GetModelsAsync();
        Assert.Equal(["other"], models.Select(m => m.Id).ToArray());
    }

    [Theory]
    [InlineData(401)]
    [InlineData(403)]
    [InlineData(404)]
    public async Task Errors_surface_as_client_result_exceptions_with_the_status(int status)
    {
        var client = status switch
        {
            401 => Chat("ml-" + new string('0', 64)),
            403 => Chat(GatewayFixture.OtherModelKey),
            _ => Chat(model: "no-such-model"),
        };
        var e = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(status, e.Status);
    }
}
