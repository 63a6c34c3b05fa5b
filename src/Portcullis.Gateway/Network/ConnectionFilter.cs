using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;
using Portcullis.Gateway.Snapshots;

namespace Portcullis.Gateway.Network;

/// <summary>
/// L1: checks the peer address against <c>network.allow</c>/<c>network.deny</c> (one <c>NetworkAccess</c> search) and
/// the bans of <c>network.autoBan</c> when the connection is accepted, before any TLS byte is read. A refused connection
/// is closed and counted. With auto-ban on, every accepted connection is registered under its source address
/// (<see cref="SourceConnections"/>) until it ends, so that a ban also closes the connections opened before it; the
/// registration comes before the ban check, so a ban racing the accept either sees the connection or is seen by it.
/// </summary>
internal sealed class ConnectionFilter(SnapshotHolder snapshots, SourceBans bans, GatewayMetrics metrics, ILogger logger)
{
    public ConnectionDelegate Wrap(ConnectionDelegate next) => connection =>
    {
        if (connection.RemoteEndPoint is IPEndPoint remote)
        {
            if (!snapshots.Current.IsAllowed(remote.Address))
            {
                metrics.RefuseConnection(RefusalReasons.NetworkPolicy);
                Log.ConnectionRefused(logger, remote.Address.ToString());
                connection.Abort(new ConnectionAbortedException("refused by network policy"));
                return Task.CompletedTask;
            }
            if (bans.Banner is null)
            {
                return next(connection);
            }
            var registration = bans.Connections.Register(remote.Address, connection);
            if (bans.IsBanned(remote.Address))
            {
                registration.Dispose();
                metrics.RefuseConnection(RefusalReasons.Banned);
                Log.ConnectionBanned(logger, remote.Address.ToString());
                connection.Abort(new ConnectionAbortedException("the address is banned"));
                return Task.CompletedTask;
            }
            return ServeAsync(next, connection, registration);
        }
        return next(connection);
    };

    private static async Task ServeAsync(ConnectionDelegate next, ConnectionContext connection, SourceConnections.Registration registration)
    {
        using (registration)
        {
            await next(connection).ConfigureAwait(false);
        }
    }
}
