using System.Net;
using Microsoft.AspNetCore.Connections;
using Portcullis.Network;

namespace Portcullis.Gateway.Pipeline;

/// <summary>
/// The open connections of each source address (normalised: an IPv4-mapped IPv6 address is its IPv4 address), so that a
/// ban closes the connections the source opened before it. The connection filter (<c>Network/ConnectionFilter</c>)
/// registers every accepted connection and removes it when the connection ends; memory is one entry per open connection
/// (it grows only with the connections Kestrel already holds), and an address with no open connection has no entry.
/// </summary>
internal sealed class SourceConnections
{
    private readonly Lock _gate = new();
    private readonly Dictionary<IPAddress, Dictionary<string, ConnectionContext>> _bySource = [];

    /// <summary>Registers <paramref name="connection"/> under <paramref name="address"/>; disposing the result removes it.</summary>
    public Registration Register(IPAddress address, ConnectionContext connection)
    {
        var key = Cidr.Normalize(address);
        lock (_gate)
        {
            if (!_bySource.TryGetValue(key, out var open))
            {
                open = new Dictionary<string, ConnectionContext>(StringComparer.Ordinal);
                _bySource.Add(key, open);
            }
            open[connection.ConnectionId] = connection;
        }
        return new Registration(this, key, connection.ConnectionId);
    }

    /// <summary>The number of open connections registered for <paramref name="address"/>.</summary>
    public int Count(IPAddress address)
    {
        lock (_gate)
        {
            return _bySource.TryGetValue(Cidr.Normalize(address), out var open) ? open.Count : 0;
        }
    }

    /// <summary>
    /// Aborts every open connection of <paramref name="address"/> except <paramref name="spared"/> (a connection id: the
    /// one whose refused request imposed the ban, closed after its answer instead); returns how many were aborted.
    /// </summary>
    public int AbortAll(IPAddress address, string? spared, string reason)
    {
        List<ConnectionContext> doomed;
        lock (_gate)
        {
            if (!_bySource.TryGetValue(Cidr.Normalize(address), out var open))
            {
                return 0;
            }
            doomed = [.. open.Values.Where(c => !string.Equals(c.ConnectionId, spared, StringComparison.Ordinal))];
        }
        foreach (var connection in doomed)
        {
            connection.Abort(new ConnectionAbortedException(reason)); // outside the lock: Abort may run callbacks
        }
        return doomed.Count;
    }

    private void Remove(IPAddress key, string connectionId)
    {
        lock (_gate)
        {
            if (_bySource.TryGetValue(key, out var open) && open.Remove(connectionId) && open.Count == 0)
            {
                _bySource.Remove(key);
            }
        }
    }

    /// <summary>One registered connection; <see cref="Dispose"/> removes it (once).</summary>
    internal sealed class Registration(SourceConnections owner, IPAddress key, string connectionId) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Remove(key, connectionId);
            }
        }
    }
}
