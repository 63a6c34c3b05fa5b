using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using BenchmarkDotNet.Attributes;
using Portcullis.Tls;

namespace Portcullis.Benchmarks;

/// <summary>
/// tls.revocationFile on the handshake path. <see cref="Handshake"/>: one full TLS 1.3 mutual-TLS handshake (ECDSA
/// P-256 certificates) between two SslStreams over a fresh loopback TCP connection, the server's certificate callback
/// doing what the gateway's L2 does (the client CA's chain result from the validator's cache, then, with a list, the
/// certificate's facts and a lookup in a 100,000-entry list: a third by serial with issuer, a third by fingerprint, a
/// third by subject); "plain" has no list. <see cref="Lookup"/>: the matcher alone, for a certificate that is not on the
/// list (every handshake of a valid user) and one that is; <see cref="Facts"/>: reading a certificate's fingerprint,
/// serial and names (once per handshake).
/// </summary>
[MemoryDiagnoser]
public class RevocationBenchmarks
{
    private const int Entries = 100_000;

    private X509Certificate2 _ca = null!;
    private X509Certificate2 _server = null!;
    private X509Certificate2 _client = null!;
    private X509Certificate2 _revoked = null!;
    private ClientCertificateValidator _validator = null!;
    private RevocationList _list = null!;
    private CertificateFacts _clientFacts = null!;
    private CertificateFacts _revokedFacts = null!;
    private TcpListener _listener = null!;
    private DateTimeOffset _now;

    [Params("plain mTLS", "mTLS + 100k revocation list")]
    public string Mode { get; set; } = "plain mTLS";

    [GlobalSetup]
    public void Setup()
    {
        _ca = CreateCa();
        _server = Issue(_ca, "CN=localhost", "1.3.6.1.5.5.7.3.1");
        _client = Issue(_ca, "CN=jane, O=developers", "1.3.6.1.5.5.7.3.2");
        _revoked = Issue(_ca, "CN=mallory, O=developers", "1.3.6.1.5.5.7.3.2");
        _validator = new ClientCertificateValidator(new X509Certificate2Collection(_ca));
        var entries = new List<RevocationEntry>(Entries + 1);
        var rng = new Random(20261205);
        for (var i = 0; i < Entries; i++)
        {
            var bytes = new byte[16];
            rng.NextBytes(bytes);
            entries.Add((i % 3) switch
            {
                0 => new RevocationEntry { Selector = "serial", Value = CertificateSerials.FromBytes(bytes), Issuer = "CN=bench-ca", Reason = "bench", Origin = $"certificates[{i}]" },
                1 => new RevocationEntry { Selector = "sha256", Value = Convert.ToHexStringLower(SHA256.HashData(bytes)), Reason = "bench", Origin = $"certificates[{i}]" },
                _ => new RevocationEntry { Selector = "subject", Value = $"CN=user-{i}, O=team-{i % 50}", Reason = "bench", Origin = $"certificates[{i}]" },
            });
        }
        entries.Add(new RevocationEntry { Selector = "serial", Value = CertificateSerials.FromBytes(_revoked.SerialNumberBytes.Span), Issuer = "CN=bench-ca", Reason = "stolen", Origin = "certificates[last]" });
        _list = Mode == "plain mTLS" ? RevocationList.Empty : new RevocationList(entries);
        _clientFacts = CertificateFacts.Of(_client);
        _revokedFacts = CertificateFacts.Of(_revoked);
        _ = _clientFacts.SubjectKey; // normalised once, as after the first lookup of a handshake
        _ = _revokedFacts.IssuerKey;
        _now = DateTimeOffset.UtcNow;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _listener.Stop();
        _listener.Dispose();
    }

    [Benchmark]
    public async Task<bool> Handshake()
    {
        var accept = _listener.AcceptSocketAsync();
        using var clientSocket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await clientSocket.ConnectAsync((IPEndPoint)_listener.LocalEndpoint);
        using var serverSocket = await accept;
        await using var serverStream = new SslStream(new NetworkStream(serverSocket));
        await using var clientStream = new SslStream(new NetworkStream(clientSocket));
        var server = serverStream.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
        {
            ServerCertificate = _server,
            ClientCertificateRequired = true,
            EnabledSslProtocols = SslProtocols.Tls13,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, chain, _) => certificate is not null && Verify(certificate, chain),
        });
        await clientStream.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ClientCertificates = [_client],
            EnabledSslProtocols = SslProtocols.Tls13,
            RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null && certificate.GetCertHashString() == _server.Thumbprint,
        });
        await server;
        return serverStream.IsMutuallyAuthenticated;
    }

    // As Gateway/Tls/TlsHandshake.Verify: the cached chain result, then the revocation list on every handshake.
    private bool Verify(X509Certificate certificate, X509Chain? presented)
    {
        var leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        if (_validator.Validate(leaf, presented?.ChainPolicy.ExtraStore).Error is not null)
        {
            return false;
        }
        return _list.Entries.Count == 0 || _list.Match(CertificateFacts.Of(leaf), DateTimeOffset.UtcNow) is null;
    }

    [Benchmark]
    [Arguments("not revoked")]
    [Arguments("revoked by serial + issuer")]
    public RevocationEntry? Lookup(string certificate) => _list.Match(certificate == "not revoked" ? _clientFacts : _revokedFacts, _now);

    [Benchmark]
    public CertificateFacts Facts() => CertificateFacts.Of(_client);

    private static X509Certificate2 CreateCa()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=bench-ca", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        return X509CertificateLoader.LoadPkcs12(ca.Export(X509ContentType.Pkcs12), null);
    }

    private static X509Certificate2 Issue(X509Certificate2 ca, string subject, string eku)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(eku)], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using var issued = request.Create(ca, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(10), serial);
        using var withKey = issued.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }
}
