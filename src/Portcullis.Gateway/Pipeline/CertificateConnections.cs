using Microsoft.AspNetCore.Connections;
using Portcullis.Tls;

namespace Portcullis.Gateway.Pipeline;

/// <summary>
/// The open connections that presented a client certificate, with what the revocation list matches on
/// (<see cref="CertificateFacts"/>), so that a reload that revokes a certificate closes the connections it already holds —
/// and with them every watch, exec, attach, port-forward and log stream on them. The TLS stage registers a connection once
/// its handshake is done and removes it when the connection ends; it is on whenever <c>tls.clientCAFile</c> is set (a
/// revocation file can be added by a reload). Memory is one entry (the facts: a fingerprint, a serial, two names) per open
/// client-certificate connection, so it grows only with the connections Kestrel already holds.
/// </summary>
internal sealed class CertificateConnections
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (ConnectionContext Connection, CertificateFacts Certificate)> _open = new(StringComparer.Ordinal);

    /// <summary>Registers <paramref name="connection"/>; disposing the result removes it.</summary>
    public Registration Register(ConnectionContext connection, CertificateFacts certificate)
    {
        lock (_gate)
        {
            _open[connection.ConnectionId] = (connection, certificate);
        }
        return new Registration(this, connection.ConnectionId);
    }

    /// <summary>The number of registered connections.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _open.Count;
            }
        }
    }

    /// <summary>
    /// Aborts every registered connection whose certificate <paramref name="revoked"/> names (an entry, or null), and
    /// returns how many, with the first one's certificate and entry for the log.
    /// </summary>
    public (int Count, CertificateFacts? First, RevocationEntry? Entry) AbortRevoked(Func<CertificateFacts, RevocationEntry?> revoked)
    {
        ArgumentNullException.ThrowIfNull(revoked);
        List<(ConnectionContext Connection, CertificateFacts Certificate, RevocationEntry Entry)> doomed = [];
        lock (_gate)
        {
            foreach (var (connection, certificate) in _open.Values)
            {
                if (revoked(certificate) is { } entry)
                {
                    doomed.Add((connection, certificate, entry));
                }
            }
        }
        foreach (var d in doomed)
        {
            d.Connection.Abort(new ConnectionAbortedException("the client certificate is revoked")); // outside the lock
        }
        return doomed.Count == 0 ? (0, null, null) : (doomed.Count, doomed[0].Certificate, doomed[0].Entry);
    }

    private void Remove(string connectionId)
    {
        lock (_gate)
        {
            _open.Remove(connectionId);
        }
    }

    /// <summary>One registered connection; <see cref="Dispose"/> removes it (once).</summary>
    internal sealed class Registration(CertificateConnections owner, string connectionId) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Remove(connectionId);
            }
        }
    }
}
