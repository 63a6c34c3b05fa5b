using System.Formats.Asn1;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Portcullis.Testing;

/// <summary>
/// A throwaway PKI made in memory for one test run: an ECDSA P-256 CA (<see cref="Certificate"/>) and the server and
/// client certificates it signs. Every certificate comes back with a key SslStream can use on every platform (PKCS#12
/// round trip, exportable, so it can also be written as PEM). The static members work on any CA certificate.
/// </summary>
public sealed class TestPki : IDisposable
{
    public const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";
    public const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    public TestPki(string name = "portcullis-test-ca", TimeSpan? lifetime = null)
    {
        Certificate = CreateCa(name, lifetime: lifetime);
    }

    /// <summary>The CA certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    public string CertificatePem => Certificate.ExportCertificatePem();

    /// <summary>A server certificate for <paramref name="dnsName"/>, 127.0.0.1 and ::1, valid for ten days.</summary>
    public X509Certificate2 IssueServer(string dnsName = "localhost") =>
        Issue(Certificate, new X500DistinguishedName($"CN={dnsName}"), ServerAuthOid, ServerNames([dnsName], ipAddresses: true));

    /// <summary>A server certificate with exactly these names, valid for <paramref name="lifetime"/> (negative: already expired).</summary>
    public X509Certificate2 IssueServer(string subject, IEnumerable<string> dnsNames, bool ipAddresses, TimeSpan lifetime) =>
        Issue(Certificate, new X500DistinguishedName(subject), ServerAuthOid, ServerNames(dnsNames, ipAddresses), DateTimeOffset.UtcNow.Add(lifetime));

    /// <summary>A client certificate: CN = user, one O per group (in that order, as kube-apiserver reads them).</summary>
    public X509Certificate2 IssueClient(string user, params string[] groups) => Issue(Certificate, Name(user, groups), ClientAuthOid);

    /// <summary>
    /// A client certificate (CN = user, O = groups) valid for <paramref name="lifetime"/> in all, ending in ten days: it
    /// began long ago when the lifetime is longer (a one-year certificate issued a year ago), so a short-lived CA still
    /// signs it and it verifies now.
    /// </summary>
    public X509Certificate2 IssueClient(TimeSpan lifetime, string user, params string[] groups)
    {
        var end = DateTimeOffset.UtcNow.AddDays(10);
        return Issue(Certificate, Name(user, groups), ClientAuthOid, null, end, end - lifetime);
    }

    /// <summary>Creates a CA, self-signed or (with <paramref name="issuer"/>) an intermediate signed by that CA.</summary>
    public static X509Certificate2 CreateCa(string name, X509Certificate2? issuer = null, TimeSpan? lifetime = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + name, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        var notAfter = now.Add(lifetime ?? TimeSpan.FromDays(30));
        if (issuer is null)
        {
            using var selfSigned = request.CreateSelfSigned(now.AddDays(-1), notAfter);
            return WithUsableKey(selfSigned);
        }
        var issuerEnd = new DateTimeOffset(issuer.NotAfter.ToUniversalTime(), TimeSpan.Zero).AddMinutes(-1);
        using var signed = request.Create(issuer, now.AddDays(-1), notAfter < issuerEnd ? notAfter : issuerEnd, Serial());
        using var withKey = signed.CopyWithPrivateKey(key);
        return WithUsableKey(withKey);
    }

    /// <summary>
    /// Issues a leaf certificate signed by <paramref name="ca"/> with extended key usage <paramref name="eku"/>, the
    /// extensions given (e.g. a SAN), valid from <paramref name="notBefore"/> (default a day ago; may precede the CA's own
    /// start) to <paramref name="notAfter"/> (default ten days, never past the CA's end).
    /// </summary>
    public static X509Certificate2 Issue(X509Certificate2 ca, X500DistinguishedName subject, string eku, X509Extension? subjectAltName = null,
        DateTimeOffset? notAfter = null, DateTimeOffset? notBefore = null)
    {
        ArgumentNullException.ThrowIfNull(ca);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(eku)], false));
        if (subjectAltName is not null)
        {
            request.CertificateExtensions.Add(subjectAltName);
        }
        var now = DateTimeOffset.UtcNow;
        var caEnd = new DateTimeOffset(ca.NotAfter.ToUniversalTime(), TimeSpan.Zero).AddMinutes(-1);
        var end = notAfter ?? now.AddDays(10);
        var start = notBefore ?? now.AddDays(-1);
        if (notBefore is not null)
        {
            // Create(ca, ...) refuses a start before the CA's own; signed by the CA's key and name, chains verify all the same.
            using var caKey = ca.GetECDsaPrivateKey() ?? throw new ArgumentException("the CA has no ECDSA private key", nameof(ca));
            var serial = Serial();
            using var backdated = request.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), start, end < caEnd ? end : caEnd, serial);
            using var backdatedWithKey = backdated.CopyWithPrivateKey(key);
            return WithUsableKey(backdatedWithKey);
        }
        using var signed = request.Create(ca, end < start ? end.AddDays(-1) : start, end < caEnd ? end : caEnd, Serial());
        using var withKey = signed.CopyWithPrivateKey(key);
        return WithUsableKey(withKey);
    }

    /// <summary>A server certificate for 127.0.0.1 and localhost (CN=127.0.0.1), for loopback HTTPS servers.</summary>
    public static X509Certificate2 CreateServer(X509Certificate2 ca) =>
        Issue(ca, new X500DistinguishedName("CN=127.0.0.1"), ServerAuthOid, ServerNames(["localhost"], ipAddresses: true));

    /// <summary>A client certificate whose subject is <paramref name="subject"/> in exactly that order (e.g. CN, O, O, UID).</summary>
    public static X509Certificate2 CreateClient(X509Certificate2 ca, IEnumerable<(string Oid, string Value)> subject, bool clientAuth = true,
        DateTimeOffset? notAfter = null) =>
        Issue(ca, OrderedName(subject), clientAuth ? ClientAuthOid : ServerAuthOid, null, notAfter);

    public static (string Oid, string Value) CN(string v) => ("2.5.4.3", v);
    public static (string Oid, string Value) O(string v) => ("2.5.4.10", v);
    public static (string Oid, string Value) Uid(string v) => ("0.9.2342.19200300.100.1.1", v);

    /// <summary>A subject with CN = user and one O per group, encoded in that order (what openssl's "/CN=u/O=g1/O=g2" produces).</summary>
    public static X500DistinguishedName Name(string commonName, params string[] organizations)
    {
        // The builder writes the last added RDN first in DER; add in reverse so the encoded order is CN, then each O.
        var builder = new X500DistinguishedNameBuilder();
        foreach (var organization in organizations.Reverse())
        {
            builder.AddOrganizationName(organization);
        }
        builder.AddCommonName(commonName);
        return builder.Build();
    }

    /// <summary>Encodes the RDNs in exactly the given order, one attribute per RDN, as UTF8String.</summary>
    public static X500DistinguishedName OrderedName(IEnumerable<(string Oid, string Value)> subject)
    {
        ArgumentNullException.ThrowIfNull(subject);
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

    /// <summary>A SAN with the DNS names and, when asked, 127.0.0.1 and ::1.</summary>
    public static X509Extension ServerNames(IEnumerable<string> dnsNames, bool ipAddresses)
    {
        ArgumentNullException.ThrowIfNull(dnsNames);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in dnsNames)
        {
            san.AddDnsName(name);
        }
        if (ipAddresses)
        {
            san.AddIpAddress(IPAddress.Loopback);
            san.AddIpAddress(IPAddress.IPv6Loopback);
        }
        return san.Build();
    }

    /// <summary>PEM of the certificate alone, with a final newline.</summary>
    public static string Pem(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return certificate.ExportCertificatePem() + "\n";
    }

    /// <summary>Writes a certificate and its private key as PEM files (e.g. for a gateway configuration or a kubeconfig).</summary>
    public static void WritePem(X509Certificate2 certificate, string certPath, string keyPath)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        File.WriteAllText(certPath, certificate.ExportCertificatePem());
        using var key = certificate.GetECDsaPrivateKey() ?? throw new ArgumentException("the certificate has no ECDSA private key", nameof(certificate));
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>A copy whose key SslStream can use on every platform and which can be exported (PKCS#12 round trip).</summary>
    public static X509Certificate2 WithUsableKey(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12, ""), "", X509KeyStorageFlags.Exportable);
    }

    private static byte[] Serial()
    {
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        return serial;
    }

    public void Dispose() => Certificate.Dispose();
}
