using System.Net;
using System.Net.Sockets;
using Gateway.Net;
using Microsoft.AspNetCore.Connections;

namespace Gateway.Http.Transport;

/// <summary>
/// Kestrel's transport on the gateway's own event loops (<see cref="EventLoops"/>) instead of .NET's socket engine: accepted
/// connections are read only when epoll reported bytes, and the upstream connections of the same requests share the loop.
/// Accepting stays on .NET's sockets: it happens once per connection, not per request.
/// </summary>
internal sealed class LoopTransportFactory(bool inlineIo, int backlog, TimeSpan writeTimeout) : IConnectionListenerFactory
{
    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not IPEndPoint ip) throw new NotSupportedException($"The loop transport listens on IP endpoints, not {endpoint}.");
        var socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (ip.Address.Equals(IPAddress.IPv6Any)) socket.DualMode = true;
            socket.Bind(ip);
            socket.Listen(backlog);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            socket.Dispose();
            throw new AddressInUseException(e.Message, e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new ValueTask<IConnectionListener>(new Listener(socket, inlineIo, writeTimeout));
    }

    private sealed class Listener(Socket socket, bool inlineIo, TimeSpan writeTimeout) : IConnectionListener
    {
        public EndPoint EndPoint { get; } = socket.LocalEndPoint!;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                Socket accepted;
                try { accepted = await socket.AcceptAsync(cancellationToken).ConfigureAwait(false); }
                catch (ObjectDisposedException) { return null; } // unbound
                catch (SocketException e) when (e.SocketErrorCode == SocketError.OperationAborted) { return null; }
                catch (SocketException) { continue; } // the peer gave up before we took it
                try
                {
                    return new LoopConnection(accepted, EventLoops.Next(), inlineIo, writeTimeout);
                }
                catch (SocketException)
                {
                    accepted.Dispose(); // reset between accept and setup (or out of epoll room): this one only
                }
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            socket.Dispose();
            return default;
        }

        public ValueTask DisposeAsync()
        {
            socket.Dispose();
            return default;
        }
    }
}
