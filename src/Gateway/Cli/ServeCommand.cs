using System.Globalization;
using Gateway.Config;
using Gateway.Http;
using Gateway.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Gateway.Cli;

/// <summary><c>gateway serve</c>: Kestrel under Microsoft.Extensions.Hosting, which turns SIGTERM/Ctrl+C into a graceful drain.</summary>
internal static class ServeCommand
{
    public static async Task<int> RunAsync(string? file)
    {
        var path = file ?? (File.Exists("gateway.toml") ? "gateway.toml" : null);
        var options = path is null ? ConfigLoader.Load("", "environment") : ConfigLoader.LoadFile(path);
        // System.Net.Sockets reads this once, when the first socket is created: it must be set before anything opens one.
        if (options.Server.InlineIo) Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
        if (options.Server.IoThreads > 0)
        {
            Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT", options.Server.IoThreads.ToString(CultureInfo.InvariantCulture));
            Gateway.Net.EventLoops.Configure(options.Server.IoThreads);
        }

        IStore store;
        try { store = await StoreFactory.OpenAsync(options); }
        catch (StoreException e) { return CommandLine.Fail($"cannot open the store: {e.Message}"); }

        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { Args = [] });
        // Room beyond the drain for open streams to get their shutting_down event (GatewayHost.StopAsync) and for disposal.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.Server.ShutdownTimeout + GatewayHost.StreamEndGrace + TimeSpan.FromSeconds(2));
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(store);
        builder.Services.AddHostedService<GatewayService>();
        using var host = builder.Build();
        try
        {
            await host.RunAsync();
        }
        catch (StoreException e)
        {
            // Seeding or the first load failed (PostgreSQL went away, a config entry the store refuses): nothing to serve from.
            return CommandLine.Fail($"cannot load the registry: {e.Message}");
        }
        catch (IOException e) when (e.Message.Contains("bind", StringComparison.OrdinalIgnoreCase))
        {
            // Port taken or not allowed: one clear line and a non-zero exit, not a crash.
            return CommandLine.Fail($"cannot listen on {options.Server.Host}:{options.Server.Port}: {e.InnerException?.Message ?? e.Message}");
        }
        return 0;
    }
}

internal sealed class GatewayService(GatewayOptions options, IStore store) : IHostedService, IAsyncDisposable
{
    private readonly GatewayHost _gateway = new(options, store: store);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _gateway.StartAsync(cancellationToken);
        var s = _gateway.Snapshots.Current!;
        var mode = (options.DatabaseUrl, options.RedisUrl) switch
        {
            (null, null) => "embedded mode",
            (null, _) => "embedded storage, limits shared through Redis",
            _ => "scaled-out mode",
        };
        _gateway.Log.Info($"gateway listening on {options.Server.Host}:{_gateway.Port} ({mode}, {s.Models.Count} models, {_gateway.Admin.Status})");
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _gateway.Log.Info($"shutting down: draining in-flight requests for up to {options.Server.ShutdownTimeout.TotalSeconds:0}s");
        using var drain = new CancellationTokenSource(options.Server.ShutdownTimeout);
        await _gateway.StopAsync(drain.Token);
    }

    public ValueTask DisposeAsync() => _gateway.DisposeAsync();
}
