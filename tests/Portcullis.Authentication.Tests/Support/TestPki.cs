using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Portcullis.Authentication.Tests.Support;

/// <summary>Test certificates made in memory: CAs, a 127.0.0.1 server certificate, client certificates.</summary>
internal static class TestPki
{
    public static X509Certificate2 CreateCa(string name, X509Certificate2? issuer = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + name, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        if (issuer is null)
        {
            return request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        }
        using var cert = request.Create(issuer, now.AddDays(-1), now.AddDays(29), RandomNumberGenerator.GetBytes(8));
        return cert.CopyWithPrivateKey(key);
    }

    public static X509Certificate2 CreateServer(X509Certificate2 ca)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var now = DateTimeOffset.UtcNow;
        using var cert = request.Create(ca, now.AddDays(-1), now.AddDays(10), RandomNumberGenerator.GetBytes(8));
        using var withKey = cert.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>A client certificate; <paramref name="subject"/> is built in the given order (e.g. CN, O, O, UID).</summary>
    public static X509Certificate2 CreateClient(X509Certificate2 ca, IEnumerable<(string Oid, string Value)> subject, bool clientAuth = true,
        DateTimeOffset? notAfter = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(Name(subject), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(clientAuth ? "1.3.6.1.5.5.7.3.2" : "1.3.6.1.5.5.7.3.1")], false));
        var now = DateTimeOffset.UtcNow;
        using var cert = request.Create(ca, now.AddDays(-1), notAfter ?? now.AddDays(10), RandomNumberGenerator.GetBytes(8));
        return cert.CopyWithPrivateKey(key);
    }

    public static (string Oid, string Value) CN(string v) => ("2.5.4.3", v);
    public static (string Oid, string Value) O(string v) => ("2.5.4.10", v);
    public static (string Oid, string Value) Uid(string v) => ("0.9.2342.19200300.100.1.1", v);

    /// <summary>Encodes RDNs in the given order (X500DistinguishedNameBuilder would reverse nothing, but keep it explicit).</summary>
    private static X500DistinguishedName Name(IEnumerable<(string Oid, string Value)> subject)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            foreach (var (oid, value) in subject)
            {
                using (writer.PushSetOf())
                using (writer.PushSequence())
                {
                    writer.WriteObjectIdentifier(oid);
                    writer.WriteCharacterString(UniversalTagNumber.UTF8String, value);
                }
            }
        }
        return new X500DistinguishedName(writer.Encode());
    }

    public static string Pem(X509Certificate2 cert) => cert.ExportCertificatePem() + "\n";
}
