using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Portcullis.Tls;

/// <summary>
/// An X.509 CRL (RFC 5280 §5) read from DER or PEM and verified against the client CA bundle: the issuer's name must be
/// the subject of a CA in the bundle whose key verifies the CRL's signature (ECDSA or RSA PKCS#1 v1.5 with SHA-256/384/512)
/// and whose key usage, when present, allows cRLSign. .NET reads CRLs only into its CRL builder, which lists no entries,
/// so the three fields the gateway needs (issuer, revoked serials, signature) are read with System.Formats.Asn1's DER
/// reader; anything else in the CRL (extensions, entry reason codes) is not interpreted. <c>nextUpdate</c> is reported,
/// not enforced: the entries stay in force until the file is replaced.
/// </summary>
public sealed class CertificateRevocationListFile
{
    private CertificateRevocationListFile(X509Certificate2 issuer, IReadOnlyList<string> serials, DateTimeOffset thisUpdate, DateTimeOffset? nextUpdate)
    {
        Issuer = issuer;
        Serials = serials;
        ThisUpdate = thisUpdate;
        NextUpdate = nextUpdate;
    }

    /// <summary>The CA of the bundle that signed the CRL.</summary>
    public X509Certificate2 Issuer { get; }
    /// <summary>The revoked serials, normalised (<see cref="CertificateSerials"/>).</summary>
    public IReadOnlyList<string> Serials { get; }
    public DateTimeOffset ThisUpdate { get; }
    public DateTimeOffset? NextUpdate { get; }

    /// <summary>Reads and verifies a CRL; <see cref="FormatException"/> says what is wrong with it.</summary>
    public static CertificateRevocationListFile Read(ReadOnlySpan<byte> content, X509Certificate2Collection authorities)
    {
        ArgumentNullException.ThrowIfNull(authorities);
        var der = Der(content);
        try
        {
            var outer = new AsnReader(der, AsnEncodingRules.DER);
            var certList = outer.ReadSequence();
            outer.ThrowIfNotEmpty();
            var tbsEncoded = certList.PeekEncodedValue();
            var tbs = certList.ReadSequence();
            var algorithm = certList.ReadSequence();
            var signatureOid = algorithm.ReadObjectIdentifier();
            var signature = certList.ReadBitString(out _);
            certList.ThrowIfNotEmpty();

            if (tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Integer))
            {
                tbs.ReadInteger(); // version v2
            }
            tbs.ReadSequence(); // the signature algorithm again
            var issuerName = new X500DistinguishedName(tbs.ReadEncodedValue().Span);
            var thisUpdate = ReadTime(tbs);
            DateTimeOffset? nextUpdate = null;
            if (tbs.HasData && IsTime(tbs.PeekTag()))
            {
                nextUpdate = ReadTime(tbs);
            }
            var serials = new List<string>();
            if (tbs.HasData && tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Sequence))
            {
                var revoked = tbs.ReadSequence();
                while (revoked.HasData)
                {
                    var entry = revoked.ReadSequence();
                    serials.Add(CertificateSerials.FromBytes(entry.ReadIntegerBytes().Span));
                    ReadTime(entry);
                }
            }
            var issuer = VerifiedBy(authorities, issuerName, signatureOid, tbsEncoded.Span, signature)
                ?? throw new FormatException($"its signature does not verify against any CA in tls.clientCAFile (issuer \"{issuerName.Name}\")");
            return new CertificateRevocationListFile(issuer, serials, thisUpdate, nextUpdate);
        }
        catch (AsnContentException ex)
        {
            throw new FormatException($"not a DER X.509 CRL: {ex.Message}", ex);
        }
        catch (CryptographicException ex)
        {
            throw new FormatException($"not an X.509 CRL: {ex.Message}", ex);
        }
    }

    private static byte[] Der(ReadOnlySpan<byte> content)
    {
        var text = System.Text.Encoding.ASCII.GetString(content);
        if (!text.Contains("-----BEGIN", StringComparison.Ordinal))
        {
            return content.ToArray();
        }
        if (PemEncoding.TryFind(text, out var fields) && text[fields.Label] == "X509 CRL")
        {
            return Convert.FromBase64String(text[fields.Base64Data]);
        }
        throw new FormatException("a PEM file without an \"X509 CRL\" block");
    }

    private static bool IsTime(Asn1Tag tag) =>
        tag.HasSameClassAndValue(Asn1Tag.UtcTime) || tag.HasSameClassAndValue(Asn1Tag.GeneralizedTime);

    private static DateTimeOffset ReadTime(AsnReader reader) =>
        reader.PeekTag().HasSameClassAndValue(Asn1Tag.UtcTime) ? reader.ReadUtcTime() : reader.ReadGeneralizedTime();

    private static X509Certificate2? VerifiedBy(X509Certificate2Collection authorities, X500DistinguishedName issuer, string oid,
        ReadOnlySpan<byte> signed, ReadOnlySpan<byte> signature)
    {
        var (hash, ecdsa) = oid switch
        {
            "1.2.840.10045.4.3.2" => (HashAlgorithmName.SHA256, true),
            "1.2.840.10045.4.3.3" => (HashAlgorithmName.SHA384, true),
            "1.2.840.10045.4.3.4" => (HashAlgorithmName.SHA512, true),
            "1.2.840.113549.1.1.11" => (HashAlgorithmName.SHA256, false),
            "1.2.840.113549.1.1.12" => (HashAlgorithmName.SHA384, false),
            "1.2.840.113549.1.1.13" => (HashAlgorithmName.SHA512, false),
            _ => throw new FormatException($"signature algorithm {oid} is not supported (ECDSA or RSA PKCS#1 v1.5 with SHA-256/384/512)"),
        };
        var issuerKey = DistinguishedNames.Normalize(issuer);
        foreach (var ca in authorities)
        {
            if (!string.Equals(DistinguishedNames.Normalize(ca.SubjectName), issuerKey, StringComparison.Ordinal))
            {
                continue;
            }
            if (ca.Extensions.OfType<X509KeyUsageExtension>().FirstOrDefault() is { } usage && (usage.KeyUsages & X509KeyUsageFlags.CrlSign) == 0)
            {
                continue;
            }
            bool ok;
            if (ecdsa)
            {
                using var key = ca.GetECDsaPublicKey();
                ok = key is not null && key.VerifyData(signed, signature, hash, DSASignatureFormat.Rfc3279DerSequence);
            }
            else
            {
                using var key = ca.GetRSAPublicKey();
                ok = key is not null && key.VerifyData(signed, signature, hash, RSASignaturePadding.Pkcs1);
            }
            if (ok)
            {
                return ca;
            }
        }
        return null;
    }
}
