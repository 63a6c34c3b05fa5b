using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;
using Portcullis.Gateway.Snapshots;
using Portcullis.Network;

namespace Portcullis.Gateway.Network;

/// <summary>
/// L1: checks the client address against <c>network.allow</c>/<c>network.deny</c> (one <c>NetworkAccess</c> search), the
/// bans of <c>network.autoBan</c>, then the connection limits of <c>network.connections</c> (per source, then in total,
/// from the current snapshot) when the connection is accepted, before any TLS byte is read. A refused connection is
/// closed, counted with its reason and logged through the <see cref="RefusalLogSampler"/>. Every accepted connection is
/// counted (<see cref="ConnectionCounts"/>) until it ends; with auto-ban on it is also registered under its source
/// address (<see cref="SourceConnections"/>), so that a ban also closes the connections opened before it; the
/// registration comes before the ban check, so a ban racing the accept either sees the connection or is seen by it.
/// A <c>network.trustedProxies</c> address is not held to <c>maxPerSource</c> (it carries many clients' connections);
/// <c>maxTotal</c> still counts it.
/// <para>
/// With <c>network.proxyProtocol</c> on, a connection from a <c>network.trustedProxies</c> peer must start with a PROXY
/// protocol header (v1 or v2), read here before TLS within <see cref="ProxyHeaderTimeout"/>: the connection's remote
/// end point becomes the real client, and the allow/deny check, the bans, the per-source limit and everything after see
/// that client. A connection from any other peer is checked (and counted) as usual, then its first bytes are looked at:
/// one that starts with a PROXY signature is closed (a client may not name its own address). A missing, malformed,
/// oversized or late header closes the connection too; each of these is counted with reason <c>proxy_protocol</c>.
/// </para>
/// </summary>
internal sealed class ConnectionFilter(SnapshotHolder snapshots, SourceBans bans, GatewayMetrics metrics, ILogger logger, RefusalLogSampler sampler)
{
    /// <summary>How long a connection may take to send its PROXY header (or, from other peers, its first bytes).</summary>
    public static readonly TimeSpan ProxyHeaderTimeout = TimeSpan.FromSeconds(5);

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
        if (snapshot.ProxyProtocol && snapshot.TrustedProxies.Contains(remote.Address))
        {
            return FromTrustedProxyAsync(next, connection, remote);
        }
        // From any other peer with the PROXY protocol on, its first bytes are looked at once it is admitted (and counted).
        return Admit(next, connection, remote.Address, lookForProxyHeader: snapshot.ProxyProtocol);
    };

    // The allow/deny check, the bans and the connection limits on the (real) client, then the next stage.
    private Task Admit(ConnectionDelegate next, ConnectionContext connection, IPAddress address, bool lookForProxyHeader)
    {
        var snapshot = snapshots.Current;
        if (!snapshot.IsAllowed(address))
        {
            return Refuse(connection, RefusalReasons.NetworkPolicy, "refused by network policy",
                () => Log.ConnectionRefused(logger, address.ToString()));
        }
        SourceConnections.Registration? registration = null;
        if (bans.Banner is not null)
        {
            registration = bans.Connections.Register(address, connection);
            if (bans.IsBanned(address))
            {
                registration.Dispose();
                return Refuse(connection, RefusalReasons.Banned, "the address is banned",
                    () => Log.ConnectionBanned(logger, address.ToString()));
            }
        }
        var limits = snapshot.Config.Network.Connections;
        var perSource = snapshot.TrustedProxies.Contains(address) ? int.MaxValue : limits.MaxPerSource;
        var refusal = _counts.TryAcquire(address, perSource, limits.MaxTotal, out var open);
        if (refusal != ConnectionCounts.Refusal.None)
        {
            registration?.Dispose();
            var (reason, limit, field) = refusal == ConnectionCounts.Refusal.Total
                ? (RefusalReasons.TotalConnectionLimit, limits.MaxTotal, "network.connections.maxTotal")
                : (RefusalReasons.SourceConnectionLimit, limits.MaxPerSource, "network.connections.maxPerSource");
            return Refuse(connection, reason, "too many connections",
                () => Log.ConnectionOverLimit(logger, address.ToString(), open, limit, field));
        }
        return ServeAsync(next, connection, address, registration, lookForProxyHeader);
    }

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

    private async Task ServeAsync(ConnectionDelegate next, ConnectionContext connection, IPAddress address,
        SourceConnections.Registration? registration, bool lookForProxyHeader)
    {
        try
        {
            if (lookForProxyHeader
                && await StartsWithProxyHeaderAsync(connection.Transport.Input, connection.ConnectionClosed).ConfigureAwait(false) is { } error)
            {
                RefuseProxyProtocol(connection, address, error);
                return;
            }
            await next(connection).ConfigureAwait(false);
        }
        finally
        {
            registration?.Dispose();
            _counts.Release(address);
        }
    }

    private async Task FromTrustedProxyAsync(ConnectionDelegate next, ConnectionContext connection, IPEndPoint peer)
    {
        var (header, error) = await ReadHeaderAsync(connection.Transport.Input, connection.ConnectionClosed).ConfigureAwait(false);
        if (header is null)
        {
            RefuseProxyProtocol(connection, peer.Address, error!);
            return;
        }
        if (header.Source is { } source)
        {
            // PROXY: the real client. LOCAL (a health check of the balancer itself) and v1 UNKNOWN keep the peer.
            connection.RemoteEndPoint = new IPEndPoint(Cidr.Normalize(source.Address), source.Port);
        }
        var client = ((IPEndPoint)connection.RemoteEndPoint!).Address;
        await Admit(next, connection, client, lookForProxyHeader: false).ConfigureAwait(false);
    }

    private void RefuseProxyProtocol(ConnectionContext connection, IPAddress peer, string error)
    {
        metrics.RefuseConnection(RefusalReasons.ProxyProtocol);
        if (sampler.ShouldLog(RefusalReasons.ProxyProtocol))
        {
            Log.ProxyProtocolRefused(logger, peer.ToString(), error);
        }
        connection.Abort(new ConnectionAbortedException(error));
    }

    /// <summary>Reads the PROXY header and leaves every byte after it (the TLS ClientHello) in the pipe.</summary>
    private static async Task<(ProxyHeader? Header, string? Error)> ReadHeaderAsync(PipeReader input, CancellationToken closed)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(closed);
        timeout.CancelAfter(ProxyHeaderTimeout);
        while (true)
        {
            ReadResult read;
            try
            {
                read = await input.ReadAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return (null, "no PROXY protocol header within " + ProxyHeaderTimeout.TotalSeconds + "s");
            }
            catch (Exception e) when (e is IOException or ConnectionResetException or ConnectionAbortedException)
            {
                return (null, "the connection ended before its PROXY protocol header");
            }
            var buffer = read.Buffer;
            var status = ProxyProtocol.TryParse(buffer, out var header, out var consumed);
            switch (status)
            {
                case ProxyHeaderStatus.Complete:
                    input.AdvanceTo(buffer.GetPosition(consumed));
                    return (header, null);
                case ProxyHeaderStatus.Invalid:
                    input.AdvanceTo(buffer.Start);
                    return (null, buffer.Length > 0 && ProxyProtocol.StartsLikeHeader(buffer) != ProxyHeaderStatus.Invalid
                        ? "malformed or oversized PROXY protocol header"
                        : "a trusted proxy's connection did not start with a PROXY protocol header");
                default:
                    if (read.IsCompleted)
                    {
                        input.AdvanceTo(buffer.Start);
                        return (null, "the connection ended before its PROXY protocol header was complete");
                    }
                    input.AdvanceTo(buffer.Start, buffer.End); // wait for more
                    break;
            }
        }
    }

    /// <summary>
    /// Looks at the first bytes of a connection from a peer that may not send a PROXY header, without consuming them: an
    /// error when they start with a PROXY signature, null when they cannot (or the peer closed; TLS deals with it).
    /// </summary>
    private static async Task<string?> StartsWithProxyHeaderAsync(PipeReader input, CancellationToken closed)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(closed);
        timeout.CancelAfter(ProxyHeaderTimeout);
        while (true)
        {
            ReadResult read;
            try
            {
                read = await input.ReadAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return null; // a silent peer: the TLS handshake's own timeout deals with it
            }
            catch (Exception e) when (e is IOException or ConnectionResetException or ConnectionAbortedException)
            {
                return null;
            }
            var buffer = read.Buffer;
            switch (ProxyProtocol.StartsLikeHeader(buffer))
            {
                case ProxyHeaderStatus.Complete:
                    input.AdvanceTo(buffer.Start);
                    return "a PROXY protocol header from a peer that is not in network.trustedProxies";
                case ProxyHeaderStatus.Invalid:
                    input.AdvanceTo(buffer.Start); // nothing consumed or examined: TLS reads the same bytes at once
                    return null;
                default:
                    if (read.IsCompleted)
                    {
                        input.AdvanceTo(buffer.Start);
                        return null;
                    }
                    input.AdvanceTo(buffer.Start, buffer.End);
                    break;
            }
        }
    }
}
