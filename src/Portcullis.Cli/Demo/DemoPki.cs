using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Portcullis.Cli.Demo;

/// <summary>Throwaway EC P-256 certificates for the demo, made with <see cref="CertificateRequest"/> (no openssl needed).</summary>
internal static class DemoPki
{
    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1");
    private static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2");

    /// <summary>A self-signed CA valid for a year.</summary>
    public static X509Certificate2 CreateCa(string commonName)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName("CN=" + commonName), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddYears(1));
    }

    /// <summary>A server certificate for localhost and 127.0.0.1.</summary>
    public static X509Certificate2 CreateServer(X509Certificate2 ca, string commonName)
    {
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        return Issue(ca, new X500DistinguishedName("CN=" + commonName), ServerAuth, san.Build());
    }

    /// <summary>A client certificate as Kubernetes reads it: CN is the user, each O a group.</summary>
    public static X509Certificate2 CreateClient(X509Certificate2 ca, string user, params string[] groups)
    {
        var name = new X500DistinguishedNameBuilder();
        foreach (var group in groups)
        {
            name.AddOrganizationName(group);
        }
        name.AddCommonName(user);
        return Issue(ca, name.Build(), ClientAuth, null);
    }

    private static X509Certificate2 Issue(X509Certificate2 ca, X500DistinguishedName subject, Oid usage, X509Extension? san)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([usage], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        if (san is not null)
        {
            request.CertificateExtensions.Add(san);
        }
        var now = DateTimeOffset.UtcNow;
        var notAfter = now.AddDays(364) < ca.NotAfter ? now.AddDays(364) : ca.NotAfter.ToUniversalTime();
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f; // a positive serial number
        using var issued = request.Create(ca, now.AddMinutes(-5), notAfter, serial);
        return issued.CopyWithPrivateKey(key);
    }

    /// <summary>Writes <c>NAME.crt</c> and <c>NAME.key</c> (PKCS#8 PEM, owner-only on Unix).</summary>
    public static void WritePem(string directory, string name, X509Certificate2 certificate)
    {
        DemoFiles.WriteFile(Path.Combine(directory, name + ".crt"), certificate.ExportCertificatePem() + "\n", secret: false);
        using var key = certificate.GetECDsaPrivateKey() ?? throw new InvalidOperationException(name + " has no EC private key");
        DemoFiles.WriteFile(Path.Combine(directory, name + ".key"), key.ExportPkcs8PrivateKeyPem() + "\n", secret: true);
    }

    /// <summary>Loads <c>NAME.crt</c> + <c>NAME.key</c> as a certificate whose key SslStream can use on every platform.</summary>
    public static X509Certificate2 LoadPem(string directory, string name)
    {
        using var pem = X509Certificate2.CreateFromPemFile(Path.Combine(directory, name + ".crt"), Path.Combine(directory, name + ".key"));
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }
}
