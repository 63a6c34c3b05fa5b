using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Portcullis.Authentication.X509;

/// <summary>Maps a verified client certificate to a user as kube-apiserver's x509 authenticator does (spec §2.3).</summary>
public static class X509Identity
{
    public const string CommonNameOid = "2.5.4.3";
    public const string OrganizationOid = "2.5.4.10";
    /// <summary>The LDAP <c>UID</c> attribute (0.9.2342.19200300.100.1.1), read as the user's uid (AllowParsingUserUIDFromCertAuth).</summary>
    public const string UidOid = "0.9.2342.19200300.100.1.1";
    public const string CredentialIdKey = "authentication.kubernetes.io/credential-id";

    /// <summary>
    /// CN → user name, every O in certificate order → groups, UID attribute → uid, and the credential id
    /// <c>X509SHA256=&lt;hex sha256 of the DER&gt;</c>. Null (not ok) for an empty CN; a <see cref="FormatException"/> for
    /// several or empty UID attributes (kube-apiserver: an error).
    /// </summary>
    public static UserInfo? FromCertificate(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        string? cn = null;
        var groups = new List<string>();
        var uids = new List<string>();
        foreach (var (oid, value) in Attributes(certificate.SubjectName))
        {
            switch (oid)
            {
                case CommonNameOid:
                    cn = value; // Go's pkix.Name keeps the last CN
                    break;
                case OrganizationOid:
                    groups.Add(value);
                    break;
                case UidOid:
                    uids.Add(value);
                    break;
            }
        }
        if (string.IsNullOrEmpty(cn))
        {
            return null;
        }
        if (uids.Count > 1)
        {
            throw new FormatException("expected at most one UID in the certificate subject, found " + uids.Count);
        }
        if (uids.Count == 1 && uids[0].Length == 0)
        {
            throw new FormatException("UID in the certificate subject is empty");
        }
        var extra = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal)
        {
            [CredentialIdKey] = ["X509SHA256=" + Convert.ToHexStringLower(SHA256.HashData(certificate.RawDataMemory.Span))],
        };
        return UserInfo.Create(cn, groups, uids.Count == 1 ? uids[0] : "", extra);
    }

    /// <summary>Subject attributes in DER order, multi-valued RDNs flattened (as Go's pkix.Name.FillFromRDNSequence).</summary>
    internal static IEnumerable<(string Oid, string Value)> Attributes(X500DistinguishedName name)
    {
        var result = new List<(string, string)>();
        var reader = new AsnReader(name.RawData, AsnEncodingRules.DER);
        var rdns = reader.ReadSequence();
        while (rdns.HasData)
        {
            var set = rdns.ReadSetOf();
            while (set.HasData)
            {
                var atv = set.ReadSequence();
                var oid = atv.ReadObjectIdentifier();
                var tag = atv.PeekTag();
                string value;
                if (tag.TagClass == TagClass.Universal && Enum.IsDefined(typeof(UniversalTagNumber), tag.TagValue)
                    && ((UniversalTagNumber)tag.TagValue) is UniversalTagNumber.UTF8String or UniversalTagNumber.PrintableString
                        or UniversalTagNumber.IA5String or UniversalTagNumber.BMPString or UniversalTagNumber.T61String
                        or UniversalTagNumber.UniversalString or UniversalTagNumber.VisibleString or UniversalTagNumber.NumericString)
                {
                    value = atv.ReadCharacterString((UniversalTagNumber)tag.TagValue);
                }
                else
                {
                    atv.ReadEncodedValue();
                    continue;
                }
                result.Add((oid, value));
            }
        }
        return result;
    }
}
