using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;
using Portcullis.Gateway.Snapshots;
using Portcullis.Tls;

namespace Portcullis.Gateway.Tls;

/// <summary>
/// L2: per-handshake TLS options from the current snapshot (so a rotated server certificate applies to new connections
/// without a restart), TLS 1.2+ with ECDHE/AEAD suites, and a client certificate requested during the handshake when
/// <c>tls.clientCAFile</c> is set. A presented certificate that does not chain to that CA, or that
/// <c>tls.revocationFile</c> revokes, fails the handshake; no certificate is allowed (token authentication may follow).
/// After the handshake <see cref="Track"/> registers the connection under its certificate
/// (<see cref="CertificateConnections"/>), so a reload that revokes it closes the connection.
/// </summary>
/// <remarks>
/// The handshake timeout is <c>tls.handshakeTimeout</c> of the configuration the host started with (Kestrel reads it
/// once, when the listener is built: restart-required). A client can reconnect in a loop with an untrusted, revoked or
/// long-lived certificate: every line about a certificate is logged through the <see cref="RefusalLogSampler"/> (per
/// reason), while the metrics count every handshake.
/// </remarks>
internal sealed class TlsHandshake(SnapshotHolder snapshots, CertificateConnections connections, GatewayMetrics metrics, ILogger logger,
    RefusalLogSampler sampler, TimeSpan handshakeTimeout, bool requireClientCertificate = false)
{
    private const string FactsKey = "Portcullis.Tls.CertificateFacts";

    /// <summary>The sampler's key for the lines of certificates let in with <c>tls.clientCertificates.action: warn</c>.</summary>
    private const string LifetimeWarning = "lifetime_warning";

    public TlsHandshakeCallbackOptions Options => new()
    {
        OnConnection = context =>
        {
            var snapshot = snapshots.Current;
            var options = new SslServerAuthenticationOptions
            {
                ServerCertificateContext = snapshot.ServerCertificate,
                EnabledSslProtocols = snapshot.TlsProtocols,
                CipherSuitesPolicy = snapshot.CipherSuites,
                ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
                ClientCertificateRequired = snapshot.Authenticator.CertificateValidator is not null,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            };
            if (snapshot.Authenticator.CertificateValidator is { } validator)
            {
                var connection = context.Connection;
                options.RemoteCertificateValidationCallback = (_, certificate, chain, _) =>
                    certificate is null ? AllowWithout() : Verify(snapshot, validator, certificate, chain, connection);
            }
            return ValueTask.FromResult(options);
        },
        HandshakeTimeout = handshakeTimeout,
    };

    // portcullis webhook requires a client certificate (the API server's); serve lets a token follow instead.
    private bool AllowWithout()
    {
        if (!requireClientCertificate)
        {
            return true;
        }
        metrics.RefuseCertificate(RefusalReasons.Missing);
        return false;
    }

    // The chain result is cached by the validator (keyed by the certificate's SHA-256), so L3 reads it back without a
    // second chain build; the revocation list is consulted on every handshake, after the cache, so it is never bypassed.
    private bool Verify(GatewaySnapshot snapshot, ClientCertificateValidator validator, X509Certificate certificate, X509Chain? presented,
        ConnectionContext connection)
    {
        var leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        var result = validator.Validate(leaf, presented?.ChainPolicy.ExtraStore);
        if (result.Error is not null)
        {
            metrics.RefuseCertificate(RefusalReasons.Untrusted);
            if (sampler.ShouldLog(RefusalReasons.Untrusted))
            {
                // The subject of a certificate that failed verification is attacker-chosen text: escaped before it is logged.
                Log.ClientCertificateRefused(logger, Portcullis.Diagnostics.SafeText.Of(leaf.Subject, 256), result.Error);
            }
            return false;
        }
        var facts = CertificateFacts.Of(leaf);
        if (snapshot.Revocation.Match(facts, snapshot.Time.GetUtcNow()) is { } entry)
        {
            RefuseRevoked(facts, entry);
            return false;
        }
        if (snapshot.CertificateLifetime is { } lifetimePolicy && !CheckLifetime(lifetimePolicy, leaf))
        {
            return false;
        }
        connection.Items[FactsKey] = facts;
        return true;
    }

    /// <summary>
    /// Connection middleware after the handshake: registers a client-certificate connection until it ends, then checks
    /// the revocation list of the snapshot current now. A reload that swaps a new list in either sees the registration
    /// (and aborts the connection) or is seen by this check, so no connection slips between the handshake and a reload.
    /// </summary>
    public ConnectionDelegate Track(ConnectionDelegate next) => connection =>
    {
        if (!connection.Items.TryGetValue(FactsKey, out var value) || value is not CertificateFacts facts)
        {
            return next(connection);
        }
        var registration = connections.Register(connection, facts);
        var snapshot = snapshots.Current;
        if (snapshot.Revocation.Match(facts, snapshot.Time.GetUtcNow()) is { } entry)
        {
            registration.Dispose();
            RefuseRevoked(facts, entry);
            connection.Abort(new ConnectionAbortedException("the client certificate is revoked"));
            return Task.CompletedTask;
        }
        return ServeAsync(next, connection, registration);
    };

    /// <summary>After a reload: closes the open connections whose certificate the new snapshot's list revokes.</summary>
    public void CloseRevoked(GatewaySnapshot snapshot)
    {
        var now = snapshot.Time.GetUtcNow();
        var list = snapshot.Revocation;
        if (list.Entries.Count == 0)
        {
            return;
        }
        var (count, first, entry) = connections.AbortRevoked(facts => list.Match(facts, now));
        if (count > 0)
        {
            Log.RevokedConnectionsClosed(logger, count, Portcullis.Diagnostics.SafeText.Of(first!.Subject, 256), entry!.Describe());
        }
    }

    private static async Task ServeAsync(ConnectionDelegate next, ConnectionContext connection, CertificateConnections.Registration registration)
    {
        using (registration)
        {
            await next(connection).ConfigureAwait(false);
        }
    }

    // Counted every time; logged through the sampler (a revoked certificate retrying in a loop must not flood the log).
    private void RefuseRevoked(CertificateFacts facts, RevocationEntry entry)
    {
        metrics.RefuseCertificate(RefusalReasons.Revoked);
        if (sampler.ShouldLog(RefusalReasons.Revoked))
        {
            Log.RevokedCertificateRefused(logger, Portcullis.Diagnostics.SafeText.Of(facts.Subject, 256), entry.Describe(),
                Portcullis.Diagnostics.SafeText.Of(entry.Reason, 256));
        }
    }

    // After the chain: an untrusted certificate is refused as untrusted whatever its lifetime. Not part of the validator's
    // cache: the policy is the handshake's snapshot's, so a reload applies to the next handshake.
    private bool CheckLifetime(CertificateLifetimePolicy policy, X509Certificate2 leaf)
    {
        if (!policy.IsExceededBy(leaf, out var lifetime))
        {
            return true;
        }
        if (policy.Refuse)
        {
            metrics.RefuseCertificate(RefusalReasons.Lifetime);
        }
        else
        {
            metrics.CertificateLifetimeWarnings.Add(1);
        }
        if (sampler.ShouldLog(policy.Refuse ? RefusalReasons.Lifetime : LifetimeWarning))
        {
            var subject = Portcullis.Diagnostics.SafeText.Of(leaf.Subject, 256);
            var (actual, limit) = (CertificateLifetime.Format(lifetime), CertificateLifetime.Format(policy.MaxLifetime));
            if (policy.Refuse)
            {
                Log.ClientCertificateLifetimeRefused(logger, subject, actual, limit);
            }
            else
            {
                Log.ClientCertificateLifetimeWarning(logger, subject, actual, limit);
            }
        }
        return !policy.Refuse;
    }
}
