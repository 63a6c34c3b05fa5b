using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Portcullis.Sandbox.Tests;

/// <summary>A throwaway PKI made in memory: a CA, a server certificate for 127.0.0.1/localhost, client certificates.</summary>
public sealed class TestPki
{
    private static readonly Lazy<TestPki> SharedInstance = new(() => new TestPki("sandbox-test-ca"));
    private static readonly Lazy<TestPki> OtherInstance = new(() => new TestPki("intruder-ca"));

    public TestPki(string caName)
    {
        Ca = CreateCa(caName);
        Server = Issue(Ca, Name("localhost"), serverAuth: true);
        Client = Issue(Ca, Name("alice", "system:masters", "dev-team"), serverAuth: false);
    }

    /// <summary>The PKI shared by the tests (creating keys is the slow part).</summary>
    public static TestPki Shared => SharedInstance.Value;

    /// <summary>An unrelated PKI whose client certificates the sandbox must refuse.</summary>
    public static TestPki Other => OtherInstance.Value;

    public X509Certificate2 Ca { get; }

    public X509Certificate2 Server { get; }

    /// <summary>CN=alice, O=system:masters, O=dev-team.</summary>
    public X509Certificate2 Client { get; }

    public static X509Certificate2 CreateCa(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + name, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        using var ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-10), DateTimeOffset.UtcNow.AddDays(2));
        return Persist(ca);
    }

    /// <summary>A subject with CN = user and one O per group, in that order (the order Kubernetes reads groups in).</summary>
    public static X500DistinguishedName Name(string commonName, params string[] organizations)
    {
        // The builder writes the last added RDN first in DER (display order); add in reverse so the
        // encoded order is CN, then each O as given — what openssl's "/CN=u/O=g1/O=g2" produces.
        var builder = new X500DistinguishedNameBuilder();
        foreach (var organization in organizations.Reverse())
        {
            builder.AddOrganizationName(organization);
        }
        builder.AddCommonName(commonName);
        return builder.Build();
    }

    /// <summary>Issues a leaf certificate valid for a day (never past the CA's end).</summary>
    public static X509Certificate2 Issue(X509Certificate2 ca, X500DistinguishedName subject, bool serverAuth)
    {
        ArgumentNullException.ThrowIfNull(ca);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid(serverAuth ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        if (serverAuth)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddDnsName("localhost");
            san.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(san.Build());
        }
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using var issued = request.Create(ca, DateTimeOffset.UtcNow.AddMinutes(-5), ca.NotAfter.ToUniversalTime().AddMinutes(-1), serial);
        using var withKey = issued.CopyWithPrivateKey(key);
        return Persist(withKey);
    }

    /// <summary>Writes the CA, a client certificate and its key as PEM files, for kubectl.</summary>
    public static (string Ca, string Cert, string Key) WritePem(string directory, X509Certificate2 ca, X509Certificate2 client)
    {
        ArgumentNullException.ThrowIfNull(ca);
        ArgumentNullException.ThrowIfNull(client);
        var caPath = Path.Combine(directory, "ca.crt");
        var certPath = Path.Combine(directory, "client.crt");
        var keyPath = Path.Combine(directory, "client.key");
        File.WriteAllText(caPath, ca.ExportCertificatePem());
        File.WriteAllText(certPath, client.ExportCertificatePem());
        using var key = client.GetECDsaPrivateKey()!;
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (caPath, certPath, keyPath);
    }

    // A PKCS#12 round trip gives keys SslStream can use on every platform.
    private static X509Certificate2 Persist(X509Certificate2 certificate) =>
        X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12, ""), "", X509KeyStorageFlags.Exportable);
}
