using Gateway.Config;
using Gateway.Routing;

namespace Gateway.Tests;

internal static class TestModels
{
    public static ModelEntry Create(
        string alias = "qwen", string modelId = "Qwen/Qwen2.5-7B-Instruct", bool? enableThinking = null, string? prefix = null,
        params (string Name, string Json)[] defaults) =>
        ModelEntry.Create(new ModelConfig
        {
            Name = alias,
            ModelId = modelId,
            EnableThinking = enableThinking,
            SystemPromptPrefix = prefix,
            DefaultParams = defaults.Select(d => new KeyValuePair<string, string>(d.Name, d.Json)).ToList(),
            Backends = [new BackendConfig { Url = "http://127.0.0.1:1" }],
        }, 1_700_000_000, null);
}
