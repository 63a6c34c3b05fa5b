using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Portcullis.Check.Tests.Probe;

/// <summary>A CA, a server certificate and a client certificate made for one test run.</summary>
internal sealed class TestPki : IDisposable
{
    public TestPki(string[]? serverDnsNames = null, bool serverIp = true, TimeSpan? serverLifetime = null)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=portcullis-test-ca", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var caEphemeral = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(3));
        Ca = X509CertificateLoader.LoadPkcs12(caEphemeral.Export(X509ContentType.Pkcs12), null);

        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in serverDnsNames ?? ["localhost"])
        {
            san.AddDnsName(name);
        }
        if (serverIp)
        {
            san.AddIpAddress(IPAddress.Loopback);
        }
        Server = Issue("CN=kube-apiserver", san.Build(), "1.3.6.1.5.5.7.3.1", serverLifetime ?? TimeSpan.FromDays(365));
        Client = Issue("CN=alice, O=devs", null, "1.3.6.1.5.5.7.3.2", TimeSpan.FromDays(30));
    }

    public X509Certificate2 Ca { get; }
    public X509Certificate2 Server { get; }
    public X509Certificate2 Client { get; }

    public string CaPem => Ca.ExportCertificatePem();

    private X509Certificate2 Issue(string subject, X509Extension? san, string eku, TimeSpan lifetime)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(eku)], false));
        if (san is not null)
        {
            request.CertificateExtensions.Add(san);
        }
        var serial = RandomNumberGenerator.GetBytes(12);
        using var signed = request.Create(Ca, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.Add(lifetime), serial);
        using var withKey = signed.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    public void Dispose()
    {
        Ca.Dispose();
        Server.Dispose();
        Client.Dispose();
    }
}
