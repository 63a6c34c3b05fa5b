using System.Net;
using Portcullis.Network;

namespace Portcullis.Gateway.Network;

/// <summary>
/// The open connections in total and per source address (normalised: an IPv4-mapped IPv6 address is its IPv4 address),
/// for <c>network.connections.maxPerSource</c> and <c>maxTotal</c>. A connection is counted from its accept until it
/// ends; memory is one entry per source address with an open connection.
/// </summary>
internal sealed class ConnectionCounts
{
    private readonly Lock _gate = new();
    private readonly Dictionary<IPAddress, int> _bySource = [];
    private int _total;

    /// <summary>Connections open now, in total.</summary>
    public int Total
    {
        get
        {
            lock (_gate)
            {
                return _total;
            }
        }
    }

    /// <summary>
    /// Counts a new connection from <paramref name="address"/> when both limits allow it; otherwise counts nothing and
    /// says which limit refused it (<see cref="Refusal.Total"/> first) and how many connections were open.
    /// </summary>
    public Refusal TryAcquire(IPAddress address, int maxPerSource, int maxTotal, out int open)
    {
        var key = Cidr.Normalize(address);
        lock (_gate)
        {
            if (_total >= maxTotal)
            {
                open = _total;
                return Refusal.Total;
            }
            _bySource.TryGetValue(key, out var mine);
            if (mine >= maxPerSource)
            {
                open = mine;
                return Refusal.Source;
            }
            _bySource[key] = mine + 1;
            _total++;
            open = mine + 1;
            return Refusal.None;
        }
    }

    /// <summary>Ends a connection counted by <see cref="TryAcquire"/>.</summary>
    public void Release(IPAddress address)
    {
        var key = Cidr.Normalize(address);
        lock (_gate)
        {
            _total--;
            if (_bySource.TryGetValue(key, out var mine))
            {
                if (mine <= 1)
                {
                    _bySource.Remove(key);
                }
                else
                {
                    _bySource[key] = mine - 1;
                }
            }
        }
    }

    /// <summary>The outcome of <see cref="TryAcquire"/>.</summary>
    public enum Refusal
    {
        None,
        Source,
        Total,
    }
}
