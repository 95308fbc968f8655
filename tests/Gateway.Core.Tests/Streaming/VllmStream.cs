using System.Text;

namespace Gateway.Tests.Streaming;

/// <summary>Builds the bytes vLLM sends for a chat stream with include_usage + continuous_usage_stats (what the gateway always asks for).</summary>
internal static class VllmStream
{
    public const string ModelId = "Qwen/Qwen2.5-7B-Instruct";

    public static string Chat(int tokens, bool continuous = true, bool includeUsage = true, bool done = true, string newline = "\n")
    {
        var sb = new StringBuilder();
        const int prompt = 12;
        string Usage(int completion) => continuous ? $",\"usage\":{{\"prompt_tokens\":{prompt},\"total_tokens\":{prompt + completion},\"completion_tokens\":{completion}}}" : "";
        void Event(string json) => sb.Append("data: ").Append(json).Append(newline).Append(newline);
        const string head = "\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"" + ModelId + "\"";
        Event("{" + head + ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]" + Usage(0) + "}");
        for (int i = 1; i <= tokens; i++)
        {
            var finish = i == tokens ? "\"length\"" : "null";
            Event("{" + head + ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok" + i + " \"},\"logprobs\":null,\"finish_reason\":" + finish + "}]" + Usage(i) + "}");
        }
        if (includeUsage)
            Event("{" + head + ",\"choices\":[],\"usage\":{\"prompt_tokens\":" + prompt + ",\"total_tokens\":" + (prompt + tokens) + ",\"completion_tokens\":" + tokens + "}}");
        if (done) Event("[DONE]");
        return sb.ToString();
    }
}
