using System.Net;
using System.Net.Sockets;

namespace Gateway.Core.Tests.Net;

/// <summary>Two connected loopback TCP sockets: the one under test (the client side) and its peer, accepted from a one-off listener.</summary>
internal static class LoopbackPair
{
    public static (Socket Client, Socket Peer) Open()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        return (client, listener.Accept());
    }
}
