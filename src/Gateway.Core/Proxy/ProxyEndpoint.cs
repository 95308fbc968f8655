namespace Gateway.Proxy;

public enum ProxyEndpoint : byte { ChatCompletions, Completions, Embeddings }
