using System.Net;
using System.Net.Sockets;
using Gateway.Proxy.Upstream;

namespace Gateway.Core.Tests.Proxy.Upstream;

/// <summary>
/// A named backend's addresses are resolved once per address lifetime and shared by the connects in between: the AOT binary's
/// resolver blocks a pool thread per lookup, so a burst of new connections must not each wait for one.
/// </summary>
public sealed class Http1PoolResolveTests : IDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

    public Http1PoolResolveTests()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(64); // the kernel completes the pool's connects; nothing needs to accept them
    }

    private int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

    public void Dispose() => _listener.Dispose();

    private static Http1ClientOptions Options(TimeSpan lifetime) => new() { AddressLifetime = lifetime, IdleTimeout = TimeSpan.FromMinutes(5) };

    [Fact]
    public async Task A_burst_of_connects_resolves_the_name_once()
    {
        using var pool = new Http1Pool("localhost", Port, Options(TimeSpan.FromMinutes(5)));
        var connections = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => pool.ConnectAsync(null, CancellationToken.None).AsTask()));
        Assert.Equal(1, pool.Resolutions);
        Assert.Equal(16, pool.ConnectionsOpened);
        foreach (var connection in connections) connection.Discard();
    }

    [Fact]
    public async Task The_name_is_resolved_again_once_its_addresses_have_lived_their_time()
    {
        using var pool = new Http1Pool("localhost", Port, Options(TimeSpan.FromMilliseconds(50)));
        (await pool.ConnectAsync(null, CancellationToken.None)).Discard();
        Assert.Equal(1, pool.Resolutions);
        await Task.Delay(200);
        (await pool.ConnectAsync(null, CancellationToken.None)).Discard();
        Assert.Equal(2, pool.Resolutions);
    }

    [Fact]
    public async Task Addresses_that_all_refused_are_not_kept()
    {
        int closedPort;
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            closedPort = ((IPEndPoint)probe.LocalEndPoint!).Port; // bound, never listening: connects are refused
            using var pool = new Http1Pool("localhost", closedPort, Options(TimeSpan.FromMinutes(5)));
            for (int i = 1; i <= 2; i++)
            {
                var refused = await Assert.ThrowsAsync<UpstreamException>(() => pool.ConnectAsync(null, CancellationToken.None).AsTask());
                Assert.Equal(UpstreamFailure.ConnectFailed, refused.Failure);
                Assert.Equal(i, pool.Resolutions); // the backend may have moved: the next connect asks the resolver again
            }
        }
    }
}
