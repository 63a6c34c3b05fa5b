using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Portcullis.Gateway.Forwarding;

/// <summary>Builds the HTTP client that talks to kube-apiserver: its CA only, the gateway's own credentials, no redirects.</summary>
internal static class UpstreamClientFactory
{
    public static HttpMessageInvoker Create(Portcullis.Kubeconfig.KubeconfigEndpoint upstream, bool includeCredentials)
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false, // CVE-2020-8559: a redirect is passed back, never followed
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(90),
            ActivityHeadersPropagator = null,
            PlaintextStreamFilter = (context, _) => ValueTask.FromResult<Stream>(new MultiValueHeaderStream(context.PlaintextStream)),
            SslOptions = new SslClientAuthenticationOptions
            {
                TargetHost = upstream.TlsServerName,
                RemoteCertificateValidationCallback = (_, cert, _, errors) => Validate(upstream, cert, errors),
            },
        };
        if (includeCredentials && upstream.ClientCertificate is not null)
        {
            handler.SslOptions.ClientCertificates = [upstream.ClientCertificate];
            handler.SslOptions.LocalCertificateSelectionCallback = (_, _, _, _, _) => upstream.ClientCertificate;
        }
        return new HttpMessageInvoker(handler, disposeHandler: true);
    }

    private static bool Validate(Portcullis.Kubeconfig.KubeconfigEndpoint upstream, X509Certificate? cert, SslPolicyErrors errors)
    {
        if (upstream.InsecureSkipTlsVerify)
        {
            return true;
        }
        if (cert is null)
        {
            return false;
        }
        if (upstream.CertificateAuthorities is not { Count: > 0 } roots)
        {
            return errors == SslPolicyErrors.None;
        }
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(cert);
        return chain.Build(leaf);
    }
}
