using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;
using Portcullis.Gateway.Snapshots;

namespace Portcullis.Gateway.Network;

/// <summary>
/// L1: checks the peer address against <c>network.allow</c>/<c>network.deny</c> (one <c>NetworkAccess</c> search), the
/// bans of <c>network.autoBan</c>, then the connection limits of <c>network.connections</c> (per source, then in total,
/// from the current snapshot) when the connection is accepted, before any TLS byte is read. A refused connection is
/// closed, counted with its reason and logged through the <see cref="RefusalLogSampler"/>. Every accepted connection is
/// counted (<see cref="ConnectionCounts"/>) until it ends; with auto-ban on it is also registered under its source
/// address (<see cref="SourceConnections"/>), so that a ban also closes the connections opened before it; the
/// registration comes before the ban check, so a ban racing the accept either sees the connection or is seen by it.
/// </summary>
internal sealed class ConnectionFilter(SnapshotHolder snapshots, SourceBans bans, GatewayMetrics metrics, ILogger logger, RefusalLogSampler sampler)
{
    private readonly ConnectionCounts _counts = new();

    /// <summary>The connections open now (tests).</summary>
    internal ConnectionCounts Counts => _counts;

    public ConnectionDelegate Wrap(ConnectionDelegate next) => connection =>
    {
        if (connection.RemoteEndPoint is not IPEndPoint remote)
        {
            return next(connection);
        }
        var snapshot = snapshots.Current;
        if (!snapshot.IsAllowed(remote.Address))
        {
            return Refuse(connection, RefusalReasons.NetworkPolicy, "refused by network policy",
                () => Log.ConnectionRefused(logger, remote.Address.ToString()));
        }
        SourceConnections.Registration? registration = null;
        if (bans.Banner is not null)
        {
            registration = bans.Connections.Register(remote.Address, connection);
            if (bans.IsBanned(remote.Address))
            {
                registration.Dispose();
                return Refuse(connection, RefusalReasons.Banned, "the address is banned",
                    () => Log.ConnectionBanned(logger, remote.Address.ToString()));
            }
        }
        var limits = snapshot.Config.Network.Connections;
        var refusal = _counts.TryAcquire(remote.Address, limits.MaxPerSource, limits.MaxTotal, out var open);
        if (refusal != ConnectionCounts.Refusal.None)
        {
            registration?.Dispose();
            var (reason, limit, field) = refusal == ConnectionCounts.Refusal.Total
                ? (RefusalReasons.TotalConnectionLimit, limits.MaxTotal, "network.connections.maxTotal")
                : (RefusalReasons.SourceConnectionLimit, limits.MaxPerSource, "network.connections.maxPerSource");
            return Refuse(connection, reason, "too many connections",
                () => Log.ConnectionOverLimit(logger, remote.Address.ToString(), open, limit, field));
        }
        return ServeAsync(next, connection, remote.Address, registration);
    };

    private Task Refuse(ConnectionContext connection, string reason, string message, Action log)
    {
        metrics.RefuseConnection(reason);
        if (sampler.ShouldLog(reason))
        {
            log();
        }
        connection.Abort(new ConnectionAbortedException(message));
        return Task.CompletedTask;
    }

    private async Task ServeAsync(ConnectionDelegate next, ConnectionContext connection, IPAddress address, SourceConnections.Registration? registration)
    {
        try
        {
            await next(connection).ConfigureAwait(false);
        }
        finally
        {
            registration?.Dispose();
            _counts.Release(address);
        }
    }
}
