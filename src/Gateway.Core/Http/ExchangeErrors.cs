namespace Gateway.Http;

public static class ExchangeErrors
{
    /// <summary>Sends an OpenAI-shaped error. Errors are rare and small, so one array per error is fine.</summary>
    public static ValueTask WriteErrorAsync(this Exchange exchange, in OpenAiError error) =>
        exchange.WriteBodyAsync(error.Status, "application/json", error.ToBytes());
}
