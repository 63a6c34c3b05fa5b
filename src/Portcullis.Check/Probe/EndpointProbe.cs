using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Portcullis.Check.Rules;

// TLS 1.0/1.1 are named on purpose: the probe checks that the server refuses them. Certificate validation is
// switched off on purpose for the probe's own connections: trust is reported as a finding, not enforced.
#pragma warning disable CA5397, SYSLIB0039, CA5359

namespace Portcullis.Check.Probe;

/// <summary>Runs the authenticated part of a probe (with a kubeconfig); lives outside Core because it needs a Kubernetes client.</summary>
public interface IAuthenticatedProbe
{
    Task<IReadOnlyList<Finding>> RunAsync(Uri endpoint, CancellationToken cancellationToken);
}

/// <summary>What to probe and how.</summary>
/// <param name="Endpoint">https://host:port of the API server or gateway.</param>
/// <param name="TrustedCa">CA certificates to validate the server against (<c>--ca</c>); null means the system store.</param>
/// <param name="Timeout">Bound on each network step (connect, handshake, request).</param>
/// <param name="ExpectUnreachable">The caller wants to prove the endpoint is NOT reachable from here.</param>
public sealed record ProbeOptions(
    Uri Endpoint,
    X509Certificate2Collection? TrustedCa = null,
    TimeSpan? Timeout = null,
    IAuthenticatedProbe? Authenticated = null,
    bool ExpectUnreachable = false)
{
    public TimeSpan StepTimeout => Timeout ?? TimeSpan.FromSeconds(10);

    /// <summary>The clock every step timeout and the certificate-validity check run on.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>
/// <c>portcullis probe</c>: what an outsider can learn about an API endpoint — reachability, TLS versions, certificate,
/// client-certificate demand, anonymous access — read-only.
/// </summary>
public static class EndpointProbe
{
    public const string Tool = "portcullis probe";

    // Rule ids: P = probe, then the layer.
    public static readonly RuleInfo Reachable = new("PC-P1-REACHABLE", "The endpoint is reachable over TCP", CheckLayer.Network,
        "check the address and port, the firewall and security groups; expect this from inside the allowed network only");
    public static readonly RuleInfo NotReachable = new("PC-P1-NOT-REACHABLE", "The endpoint is not reachable from here", CheckLayer.Network,
        "restrict port 6443 to known networks (firewall, security group, Portcullis network.allow)");
    public static readonly RuleInfo PlainHttp = new("PC-P2-PLAIN-HTTP", "The endpoint speaks TLS", CheckLayer.Tls,
        "serve the API over https only (--secure-port with --tls-cert-file/--tls-private-key-file)");
    public static readonly RuleInfo Tls10 = new("PC-P2-TLS10", "TLS 1.0 is refused", CheckLayer.Tls, "--tls-min-version=VersionTLS12");
    public static readonly RuleInfo Tls11 = new("PC-P2-TLS11", "TLS 1.1 is refused", CheckLayer.Tls, "--tls-min-version=VersionTLS12");
    public static readonly RuleInfo Tls12 = new("PC-P2-TLS12", "TLS 1.2 is offered", CheckLayer.Tls, "");
    public static readonly RuleInfo Tls13 = new("PC-P2-TLS13", "TLS 1.3 is offered", CheckLayer.Tls, "");
    public static readonly RuleInfo CertTrust = new("PC-P2-CERT-TRUST", "The serving certificate chains to a trusted CA", CheckLayer.Tls,
        "pass the cluster CA with --ca, or serve a certificate from a CA clients trust");
    public static readonly RuleInfo CertName = new("PC-P2-CERT-NAME", "The serving certificate names the host", CheckLayer.Tls,
        "add the address clients use to the certificate's SANs (kubeadm: --apiserver-cert-extra-sans)");
    public static readonly RuleInfo CertExpiry = new("PC-P2-CERT-EXPIRY", "The serving certificate is within its validity", CheckLayer.Tls,
        "renew the serving certificate (kubeadm certs renew apiserver)");
    public static readonly RuleInfo WeakSuites = new("PC-P2-WEAK-CIPHERS", "Weak TLS 1.2 cipher suites are refused", CheckLayer.Tls,
        "--tls-cipher-suites with only the AEAD ECDHE suites of CIS 1.2.29");
    public static readonly RuleInfo CertChain = new("PC-P2-CERT-CHAIN", "Serving certificate chain and SANs", CheckLayer.Tls, "");
    public static readonly RuleInfo ClientCert = new("PC-P2-CLIENT-CERT", "A client certificate is demanded", CheckLayer.Tls,
        "require client certificates at the edge (Portcullis tls.clientCAFile) so unauthenticated clients cannot reach HTTP at all");

    private static readonly (string Path, string Id)[] AnonymousPaths =
    [
        ("/version", "PC-P3-ANON-VERSION"),
        ("/healthz", "PC-P3-ANON-HEALTHZ"),
        ("/readyz", "PC-P3-ANON-READYZ"),
        ("/api", "PC-P3-ANON-API"),
        ("/apis", "PC-P3-ANON-APIS"),
        ("/api/v1/namespaces", "PC-P3-ANON-NAMESPACES"),
    ];

    public static async Task<CheckReport> RunAsync(ProbeOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var endpoint = options.Endpoint;
        if (endpoint.Scheme is not ("https" or "http") || string.IsNullOrEmpty(endpoint.Host))
        {
            return CheckReport.Unreadable(Tool, endpoint.ToString(), $"{endpoint}: give https://HOST:PORT");
        }
        var f = new FindingList();
        var host = endpoint.IdnHost;
        var port = endpoint.Port;
        var where = $"{host}:{port}";

        // L1: TCP.
        var tcp = await TryConnectAsync(host, port, options.StepTimeout, options.Time, cancellationToken).ConfigureAwait(false);
        if (tcp.Error is not null)
        {
            if (options.ExpectUnreachable)
            {
                f.Pass(NotReachable, $"{where}: {tcp.Error}");
            }
            else
            {
                f.Fail(Reachable, $"{where}: {tcp.Error}; nothing else was probed");
            }
            return new CheckReport(Tool, endpoint.ToString(), f.Findings);
        }
        tcp.Client!.Dispose();
        if (options.ExpectUnreachable)
        {
            f.Fail(NotReachable, $"{where}: TCP connection accepted from here");
        }
        else
        {
            f.Pass(Reachable, $"{where}: TCP connection accepted");
        }

        var clientCertRequired = false;
        if (endpoint.Scheme == "http")
        {
            f.Fail(PlainHttp, $"{endpoint}: plain HTTP — credentials and data travel unencrypted");
        }
        else
        {
            clientCertRequired = await ProbeTlsAsync(f, options, host, port, cancellationToken).ConfigureAwait(false);
        }

        await ProbeAnonymousAsync(f, options, clientCertRequired, cancellationToken).ConfigureAwait(false);

        if (options.Authenticated is not null)
        {
            try
            {
                using var timer = new CancellationTokenSource(options.StepTimeout * 3, options.Time);
                using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
                foreach (var finding in await options.Authenticated.RunAsync(endpoint, cts.Token).ConfigureAwait(false))
                {
                    f.Add(new RuleInfo(finding.Id, finding.Title, finding.Layer, finding.Remediation), finding.Status, finding.Evidence, finding.Location);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                f.Warn(new RuleInfo("PC-P5-AUTHENTICATED", "Authenticated probe", CheckLayer.Admission, "check the kubeconfig's credentials and the endpoint"),
                    $"the authenticated requests failed: {ex.GetType().Name}: {ex.Message}");
            }
        }
        return new CheckReport(Tool, endpoint.ToString(), f.Findings.OrderBy(x => x.Layer).ToList());
    }

    private static async Task<(TcpClient? Client, string? Error)> TryConnectAsync(string host, int port, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        var client = new TcpClient();
        using var timer = new CancellationTokenSource(timeout, time);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
        try
        {
            await client.ConnectAsync(host, port, cts.Token).ConfigureAwait(false);
            return (client, null);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            client.Dispose();
            return (null, $"no TCP answer within {timeout.TotalSeconds:0.#}s (filtered, or nothing routes there)");
        }
        catch (SocketException ex)
        {
            client.Dispose();
            return (null, ex.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => "connection refused (nothing listens on that port, or a firewall rejects it)",
                SocketError.HostNotFound or SocketError.NoData => "the host name does not resolve",
                SocketError.TimedOut => "connection timed out",
                SocketError.NetworkUnreachable or SocketError.HostUnreachable => "no route to the host",
                _ => $"cannot connect: {ex.SocketErrorCode}",
            });
        }
    }

    /// <summary>One TLS handshake attempt with one protocol version, without a client certificate.</summary>
    private sealed record HandshakeResult(bool Completed, bool ServerClosedAfterHandshake, bool CertificateRequested, X509Certificate2? Leaf,
        X509Certificate2Collection Presented, TlsCipherSuite? Suite, string? Error);

    private static readonly (SslProtocols Protocol, RuleInfo Rule, string Name)[] Versions =
    [
        (SslProtocols.Tls, Tls10, "TLS 1.0"),
        (SslProtocols.Tls11, Tls11, "TLS 1.1"),
        (SslProtocols.Tls12, Tls12, "TLS 1.2"),
        (SslProtocols.Tls13, Tls13, "TLS 1.3"),
    ];

    private static async Task<bool> ProbeTlsAsync(FindingList f, ProbeOptions options, string host, int port, CancellationToken cancellationToken)
    {
        HandshakeResult? best = null;
        var requested = false;
        var requiredEvidence = new List<string>();
        foreach (var (protocol, rule, name) in Versions)
        {
            var result = await HandshakeAsync(host, port, protocol, options.StepTimeout, options.Time, null, cancellationToken).ConfigureAwait(false);
            // The server chose this version if the handshake completed, or if it asked for a client certificate
            // before failing (which is what a server that requires one does).
            var accepted = result.Completed || result.Leaf is not null || result.CertificateRequested;
            if (!accepted && result.Error is not null && await LocalTls.CanNegotiateAsync(protocol, options.StepTimeout, options.Time, cancellationToken).ConfigureAwait(false) is null)
            {
                // Servers that require a certificate without naming CAs fail the same way as servers that refuse
                // the version; offering a throwaway certificate tells them apart: the failure moves on (unknown CA,
                // bad certificate) only if the server had chosen this version.
                var withCertificate = await HandshakeAsync(host, port, protocol, options.StepTimeout, options.Time, LocalTls.ThrowawayClientCertificate, cancellationToken).ConfigureAwait(false);
                if (withCertificate.Completed || withCertificate.Error != result.Error)
                {
                    accepted = true;
                    result = result with { ServerClosedAfterHandshake = true, Leaf = result.Leaf ?? withCertificate.Leaf, Presented = result.Leaf is null ? withCertificate.Presented : result.Presented };
                }
            }
            requested |= result.CertificateRequested;
            if (accepted && result.Leaf is not null && (best is null || result.Completed))
            {
                best = result;
            }
            var legacy = protocol is not (SslProtocols.Tls13 or SslProtocols.Tls12);
            if (accepted)
            {
                if (!result.Completed || result.ServerClosedAfterHandshake)
                {
                    requiredEvidence.Add(name);
                }
                var suite = result.Suite is { } s ? $", suite {s}" : "";
                if (legacy)
                {
                    f.Fail(rule, $"{name} handshake accepted{suite}");
                }
                else
                {
                    f.Pass(rule, $"{name} handshake accepted{suite}");
                }
                continue;
            }
            // Refused — but only if this machine could have spoken that version at all.
            var local = await LocalTls.CanNegotiateAsync(protocol, options.StepTimeout, options.Time, cancellationToken).ConfigureAwait(false);
            if (local is not null)
            {
                f.Info(rule, $"could not test {name}: this machine's TLS library will not negotiate it even with itself (loopback self-test: {local}); use a client that still speaks {name} (e.g. openssl s_client -{(protocol == SslProtocols.Tls13 ? "tls1_3" : protocol == SslProtocols.Tls12 ? "tls1_2" : protocol == SslProtocols.Tls11 ? "tls1_1" : "tls1")} with @SECLEVEL=0)");
            }
            else if (legacy)
            {
                f.Pass(rule, $"{name} handshake refused by the server ({result.Error})");
            }
            else if (protocol == SslProtocols.Tls12)
            {
                f.Add(rule with { Remediation = "serve TLS 1.2; many clients do not speak TLS 1.3 yet" }, CheckStatus.Warn, $"{name} handshake refused ({result.Error})");
            }
            else
            {
                f.Info(rule, $"{name} not offered ({result.Error})");
            }
        }

        if (best?.Leaf is null)
        {
            f.Fail(CertTrust, $"{host}:{port}: no TLS handshake succeeded with any version; the certificate could not be read");
            return false;
        }
        ScoreCertificate(f, options, host, best);
        await ProbeWeakSuitesAsync(f, options, host, port, cancellationToken).ConfigureAwait(false);

        var required = requiredEvidence.Count > 0;
        if (required)
        {
            f.Pass(ClientCert, $"the server {(requested ? "requested a client certificate and " : "")}ended the connection when none was sent ({string.Join(", ", requiredEvidence)}): clients without a certificate cannot reach HTTP");
        }
        else if (requested)
        {
            f.Info(ClientCert, "the server requests a client certificate but accepts connections without one (kube-apiserver with --client-ca-file does this; authentication happens per request)");
        }
        else
        {
            f.Info(ClientCert, "connections without a client certificate are accepted (no CertificateRequest naming acceptable CAs was seen); authentication happens per request");
        }
        return required;
    }

    /// <summary>TLS 1.2 suites outside CIS 1.2.29's list: CBC, 3DES, and RSA key exchange (no forward secrecy).</summary>
    private static readonly TlsCipherSuite[] WeakTls12Suites =
    [
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
        TlsCipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA,
        TlsCipherSuite.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
    ];

    private static async Task ProbeWeakSuitesAsync(FindingList f, ProbeOptions options, string host, int port, CancellationToken cancellationToken)
    {
        if (OperatingSystem.IsWindows())
        {
            f.Info(WeakSuites, "could not test: SslStream cannot restrict cipher suites on Windows");
            return;
        }
        var accepted = new List<string>();
        var refused = new List<string>();
        var untestable = new List<string>();
        foreach (var suite in WeakTls12Suites)
        {
            HandshakeResult result;
            try
            {
                result = await HandshakeAsync(host, port, SslProtocols.Tls12, options.StepTimeout, options.Time, null, cancellationToken, suite).ConfigureAwait(false);
            }
            catch (PlatformNotSupportedException)
            {
                untestable.Add(suite.ToString());
                continue;
            }
            if (result.Completed || result.Leaf is not null || result.CertificateRequested)
            {
                accepted.Add(suite.ToString());
                continue;
            }
            var local = await LocalTls.CanNegotiateAsync(SslProtocols.Tls12, options.StepTimeout, options.Time, cancellationToken, suite).ConfigureAwait(false);
            if (local is not null)
            {
                untestable.Add(suite.ToString());
                continue;
            }
            // A server that requires a client certificate fails every suite the same way; a throwaway certificate
            // moves the failure on only when the server had agreed to the suite.
            var withCertificate = await HandshakeAsync(host, port, SslProtocols.Tls12, options.StepTimeout, options.Time, LocalTls.ThrowawayClientCertificate, cancellationToken, suite).ConfigureAwait(false);
            if (withCertificate.Completed || withCertificate.Error != result.Error)
            {
                accepted.Add(suite.ToString());
            }
            else
            {
                refused.Add(suite.ToString());
            }
        }
        var notTested = untestable.Count == 0 ? "" : $"; could not test {string.Join(", ", untestable)} (this machine's TLS library will not negotiate them even with itself)";
        if (accepted.Count > 0)
        {
            f.Fail(WeakSuites, $"TLS 1.2 handshakes accepted with {string.Join(", ", accepted)}{notTested}");
        }
        else if (refused.Count > 0)
        {
            f.Pass(WeakSuites, $"refused: {string.Join(", ", refused)}{notTested}");
        }
        else
        {
            f.Info(WeakSuites, notTested.TrimStart(';', ' '));
        }
    }

    private static async Task<HandshakeResult> HandshakeAsync(string host, int port, SslProtocols protocol, TimeSpan timeout, TimeProvider time, X509Certificate2? clientCertificate, CancellationToken cancellationToken, TlsCipherSuite? onlySuite = null)
    {
        using var timer = new CancellationTokenSource(timeout, time);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
        X509Certificate2? leaf = null;
        var presented = new X509Certificate2Collection();
        var requested = false;
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(host, port, cts.Token).ConfigureAwait(false);
            using var ssl = new SslStream(client.GetStream(), false);
            var sslOptions = new SslClientAuthenticationOptions
            {
                TargetHost = IPAddress.TryParse(host, out _) ? "" : host,
                EnabledSslProtocols = protocol,
                CipherSuitesPolicy = LocalTls.PolicyFor(onlySuite),
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                RemoteCertificateValidationCallback = (_, certificate, chain, _) =>
                {
                    // The probe reads whatever the server presents; trust is judged separately.
                    if (certificate is not null)
                    {
                        leaf = new X509Certificate2(certificate);
                        if (chain is not null)
                        {
                            foreach (var element in chain.ChainElements)
                            {
                                presented.Add(new X509Certificate2(element.Certificate));
                            }
                        }
                    }
                    return true;
                },
                LocalCertificateSelectionCallback = (_, _, _, _, acceptableIssuers) =>
                {
                    // On Linux this is also called before any CertificateRequest, with no issuers; only a
                    // non-empty list of acceptable CAs proves the server asked (Go's TLS, i.e. kube-apiserver, sends one).
                    requested |= acceptableIssuers is { Length: > 0 };
                    return clientCertificate!;
                },
            };
            await ssl.AuthenticateAsClientAsync(sslOptions, cts.Token).ConfigureAwait(false);
            var suite = ssl.NegotiatedCipherSuite;
            // With TLS 1.3 a server that requires a certificate rejects it after the client's Finished: see
            // whether the connection survives a request.
            var closed = await ServerClosesAsync(ssl, host, cts.Token).ConfigureAwait(false);
            return new HandshakeResult(true, closed, requested, leaf, presented, suite, null);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new HandshakeResult(false, false, requested, leaf, presented, null, $"no handshake within {timeout.TotalSeconds:0.#}s");
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or SocketException or CryptographicException)
        {
            return new HandshakeResult(false, false, requested, leaf, presented, null, Describe(ex));
        }
    }

    private static async Task<bool> ServerClosesAsync(SslStream ssl, string host, CancellationToken cancellationToken)
    {
        try
        {
            var request = System.Text.Encoding.ASCII.GetBytes($"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            await ssl.WriteAsync(request, cancellationToken).ConfigureAwait(false);
            var buffer = new byte[256];
            var read = await ssl.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            return read == 0;
        }
        catch (Exception ex) when (ex is IOException or AuthenticationException or SocketException)
        {
            return true;
        }
    }

    private static string Describe(Exception ex)
    {
        var messages = new List<string>();
        for (var e = ex; e is not null && messages.Count < 3; e = e.InnerException)
        {
            if (!string.IsNullOrWhiteSpace(e.Message) && !messages.Contains(e.Message))
            {
                messages.Add(e.Message.Trim().TrimEnd('.'));
            }
        }
        return string.Join(": ", messages);
    }

    private static void ScoreCertificate(FindingList f, ProbeOptions options, string host, HandshakeResult result)
    {
        var leaf = result.Leaf!;
        var sans = new List<string>();
        foreach (var extension in leaf.Extensions.OfType<X509SubjectAlternativeNameExtension>())
        {
            sans.AddRange(extension.EnumerateDnsNames().Select(d => "DNS:" + d));
            sans.AddRange(extension.EnumerateIPAddresses().Select(i => "IP:" + i));
        }
        var chainText = string.Join(" <- ", result.Presented.Count > 0 ? result.Presented.Select(c => c.Subject) : [leaf.Subject]);
        f.Info(CertChain, $"chain: {chainText}; SANs: {(sans.Count == 0 ? "none" : string.Join(", ", sans))}; not after {leaf.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm}Z");

        using var chain = new X509Chain();
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (options.TrustedCa is { Count: > 0 } trusted)
        {
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(trusted);
        }
        chain.ChainPolicy.ExtraStore.AddRange(result.Presented);
        var valid = chain.Build(leaf);
        var source = options.TrustedCa is { Count: > 0 } ? "the --ca certificates" : "this machine's trust store";
        if (valid)
        {
            f.Pass(CertTrust, $"chains to {source} ({chain.ChainElements[^1].Certificate.Subject})");
        }
        else
        {
            var why = string.Join(", ", chain.ChainStatus.Select(s => s.Status.ToString()).Distinct());
            f.Add(CertTrust, options.TrustedCa is null ? CheckStatus.Warn : CheckStatus.Fail, $"does not chain to {source}: {why}");
        }

        if (leaf.MatchesHostname(host, allowWildcards: true, allowCommonName: false))
        {
            f.Pass(CertName, $"{host} is in the SANs");
        }
        else
        {
            f.Fail(CertName, $"{host} is not in the SANs ({(sans.Count == 0 ? "none" : string.Join(", ", sans))})");
        }

        var now = options.Time.GetUtcNow().UtcDateTime;
        var notAfter = leaf.NotAfter.ToUniversalTime();
        if (now > notAfter || now < leaf.NotBefore.ToUniversalTime())
        {
            f.Fail(CertExpiry, $"valid {leaf.NotBefore.ToUniversalTime():yyyy-MM-dd} to {notAfter:yyyy-MM-dd}: not valid now");
        }
        else if (notAfter - now < TimeSpan.FromDays(30))
        {
            f.Warn(CertExpiry, $"expires {notAfter:yyyy-MM-dd HH:mm}Z, in {(notAfter - now).TotalDays:0} day(s)");
        }
        else
        {
            f.Pass(CertExpiry, $"expires {notAfter:yyyy-MM-dd}Z, in {(notAfter - now).TotalDays:0} days");
        }
    }

    private static async Task ProbeAnonymousAsync(FindingList f, ProbeOptions options, bool clientCertRequired, CancellationToken cancellationToken)
    {
        using var handler = new SocketsHttpHandler
        {
            ConnectTimeout = options.StepTimeout,
            AllowAutoRedirect = false,
            UseCookies = false,
            Credentials = null,
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, _, _, _) => true },
        };
        using var http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        foreach (var (path, id) in AnonymousPaths)
        {
            var namespaces = path == "/api/v1/namespaces";
            var rule = new RuleInfo(id, $"Anonymous GET {path} is refused", CheckLayer.Authentication,
                namespaces ? "--anonymous-auth=false, and never bind system:anonymous or system:unauthenticated to list namespaces"
                    : "--anonymous-auth=false (or AuthenticationConfiguration anonymous conditions limited to /healthz, /livez, /readyz)");
            using var timer = new CancellationTokenSource(options.StepTimeout, options.Time);
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(options.Endpoint, path));
                request.Headers.Accept.ParseAdd("application/json");
                using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token).ConfigureAwait(false);
                var code = (int)response.StatusCode;
                var evidence = $"GET {path} without credentials: {code} {response.ReasonPhrase}";
                switch (code)
                {
                    case 401:
                        f.Pass(rule, evidence);
                        break;
                    case 403:
                        f.Add(rule, namespaces ? CheckStatus.Warn : CheckStatus.Info,
                            evidence + " — anonymous authentication is on (the request got as far as authorization)");
                        break;
                    case >= 200 and < 300 when namespaces:
                        f.Fail(rule, evidence + " — anyone can list namespaces (the seed's scenario 2)");
                        break;
                    case >= 200 and < 300 when path is "/healthz" or "/readyz":
                        f.Info(rule, evidence + " — health endpoints open to anonymous clients (common and low risk)");
                        break;
                    case >= 200 and < 300:
                        f.Warn(rule, evidence + $" — anonymous clients can read {path}");
                        break;
                    default:
                        f.Info(rule, evidence);
                        break;
                }
            }
            catch (HttpRequestException ex) when (clientCertRequired || ex.InnerException is AuthenticationException or IOException)
            {
                f.Pass(rule, $"GET {path} without credentials: the connection was refused before HTTP ({Describe(ex)})");
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                f.Info(rule, $"GET {path}: no answer within {options.StepTimeout.TotalSeconds:0.#}s");
            }
            catch (HttpRequestException ex)
            {
                f.Info(rule, $"GET {path}: {Describe(ex)}");
            }
        }
    }
}
