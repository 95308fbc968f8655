namespace Gateway.Config;

/// <summary>Rules a model's settings follow wherever they come from (gateway.toml or the admin API), so both accept the same things.</summary>
public static class ModelRules
{
    public const int MaxWeight = 1_000_000;

    /// <summary>Request fields a default could only corrupt: they identify the call rather than tune it.</summary>
    public static bool IsReservedParam(string name) => name is "model" or "messages" or "prompt" or "input" or "stream";
}
