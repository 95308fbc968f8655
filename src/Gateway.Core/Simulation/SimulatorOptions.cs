namespace Gateway.Simulation;

/// <summary>
/// Behaviour of the built-in vLLM simulator. Mutable at runtime: every request reads the fields afresh, so tests can inject delays
/// and faults between requests without restarting the server.
/// </summary>
public sealed class SimulatorOptions
{
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>0 = any free port (see <see cref="VllmSimulator.Port"/>).</summary>
    public int Port { get; set; } = 8000;

    /// <summary>Model ids served; the first one answers requests that name no model (as vLLM does).</summary>
    public List<string> Models { get; set; } = ["Qwen/Qwen2.5-7B-Instruct"];

    /// <summary>Delay before the first token (stream) or part of the delay before the response (non-stream: TtftMs + ItlMs × tokens).</summary>
    public int TtftMs { get; set; }

    /// <summary>Delay between tokens when streaming.</summary>
    public int ItlMs { get; set; }

    /// <summary>Completion length when the request gives no max_tokens / max_completion_tokens (else the smaller of the two).</summary>
    public int Tokens { get; set; } = 16;

    /// <summary>
    /// &gt;0: answer lengths vary per request, log-normal with median <see cref="Tokens"/> and this sigma (0.8–1.0 resembles chat
    /// traffic: most answers short, a long tail), capped at 16 × the median. 0 = every answer is exactly <see cref="Tokens"/> long.
    /// </summary>
    public double TokensSigma { get; set; }

    /// <summary>0..1: the fraction of /v1 POSTs answered 500 with a vLLM error body.</summary>
    public double FailRate { get; set; }

    /// <summary>&gt;0: a stream aborts the connection after this many JSON data events (no [DONE], no clean chunked end).</summary>
    public int DieAfterEvents { get; set; }

    /// <summary>
    /// &gt;0: a stream sends this many tokens, then generates nothing more until its client leaves or the simulator stops (a request
    /// stalled in the engine): what a client received is then exactly what was generated.
    /// </summary>
    public int StallAfterTokens { get; set; }

    public int HealthDelayMs { get; set; }

    /// <summary>GET /health answers 503 (vLLM's dead-engine answer).</summary>
    public bool HealthFails { get; set; }

    /// <summary>vLLM still loading: GET /v1/models lists nothing and /v1 POSTs answer 503.</summary>
    public bool NotReady { get; set; }
}

/// <summary>One /v1 POST as received: path, exact body bytes, headers with lowercased names (multiple values joined by ",").</summary>
public sealed record CapturedRequest(string Path, byte[] Body, IReadOnlyDictionary<string, string> Headers);
