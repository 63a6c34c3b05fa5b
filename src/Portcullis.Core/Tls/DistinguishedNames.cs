using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Portcullis.Tls;

/// <summary>
/// The normalised form of an X.500 distinguished name, in which revocation entries by <c>subject</c> and <c>issuer</c>
/// are compared with certificates: the set of its attribute=value pairs, each attribute by OID (so <c>CN</c>,
/// <c>commonName</c> and <c>2.5.4.3</c> are one), the value trimmed and case-sensitive (Kubernetes user and group names
/// are), sorted. So <c>CN=jane,O=dev</c>, <c>CN=jane, O=dev</c>, openssl's <c>O = dev, CN = jane</c> and
/// <c>/O=dev/CN=jane</c> are one name, as they are one Kubernetes identity.
/// </summary>
public static class DistinguishedNames
{
    /// <summary>The normalised form of a name read from a certificate.</summary>
    public static string Normalize(X500DistinguishedName name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var parts = new List<string>();
        foreach (var rdn in name.EnumerateRelativeDistinguishedNames())
        {
            parts.Add(rdn.HasMultipleElements
                ? "raw=" + Convert.ToHexString(rdn.RawData.Span) // a multi-valued RDN (rare) is compared as encoded
                : rdn.GetSingleElementType().Value + "=" + (rdn.GetSingleElementValue() ?? "").Trim());
        }
        parts.Sort(StringComparer.Ordinal);
        var text = new StringBuilder();
        foreach (var p in parts)
        {
            text.Append(p).Append('\n');
        }
        return text.ToString();
    }

    /// <summary>Parses a name as written in a file (RFC 4514 <c>CN=jane,O=dev</c> or openssl's <c>/O=dev/CN=jane</c>).</summary>
    public static bool TryNormalize(string text, out string normalized)
    {
        ArgumentNullException.ThrowIfNull(text);
        normalized = "";
        var t = text.Trim();
        if (t.StartsWith('/'))
        {
            t = string.Join(", ", t.Split('/', StringSplitOptions.RemoveEmptyEntries));
        }
        if (t.Length == 0 || !t.Contains('=', StringComparison.Ordinal))
        {
            return false;
        }
        try
        {
            normalized = Normalize(new X500DistinguishedName(t));
            return normalized.Length > 0;
        }
        catch (CryptographicException)
        {
            return false;
        }
    }
}
