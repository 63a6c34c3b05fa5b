using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;
using Portcullis.Gateway.Hosting;
using Portcullis.Gateway.Metrics;

namespace Portcullis.Gateway.Tls;

/// <summary>
/// L2: per-handshake TLS options from the current snapshot (so a rotated server certificate applies to new connections
/// without a restart), TLS 1.2+ with ECDHE/AEAD suites, and a client certificate requested during the handshake when
/// <c>tls.clientCAFile</c> is set. A presented certificate that does not chain to that CA fails the handshake; no
/// certificate is allowed (token authentication may follow).
/// </summary>
internal sealed class TlsHandshake(SnapshotHolder snapshots, GatewayMetrics metrics, ILogger logger)
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
                ClientCertificateRequired = snapshot.ClientCA is not null,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            };
            if (snapshot.ClientCA is { } roots)
            {
                options.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                    certificate is null || Verify(roots, certificate);
            }
            return ValueTask.FromResult(options);
        },
        HandshakeTimeout = TimeSpan.FromSeconds(10),
    };

    private bool Verify(X509Certificate2Collection roots, X509Certificate certificate)
    {
        var leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        var error = ClientCertificateVerifier.Verify(roots, leaf);
        if (error is null)
        {
            return true;
        }
        metrics.RefusedCertificates.Inc();
        Log.ClientCertificateRefused(logger, leaf.Subject, error);
        return false;
    }
}

/// <summary>Verifies a client certificate against the client CA bundle only (never the system store), EKU clientAuth required.</summary>
internal static class ClientCertificateVerifier
{
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    /// <summary>Null when the certificate verifies; otherwise why not.</summary>
    public static string? Verify(X509Certificate2Collection roots, X509Certificate2 leaf)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid(ClientAuthOid));
        if (chain.Build(leaf))
        {
            return null;
        }
        return string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
    }
}
