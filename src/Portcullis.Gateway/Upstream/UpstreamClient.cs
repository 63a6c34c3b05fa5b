using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Portcullis.Kubeconfig;

namespace Portcullis.Gateway.Upstream;

/// <summary>
/// The HTTP client that talks to kube-apiserver: its CA only, the gateway's own credentials, no redirects, HTTP/1.1 with
/// <see cref="UpstreamHeaderFilter"/> on every connection. The request's Host comes from the kubeconfig's <c>server</c>
/// and the TLS server name from <c>tls-server-name</c> when set (else the server's host), as client-go does; never from
/// the client. TLS is done here, in the connect callback, rather than by SocketsHttpHandler, which would take the server
/// name from the request's Host header: requests are therefore addressed to <see cref="Destination"/>, an
/// <c>http://</c> URI of the server's authority, and every byte still travels inside this class's TLS. Ordinary requests share one pool; each upgrade request (exec, attach, port-forward, WebSocket) gets a
/// connection of its own that is discarded with the request, so a refused upgrade cannot leave a connection behind in
/// tunnel mode.
/// </summary>
internal sealed class UpstreamClient : IDisposable
{
    private readonly KubeconfigEndpoint _upstream;
    private readonly bool _includeCredentials;

    public UpstreamClient(KubeconfigEndpoint upstream, bool includeCredentials)
    {
        _upstream = upstream;
        _includeCredentials = includeCredentials;
        Pooled = new HttpMessageInvoker(CreateHandler(forUpgrade: false), disposeHandler: true);
    }

    /// <summary>The identity blocks the filters of this client's connections write.</summary>
    public IdentityBlocks Identities { get; } = new();

    /// <summary>The shared pool for requests that are not upgrades.</summary>
    public HttpMessageInvoker Pooled { get; }

    /// <summary>
    /// Where every request is addressed: <c>http://</c>, the kubeconfig server's authority (which becomes the Host
    /// header) and its path, which client-go puts before every request path (a front that routes clusters by path,
    /// <c>https://rancher.example/k8s/clusters/c-1</c>). The connection itself is TLS, made by <see cref="ConnectAsync"/>.
    /// </summary>
    public string Destination => $"http://{_upstream.Server.Host}:{_upstream.Server.Port}{_upstream.Server.AbsolutePath.TrimEnd('/')}";

    /// <summary>The Host header upstream: the kubeconfig server's authority (no port when it is https's 443), as client-go sends it.</summary>
    public string HostHeader => _upstream.Server.Authority;

    private string HostName => _upstream.Server.HostNameType == UriHostNameType.IPv6 ? _upstream.Server.DnsSafeHost : _upstream.Server.IdnHost;

    /// <summary>A client with one connection for one upgrade request; dispose it when the request ends.</summary>
    public HttpMessageInvoker ForUpgrade() => new(CreateHandler(forUpgrade: true), disposeHandler: true);

    private SocketsHttpHandler CreateHandler(bool forUpgrade)
    {
        var identities = Identities;
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false, // CVE-2020-8559: a redirect is passed back, never followed
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(90),
            MaxConnectionsPerServer = forUpgrade ? 1 : int.MaxValue,
            ActivityHeadersPropagator = null,
            PlaintextStreamFilter = (context, _) => ValueTask.FromResult<Stream>(new UpstreamHeaderFilter(context.PlaintextStream, identities, forUpgrade)),
            ConnectCallback = ConnectAsync,
        };
        return handler;
    }

    /// <summary>TCP to the kubeconfig's server, then TLS with its server name, CA and the gateway's client certificate.</summary>
    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(HostName, _upstream.Server.Port, cancellationToken);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        var tls = new SslStream(new System.Net.Sockets.NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
        try
        {
            await tls.AuthenticateAsClientAsync(TlsOptions(), cancellationToken);
        }
        catch
        {
            await tls.DisposeAsync();
            throw;
        }
        return tls;
    }

    private SslClientAuthenticationOptions TlsOptions()
    {
        var options = new SslClientAuthenticationOptions
        {
            // client-go: the server name is tls-server-name when set, else the server URL's host. An IP address
            // sends no SNI and is checked against the certificate's IP SANs.
            TargetHost = ServerName,
            RemoteCertificateValidationCallback = (_, cert, _, errors) => Validate(cert, errors),
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        };
        if (_includeCredentials && _upstream.ClientCertificate is not null)
        {
            var certificate = _upstream.ClientCertificate;
            options.ClientCertificates = [certificate];
            options.LocalCertificateSelectionCallback = (_, _, _, _, _) => certificate;
        }
        return options;
    }

    /// <summary>The name the upstream certificate must carry: <c>tls-server-name</c> when set, else the server's host.</summary>
    private string ServerName => _upstream.TlsServerName ?? HostName;

    private const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";
    private const string SubjectAltNameOid = "2.5.29.17";

    /// <summary>
    /// As client-go (Go's crypto/x509) checks kube-apiserver: a certificate for TLS servers (EKU serverAuth) that names
    /// <see cref="ServerName"/> in its subjectAltName — never by its Common Name alone — and chains to the kubeconfig's
    /// CA when one is given (else to the system roots). A client certificate of the cluster CA therefore cannot pass for
    /// kube-apiserver.
    /// </summary>
    private bool Validate(X509Certificate? cert, SslPolicyErrors errors)
    {
        if (_upstream.InsecureSkipTlsVerify)
        {
            return true;
        }
        if (cert is null)
        {
            return false;
        }
        using var leaf = new X509Certificate2(cert);
        if (!NamedInSubjectAltName(leaf, ServerName))
        {
            return false;
        }
        if (_upstream.CertificateAuthorities is not { Count: > 0 } roots)
        {
            return errors == SslPolicyErrors.None; // SslStream checked the chain (serverAuth included) and the name
        }
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(ServerAuthOid));
        return chain.Build(leaf);
    }

    /// <summary>
    /// An IP address must be one of the certificate's IP entries; a DNS name needs DNS entries, among which SslStream's
    /// name check then finds it (SslStream falls back to the Common Name only when there are none, which Go never does).
    /// </summary>
    private static bool NamedInSubjectAltName(X509Certificate2 leaf, string serverName)
    {
        foreach (var extension in leaf.Extensions)
        {
            if (extension.Oid?.Value != SubjectAltNameOid)
            {
                continue;
            }
            var names = extension as X509SubjectAlternativeNameExtension ?? new X509SubjectAlternativeNameExtension(extension.RawData, extension.Critical);
            return IPAddress.TryParse(serverName, out var address)
                ? names.EnumerateIPAddresses().Contains(address)
                : names.EnumerateDnsNames().Any();
        }
        return false;
    }

    public void Dispose() => Pooled.Dispose();
}
