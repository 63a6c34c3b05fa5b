using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Snapshots;
using Portcullis.Tls;

namespace Portcullis.Gateway.Tls;

/// <summary>
/// L2: per-handshake TLS options from the current snapshot (so a rotated server certificate applies to new connections
/// without a restart), TLS 1.2+ with ECDHE/AEAD suites, and a client certificate requested during the handshake when
/// <c>tls.clientCAFile</c> is set. A presented certificate that does not chain to that CA fails the handshake; no
/// certificate is allowed (token authentication may follow).
/// </summary>
internal sealed class TlsHandshake(SnapshotHolder snapshots, GatewayMetrics metrics, ILogger logger, TimeProvider? time = null)
{
    // A client can reconnect in a loop with a long-lived certificate: its lifetime lines are sampled, the metrics count all.
    private readonly LogSampler _lifetimeLog = new(time ?? TimeProvider.System);

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
                options.RemoteCertificateValidationCallback = (_, certificate, chain, _) =>
                    certificate is null || Verify(validator, snapshot.CertificateLifetime, certificate, chain);
            }
            return ValueTask.FromResult(options);
        },
        HandshakeTimeout = TimeSpan.FromSeconds(10),
    };

    // The result is cached by the validator (keyed by the certificate's SHA-256), so L3 reads it back without a second
    // chain build; a certificate that does not verify never completes the handshake.
    private bool Verify(ClientCertificateValidator validator, CertificateLifetimePolicy? lifetimePolicy, X509Certificate certificate, X509Chain? presented)
    {
        var leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        var result = validator.Validate(leaf, presented?.ChainPolicy.ExtraStore);
        if (result.Error is null)
        {
            return lifetimePolicy is null || CheckLifetime(lifetimePolicy, leaf);
        }
        metrics.RefuseCertificate(RefusalReasons.Untrusted);
        // The subject of a certificate that failed verification is attacker-chosen text: escaped before it is logged.
        Log.ClientCertificateRefused(logger, Portcullis.Diagnostics.SafeText.Of(leaf.Subject, 256), result.Error);
        return false;
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
        if (_lifetimeLog.TryLog(out var suppressed))
        {
            var subject = Portcullis.Diagnostics.SafeText.Of(leaf.Subject, 256);
            var (actual, limit, note) = (CertificateLifetime.Format(lifetime), CertificateLifetime.Format(policy.MaxLifetime), LogSampler.Note(suppressed));
            if (policy.Refuse)
            {
                Log.ClientCertificateLifetimeRefused(logger, subject, actual, limit, note);
            }
            else
            {
                Log.ClientCertificateLifetimeWarning(logger, subject, actual, limit, note);
            }
        }
        return !policy.Refuse;
    }
}
