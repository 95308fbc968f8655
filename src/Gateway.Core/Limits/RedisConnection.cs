using StackExchange.Redis;

namespace Gateway.Limits;

/// <summary>Turns the seed's REDIS_URL (<c>redis://[:password@]host:port[/db]</c>, or a plain <c>host:port</c>) into a connection.</summary>
public static class RedisConnection
{
    public static ConfigurationOptions Parse(string url)
    {
        ConfigurationOptions options;
        if (url.StartsWith("redis://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("rediss://", StringComparison.OrdinalIgnoreCase))
        {
            var uri = new Uri(url);
            options = new ConfigurationOptions { Ssl = uri.Scheme.Equals("rediss", StringComparison.OrdinalIgnoreCase) };
            options.EndPoints.Add(uri.Host, uri.Port > 0 ? uri.Port : 6379);
            if (uri.UserInfo.Length > 0)
            {
                var parts = Uri.UnescapeDataString(uri.UserInfo).Split(':', 2);
                if (parts.Length == 2) { if (parts[0].Length > 0) options.User = parts[0]; options.Password = parts[1]; }
                else options.Password = parts[0];
            }
            if (uri.AbsolutePath.Trim('/') is { Length: > 0 } db && int.TryParse(db, out var n)) options.DefaultDatabase = n;
        }
        else options = ConfigurationOptions.Parse(url);
        // Start even when Redis is down (limits fail open) and reconnect by itself when it returns.
        options.AbortOnConnectFail = false;
        options.ConnectTimeout = 2000;
        options.ReconnectRetryPolicy = new LinearRetry(250);
        // While disconnected, fail at once instead of queueing: a request must not wait for a Redis that is not there.
        options.BacklogPolicy = BacklogPolicy.FailFast;
        return options;
    }
}
