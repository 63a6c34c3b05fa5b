using System.Security.Cryptography.X509Certificates;
using Portcullis.Configuration;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Tls;

/// <summary>One revoked certificate (or set of certificates, for a subject): what names it, why, until when.</summary>
public sealed record RevocationEntry
{
    /// <summary>serial, sha256 or subject.</summary>
    public required string Selector { get; init; }
    /// <summary>The value as the matcher keys it (serial and fingerprint normalised) or, for a subject, as written.</summary>
    public required string Value { get; init; }
    /// <summary>The issuer as written (serial entries), or empty.</summary>
    public string Issuer { get; init; } = "";
    public required string Reason { get; init; }
    public DateTimeOffset? Expires { get; init; }
    /// <summary>Where the entry comes from: <c>certificates[i]</c> or <c>crlFiles[i]</c>.</summary>
    public required string Origin { get; init; }
    /// <summary>file:line of the entry (or of the CRL file's name in the list).</summary>
    public string Source { get; init; } = "";

    /// <summary>Names the entry for logs (no secret in it: serials, fingerprints and subjects are public).</summary>
    public string Describe() => $"{Origin} {Selector}={(Selector == "sha256" ? Value[..16] + "…" : Value)}";
}

/// <summary>
/// An immutable revocation list (<c>kind: RevocationList</c>, <c>tls.revocationFile</c>): certificates refused at the TLS
/// handshake however well they chain, by serial (optionally with the issuer's name), SHA-256 fingerprint or subject, and
/// every serial of the CRL files it names (each verified against the client CA bundle at load). Looked up through the
/// shared <see cref="CertificateMatcher{T}"/>: O(1) per handshake whatever the list's size.
/// </summary>
public sealed class RevocationList
{
    public const string KindValue = "RevocationList";

    public RevocationList(IEnumerable<RevocationEntry> entries, IReadOnlyList<string>? files = null)
    {
        ArgumentNullException.ThrowIfNull(entries);
        Entries = [.. entries];
        Files = files ?? [];
        Matcher = new CertificateMatcher<RevocationEntry>(Entries.Select(Rule));
        BySha256 = Entries.Where(e => e.Selector == "sha256")
            .GroupBy(e => e.Value, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.ToArray(), StringComparer.Ordinal);
    }

    public static RevocationList Empty { get; } = new([]);

    public IReadOnlyList<RevocationEntry> Entries { get; }
    /// <summary>The files the list was read from (the list itself and its CRLs): the gateway watches them.</summary>
    public IReadOnlyList<string> Files { get; }
    public CertificateMatcher<RevocationEntry> Matcher { get; }
    /// <summary>
    /// The sha256 entries by normalised fingerprint, built with the list: the webhook's SubjectAccessReview checks the
    /// fingerprints kube-apiserver's x509 authenticator puts in <c>extra</c> against it, with no certificate to match.
    /// </summary>
    public IReadOnlyDictionary<string, RevocationEntry[]> BySha256 { get; }

    /// <summary>The active entry revoking this certificate, or null.</summary>
    public RevocationEntry? Match(CertificateFacts certificate, DateTimeOffset now) => Matcher.Match(certificate, now)?.Entry;

    private static CertificateRule<RevocationEntry> Rule(RevocationEntry e)
    {
        switch (e.Selector)
        {
            case "serial":
                string? issuer = null;
                if (e.Issuer.Length > 0)
                {
                    issuer = DistinguishedNames.TryNormalize(e.Issuer, out var n) ? n : throw new ArgumentException($"{e.Origin}: issuer \"{e.Issuer}\" is not a distinguished name");
                }
                return new(CertificateSelector.Serial, e.Value, issuer, e.Expires, e);
            case "sha256":
                return new(CertificateSelector.Sha256, e.Value, null, e.Expires, e);
            case "subject":
                return new(CertificateSelector.Subject, DistinguishedNames.TryNormalize(e.Value, out var s) ? s : throw new ArgumentException($"{e.Origin}: subject \"{e.Value}\" is not a distinguished name"), null, e.Expires, e);
            default:
                throw new ArgumentException($"{e.Origin}: unknown selector {e.Selector}");
        }
    }

    /// <summary>
    /// Loads a RevocationList file and its CRLs (relative paths from the file's folder), each CRL verified against
    /// <paramref name="authorities"/> (the <c>tls.clientCAFile</c> bundle). Every error names file:line and field; the
    /// list is null when there are errors.
    /// </summary>
    public static RevocationList? Load(string path, X509Certificate2Collection? authorities, List<ConfigError> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            errors.Add(new ConfigError(path, 0, "(file)", $"cannot read the revocation list: {ex.Message}"));
            return null;
        }
        return Parse(text, path, authorities, errors);
    }

    /// <summary>Parses RevocationList text as if read from <paramref name="path"/>.</summary>
    public static RevocationList? Parse(string text, string path, X509Certificate2Collection? authorities, List<ConfigError> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var before = errors.Count;
        var binder = new YamlBinder(path, errors);
        if (binder.ParseOne(text) is not { } root)
        {
            return null;
        }
        var doc = binder.Bind<RevocationListDocument>(root, "");
        if (doc.ApiVersion != GatewayConfiguration.ApiVersionValue)
        {
            binder.Error(Find(root, "apiVersion") ?? root, "apiVersion", $"\"{doc.ApiVersion}\" must be {GatewayConfiguration.ApiVersionValue}");
        }
        if (doc.Kind != KindValue)
        {
            binder.Error(Find(root, "kind") ?? root, "kind", $"\"{doc.Kind}\" must be {KindValue}");
        }
        var entries = new List<RevocationEntry>();
        var nodes = (Find(root, "certificates") as YamlSequenceNode)?.Children;
        Span<char> buffer = stackalloc char[CertificateSerials.MaxHexLength];
        for (var i = 0; i < doc.Certificates.Count; i++)
        {
            var e = doc.Certificates[i];
            YamlNode node = nodes is not null && i < nodes.Count ? nodes[i] : root;
            var field = $"certificates[{i}]";
            var selectors = new[] { ("serial", e.Serial), ("sha256", e.Sha256), ("subject", e.Subject) }.Where(s => s.Item2.Length > 0).ToList();
            if (selectors.Count != 1)
            {
                binder.Error(node, field, selectors.Count == 0
                    ? "needs one of serial, sha256 or subject"
                    : $"names {string.Join(" and ", selectors.Select(s => s.Item1))}; use one entry per selector");
                continue;
            }
            if (e.Reason.Trim().Length == 0)
            {
                binder.Error(node, field + ".reason", "is required: say why (it is logged when the certificate is refused)");
            }
            var (name, value) = selectors[0];
            if (e.Issuer.Length > 0 && name != "serial")
            {
                binder.Error(node, field + ".issuer", "goes with serial only (a fingerprint or subject needs no issuer)");
            }
            switch (name)
            {
                case "serial":
                    if (!CertificateSerials.IsValid(value))
                    {
                        binder.Error(node, field + ".serial", $"\"{value}\" must be hex, colons optional (openssl x509 -noout -serial)");
                        continue;
                    }
                    value = CertificateSerials.Normalize(value, buffer).ToString();
                    if (e.Issuer.Length > 0 && !DistinguishedNames.TryNormalize(e.Issuer, out _))
                    {
                        binder.Error(node, field + ".issuer", $"\"{e.Issuer}\" is not a distinguished name (CN=my-ca,O=example)");
                        continue;
                    }
                    break;
                case "sha256":
                    value = value.Replace(":", "", StringComparison.Ordinal).ToLowerInvariant();
                    if (value.Length != 64 || !value.All(char.IsAsciiHexDigit))
                    {
                        binder.Error(node, field + ".sha256", "must be 64 hex digits, colons optional (openssl x509 -noout -fingerprint -sha256)");
                        continue;
                    }
                    break;
                default:
                    if (!DistinguishedNames.TryNormalize(value, out _))
                    {
                        binder.Error(node, field + ".subject", $"\"{value}\" is not a distinguished name (CN=jane,O=dev)");
                        continue;
                    }
                    break;
            }
            entries.Add(new RevocationEntry
            {
                Selector = name,
                Value = value,
                Issuer = e.Issuer,
                Reason = e.Reason,
                Expires = e.Expires,
                Origin = field,
                Source = $"{path}:{(int)node.Start.Line}",
            });
        }

        var files = new List<string> { Path.GetFullPath(path) };
        var crlNodes = (Find(root, "crlFiles") as YamlSequenceNode)?.Children;
        for (var i = 0; i < doc.CrlFiles.Count; i++)
        {
            YamlNode node = crlNodes is not null && i < crlNodes.Count ? crlNodes[i] : root;
            var field = $"crlFiles[{i}]";
            var crlPath = Path.GetFullPath(doc.CrlFiles[i], Path.GetDirectoryName(Path.GetFullPath(path))!);
            files.Add(crlPath);
            if (authorities is null || authorities.Count == 0)
            {
                binder.Error(node, field, "needs tls.clientCAFile: a CRL is verified against the client CA that signed it");
                continue;
            }
            CertificateRevocationListFile crl;
            try
            {
                crl = CertificateRevocationListFile.Read(File.ReadAllBytes(crlPath), authorities);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
            {
                binder.Error(node, field, $"{crlPath}: {ex.Message}");
                continue;
            }
            var issuer = crl.Issuer.Subject;
            foreach (var serial in crl.Serials)
            {
                entries.Add(new RevocationEntry
                {
                    Selector = "serial",
                    Value = serial,
                    Issuer = issuer,
                    Reason = $"listed in CRL {Path.GetFileName(crlPath)}",
                    Origin = field,
                    Source = $"{path}:{(int)node.Start.Line}",
                });
            }
        }
        return errors.Count > before ? null : new RevocationList(entries, files);
    }

    private static YamlNode? Find(YamlNode root, string key) =>
        root is YamlMappingNode map && map.Children.TryGetValue(new YamlScalarNode(key), out var v) ? v : null;

    /// <summary>The file's shape, bound by <see cref="YamlBinder"/>.</summary>
    public sealed class RevocationListDocument
    {
        public string ApiVersion { get; set; } = "";
        public string Kind { get; set; } = "";
        public List<RevocationEntryDocument> Certificates { get; set; } = [];
        public List<string> CrlFiles { get; set; } = [];
    }

    /// <summary>One entry as written.</summary>
    public sealed class RevocationEntryDocument
    {
        public string Serial { get; set; } = "";
        public string Issuer { get; set; } = "";
        public string Sha256 { get; set; } = "";
        public string Subject { get; set; } = "";
        public string Reason { get; set; } = "";
        public DateTimeOffset? Expires { get; set; }
    }
}
