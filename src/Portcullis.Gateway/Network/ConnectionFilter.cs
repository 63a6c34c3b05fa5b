using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Snapshots;

namespace Portcullis.Gateway.Network;

/// <summary>
/// L1: checks the peer address against <c>network.allow</c>/<c>network.deny</c> when the connection is accepted, before
/// any TLS byte is read. A refused connection is closed and counted.
/// </summary>
internal sealed class ConnectionFilter(SnapshotHolder snapshots, GatewayMetrics metrics, ILogger logger)
{
    public ConnectionDelegate Wrap(ConnectionDelegate next) => connection =>
    {
        if (connection.RemoteEndPoint is IPEndPoint remote && !snapshots.Current.IsAllowed(remote.Address))
        {
            metrics.RefusedConnections.Inc();
            Log.ConnectionRefused(logger, remote.Address.ToString());
            connection.Abort(new ConnectionAbortedException("refused by network policy"));
            return Task.CompletedTask;
        }
        return next(connection);
    };
}
