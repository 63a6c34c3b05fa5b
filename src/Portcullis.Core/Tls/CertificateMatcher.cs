using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Portcullis.Authentication;

namespace Portcullis.Tls;

/// <summary>How a <see cref="CertificateRule{T}"/> names certificates.</summary>
public enum CertificateSelector
{
    /// <summary>The serial number (normalised hex), with the issuer's name when the rule gives one.</summary>
    Serial,
    /// <summary>The SHA-256 fingerprint of the certificate's DER encoding.</summary>
    Sha256,
    /// <summary>The subject's normalised name (<see cref="DistinguishedNames"/>).</summary>
    Subject,
}

/// <summary>
/// One rule of a <see cref="CertificateMatcher{T}"/>: <paramref name="Key"/> is the normalised serial
/// (<see cref="CertificateSerials.Normalize"/>), the lower-case hex fingerprint, or the normalised subject;
/// <paramref name="Issuer"/> (serial rules only) a normalised issuer name or null for any issuer.
/// </summary>
public sealed record CertificateRule<T>(CertificateSelector Selector, string Key, string? Issuer, DateTimeOffset? Expires, T Entry)
{
    public bool IsActive(DateTimeOffset now) => Expires is null || now < Expires.Value;
}

/// <summary>Serial numbers as the matcher keys them: hex, no colons or spaces, no leading zeros, upper case.</summary>
public static class CertificateSerials
{
    /// <summary>The longest serial accepted (RFC 5280 allows 20 octets; generous for non-conforming CAs).</summary>
    public const int MaxHexLength = 128;

    /// <summary>
    /// Writes <paramref name="serial"/> (hex, colons or spaces optional, any case) normalised into
    /// <paramref name="buffer"/>: upper case, without separators or leading zeros ("0" for zero). Allocation-free.
    /// </summary>
    public static ReadOnlySpan<char> Normalize(ReadOnlySpan<char> serial, Span<char> buffer)
    {
        var n = 0;
        foreach (var c in serial)
        {
            if (c is ':' or ' ')
            {
                continue;
            }
            if (n == 0 && c == '0')
            {
                continue;
            }
            if (n < buffer.Length)
            {
                buffer[n++] = char.ToUpperInvariant(c);
            }
        }
        if (n == 0 && buffer.Length > 0)
        {
            buffer[n++] = '0';
        }
        return buffer[..n];
    }

    /// <summary>True when <paramref name="serial"/> is hex with optional colons or spaces, at most <see cref="MaxHexLength"/> long.</summary>
    public static bool IsValid(string serial) =>
        serial.Length is > 0 and <= MaxHexLength && serial.Any(char.IsAsciiHexDigit) && serial.All(c => char.IsAsciiHexDigit(c) || c is ':' or ' ');

    /// <summary>The normalised serial of big-endian serial bytes (a certificate's or a CRL entry's).</summary>
    public static string FromBytes(ReadOnlySpan<byte> bytes)
    {
        Span<char> buffer = stackalloc char[MaxHexLength];
        return Normalize(Hex(bytes, buffer), buffer).ToString();
    }

    internal static ReadOnlySpan<char> Hex(ReadOnlySpan<byte> bytes, Span<char> buffer)
    {
        if (bytes.Length > buffer.Length / 2)
        {
            bytes = bytes[^(buffer.Length / 2)..]; // longer than any CA issues: the low octets still key it
        }
        Convert.TryToHexString(bytes, buffer, out var written);
        return buffer[..written];
    }
}

/// <summary>
/// What a <see cref="CertificateMatcher{T}"/> reads of one certificate: the SHA-256 of its DER encoding and its serial
/// (computed once), its issuer and subject names (normalised on first use only, so a list without issuer or subject
/// rules never pays for them). Holds no reference to the certificate, which may be disposed meanwhile.
/// </summary>
public sealed class CertificateFacts
{
    private readonly X500DistinguishedName _issuer;
    private readonly X500DistinguishedName _subject;
    private string? _issuerKey;
    private string? _subjectKey;

    private CertificateFacts(TokenDigest sha256, string serial, X500DistinguishedName issuer, X500DistinguishedName subject)
    {
        Sha256 = sha256;
        Serial = serial;
        _issuer = issuer;
        _subject = subject;
    }

    public static CertificateFacts Of(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(certificate.RawDataMemory.Span, hash);
        return new CertificateFacts(TokenDigest.FromHash(hash), CertificateSerials.FromBytes(certificate.SerialNumberBytes.Span),
            certificate.IssuerName, certificate.SubjectName);
    }

    /// <summary>The SHA-256 fingerprint of the DER encoding.</summary>
    public TokenDigest Sha256 { get; }
    /// <summary>The normalised serial (<see cref="CertificateSerials.Normalize"/>).</summary>
    public string Serial { get; }
    /// <summary>The subject as .NET formats it (for logs; escape it first: a refused certificate's subject is attacker text).</summary>
    public string Subject => _subject.Name;
    public string IssuerKey => _issuerKey ??= DistinguishedNames.Normalize(_issuer);
    public string SubjectKey => _subjectKey ??= DistinguishedNames.Normalize(_subject);
}

/// <summary>
/// The one certificate matcher of Portcullis: the revocation list (<c>tls.revocationFile</c>, its CRLs included) and the
/// deny list's <c>certificateSerial</c> entries both look certificates up here. Each selector is one frozen dictionary
/// (serial through a span lookup, fingerprint by its four 64-bit words, subject by its normalised name): a lookup costs
/// O(1) whatever the number of rules and allocates nothing once the facts exist. A rule whose
/// <see cref="CertificateRule{T}.Expires"/> has passed no longer matches.
/// </summary>
public sealed class CertificateMatcher<T> where T : class
{
    private readonly FrozenDictionary<string, CertificateRule<T>[]> _serials;
    private readonly FrozenDictionary<string, CertificateRule<T>[]>.AlternateLookup<ReadOnlySpan<char>> _serialLookup;
    private readonly FrozenDictionary<TokenDigest, CertificateRule<T>[]> _sha256;
    private readonly FrozenDictionary<string, CertificateRule<T>[]> _subjects;

    public CertificateMatcher(IEnumerable<CertificateRule<T>> rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        var all = rules.ToList();
        Count = all.Count;
        _serials = all.Where(r => r.Selector == CertificateSelector.Serial)
            .GroupBy(r => r.Key, StringComparer.Ordinal).ToFrozenDictionary(g => g.Key, g => g.ToArray(), StringComparer.Ordinal);
        _serialLookup = _serials.GetAlternateLookup<ReadOnlySpan<char>>();
        _sha256 = all.Where(r => r.Selector == CertificateSelector.Sha256)
            .GroupBy(r => TokenDigest.FromHash(Convert.FromHexString(r.Key))).ToFrozenDictionary(g => g.Key, g => g.ToArray());
        _subjects = all.Where(r => r.Selector == CertificateSelector.Subject)
            .GroupBy(r => r.Key, StringComparer.Ordinal).ToFrozenDictionary(g => g.Key, g => g.ToArray(), StringComparer.Ordinal);
    }

    /// <summary>The number of rules.</summary>
    public int Count { get; }

    /// <summary>The first active rule naming this certificate (fingerprint, then serial and issuer, then subject), or null.</summary>
    public CertificateRule<T>? Match(CertificateFacts certificate, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        if (Count == 0)
        {
            return null;
        }
        if (_sha256.Count > 0 && _sha256.TryGetValue(certificate.Sha256, out var rules) && First(rules, null, now) is { } bySha)
        {
            return bySha;
        }
        if (_serials.Count > 0 && _serials.TryGetValue(certificate.Serial, out rules) && First(rules, certificate, now) is { } bySerial)
        {
            return bySerial;
        }
        if (_subjects.Count > 0 && _subjects.TryGetValue(certificate.SubjectKey, out rules) && First(rules, null, now) is { } bySubject)
        {
            return bySubject;
        }
        return null;
    }

    /// <summary>
    /// The first active serial rule without an issuer for <paramref name="serial"/> (hex, colons optional, any case), or
    /// null; the deny list's <c>certificateSerial</c> lookup. Allocation-free.
    /// </summary>
    public CertificateRule<T>? MatchSerial(ReadOnlySpan<char> serial, DateTimeOffset now)
    {
        if (_serials.Count == 0 || serial.IsEmpty || serial.Length > CertificateSerials.MaxHexLength)
        {
            return null;
        }
        Span<char> buffer = stackalloc char[CertificateSerials.MaxHexLength];
        return _serialLookup.TryGetValue(CertificateSerials.Normalize(serial, buffer), out var rules) ? First(rules, null, now) : null;
    }

    // A serial rule with an issuer matches only a certificate of that issuer; without facts (a serial alone) it never does.
    private static CertificateRule<T>? First(CertificateRule<T>[] rules, CertificateFacts? certificate, DateTimeOffset now)
    {
        foreach (var r in rules)
        {
            if (!r.IsActive(now))
            {
                continue;
            }
            if (r.Issuer is null || (certificate is not null && string.Equals(r.Issuer, certificate.IssuerKey, StringComparison.Ordinal)))
            {
                return r;
            }
        }
        return null;
    }
}
