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
/// <remarks>
/// The handshake timeout is <c>tls.handshakeTimeout</c> of the configuration the host started with (Kestrel reads it
/// once, when the listener is built: restart-required). A client certificate refused here is logged through the
/// <see cref="RefusalLogSampler"/>.
/// </remarks>
internal sealed class TlsHandshake(SnapshotHolder snapshots, GatewayMetrics metrics, ILogger logger, RefusalLogSampler sampler, TimeSpan handshakeTimeout)
{
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
                    certificate is null || Verify(validator, certificate, chain);
            }
            return ValueTask.FromResult(options);
        },
        HandshakeTimeout = handshakeTimeout,
    };

    // The result is cached by the validator (keyed by the certificate's SHA-256), so L3 reads it back without a second
    // chain build; a certificate that does not verify never completes the handshake.
    private bool Verify(ClientCertificateValidator validator, X509Certificate certificate, X509Chain? presented)
    {
        var leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        var result = validator.Validate(leaf, presented?.ChainPolicy.ExtraStore);
        if (result.Error is null)
        {
            return true;
        }
        metrics.RefuseCertificate(RefusalReasons.Untrusted);
        if (!sampler.ShouldLog(RefusalReasons.Untrusted))
        {
            return false;
        }
        // The subject of a certificate that failed verification is attacker-chosen text: escaped before it is logged.
        Log.ClientCertificateRefused(logger, Portcullis.Diagnostics.SafeText.Of(leaf.Subject, 256), result.Error);
        return false;
    }
}
