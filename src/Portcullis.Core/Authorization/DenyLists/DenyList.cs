using System.Collections.Frozen;
using System.Globalization;
using System.Net;
using Portcullis.Authentication;
using Portcullis.Configuration;
using Portcullis.Network;
using Portcullis.Tls;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Authorization.DenyLists;

/// <summary>One deny-list entry: exactly one selector, a reason, an optional expiry.</summary>
public sealed record DenyListEntry
{
    /// <summary>user, group, serviceAccount, tokenSHA256, certificateSerial or sourceCIDR.</summary>
    public required string Selector { get; init; }
    /// <summary>The selector's value as written (tokenSHA256 in lowercase; certificateSerial normalised).</summary>
    public required string Value { get; init; }
    public required string Reason { get; init; }
    public DateTimeOffset? Expires { get; init; }
    /// <summary>Position in the file: entries[i] and file:line.</summary>
    public int Index { get; init; }
    public string Source { get; init; } = "";
    internal Cidr Cidr { get; init; }

    /// <summary>Safe to log and audit: names the entry; a token hash is shortened.</summary>
    public string Describe() =>
        $"entries[{Index}] {Selector}={(Selector == "tokenSHA256" && Value.Length > 12 ? Value[..12] + "…" : Value)}";

    public bool IsActive(DateTimeOffset now) => Expires is null || now < Expires.Value;
}

/// <summary>
/// An immutable deny list (<c>kind: DenyList</c>, CONFIG.md): identities and networks shut out before any mode is
/// asked. Matching is allocation-free. Each load gets a higher <see cref="Version"/> so the gateway can tell a new list
/// from the old one and re-check its open streams with <see cref="Matches"/>.
/// </summary>
public sealed class DenyList
{
    public const string KindValue = "DenyList";
    private static long s_versions;

    private readonly FrozenDictionary<string, DenyListEntry[]> _users;
    private readonly FrozenDictionary<string, DenyListEntry[]> _groups;
    private readonly FrozenDictionary<string, DenyListEntry[]> _tokens;
    private readonly CertificateMatcher<DenyListEntry> _serials;
    private readonly FrozenDictionary<string, DenyListEntry[]>.AlternateLookup<ReadOnlySpan<char>> _tokenLookup;
    private readonly DenyListEntry[] _cidrs;

    public DenyList(IEnumerable<DenyListEntry> entries)
    {
        Entries = [.. entries];
        FrozenDictionary<string, DenyListEntry[]> By(string selector, Func<DenyListEntry, string> key, StringComparer comparer) =>
            Entries.Where(e => e.Selector == selector).GroupBy(key, comparer).ToFrozenDictionary(g => g.Key, g => g.ToArray(), comparer);
        _users = Entries.Where(e => e.Selector is "user" or "serviceAccount")
            .GroupBy(e => e.Selector == "user" ? e.Value : ServiceAccountUser(e.Value), StringComparer.Ordinal)
            .ToFrozenDictionary(g => g.Key, g => g.ToArray(), StringComparer.Ordinal);
        _groups = By("group", e => e.Value, StringComparer.Ordinal);
        _tokens = By("tokenSHA256", e => e.Value, StringComparer.OrdinalIgnoreCase);
        // certificateSerial entries go to the matcher the revocation list uses (tls.revocationFile): one serial lookup.
        _serials = new CertificateMatcher<DenyListEntry>(Entries.Where(e => e.Selector == "certificateSerial")
            .Select(e => new CertificateRule<DenyListEntry>(CertificateSelector.Serial, e.Value, null, e.Expires, e)));
        _tokenLookup = _tokens.GetAlternateLookup<ReadOnlySpan<char>>();
        _cidrs = [.. Entries.Where(e => e.Selector == "sourceCIDR")];
        Version = Interlocked.Increment(ref s_versions);
    }

    public static DenyList Empty { get; } = new([]);

    public IReadOnlyList<DenyListEntry> Entries { get; }

    /// <summary>Increases with every list built in this process.</summary>
    public long Version { get; }

    /// <summary>
    /// The first active entry that matches the identity, credential or source address, or null. Allocation-free.
    /// <paramref name="tokenSha256"/> is hex (any case); <paramref name="certificateSerial"/> hex with or without colons.
    /// </summary>
    public DenyListEntry? Matches(UserInfo user, string? tokenSha256, string? certificateSerial, IPAddress? sourceAddress, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (_users.Count > 0 && _users.TryGetValue(user.Name, out var entries) && First(entries, now) is { } byUser)
        {
            return byUser;
        }
        if (_groups.Count > 0)
        {
            var groups = user.Groups;
            for (var i = 0; i < groups.Count; i++)
            {
                if (_groups.TryGetValue(groups[i], out entries) && First(entries, now) is { } byGroup)
                {
                    return byGroup;
                }
            }
        }
        if (_tokens.Count > 0 && !string.IsNullOrEmpty(tokenSha256) && _tokenLookup.TryGetValue(tokenSha256, out entries) && First(entries, now) is { } byToken)
        {
            return byToken;
        }
        if (_serials.Count > 0 && !string.IsNullOrEmpty(certificateSerial) && _serials.MatchSerial(certificateSerial, now) is { } bySerial)
        {
            return bySerial.Entry;
        }
        if (_cidrs.Length > 0 && sourceAddress is not null)
        {
            foreach (var e in _cidrs)
            {
                if (e.IsActive(now) && e.Cidr.Contains(sourceAddress))
                {
                    return e;
                }
            }
        }
        return null;
    }

    private static DenyListEntry? First(DenyListEntry[] entries, DateTimeOffset now)
    {
        foreach (var e in entries)
        {
            if (e.IsActive(now))
            {
                return e;
            }
        }
        return null;
    }

    private static string ServiceAccountUser(string nsSlashName)
    {
        var slash = nsSlashName.IndexOf('/', StringComparison.Ordinal);
        return "system:serviceaccount:" + nsSlashName[..slash] + ":" + nsSlashName[(slash + 1)..];
    }

    /// <summary>Serial as hex without colons or leading zeros, upper case (<see cref="CertificateSerials.Normalize"/>).</summary>
    public static ReadOnlySpan<char> NormalizeSerial(ReadOnlySpan<char> serial, Span<char> buffer) => CertificateSerials.Normalize(serial, buffer);

    /// <summary>Loads a DenyList file; every error names file:line and field. The list is null when there are errors.</summary>
    public static (DenyList? List, IReadOnlyList<ConfigError> Errors) Load(string path)
    {
        var errors = new List<ConfigError>();
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            errors.Add(new ConfigError(path, 0, "(file)", $"cannot read the deny list: {ex.Message}"));
            return (null, errors);
        }
        var list = Parse(text, path, errors);
        return (errors.Count == 0 ? list : null, errors);
    }

    /// <summary>Parses DenyList text as if read from <paramref name="path"/>.</summary>
    public static DenyList? Parse(string text, string path, List<ConfigError> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var binder = new YamlBinder(path, errors);
        if (binder.ParseOne(text) is not { } root)
        {
            return null;
        }
        var doc = binder.Bind<DenyListDocument>(root, "");
        if (doc.ApiVersion != GatewayConfiguration.ApiVersionValue)
        {
            binder.Error(Find(root, "apiVersion") ?? root, "apiVersion", $"\"{doc.ApiVersion}\" must be {GatewayConfiguration.ApiVersionValue}");
        }
        if (doc.Kind != KindValue)
        {
            binder.Error(Find(root, "kind") ?? root, "kind", $"\"{doc.Kind}\" must be {KindValue}");
        }
        var entryNodes = (Find(root, "entries") as YamlSequenceNode)?.Children;
        var entries = new List<DenyListEntry>();
        Span<char> buffer = stackalloc char[128];
        for (var i = 0; i < doc.Entries.Count; i++)
        {
            var e = doc.Entries[i];
            YamlNode node = entryNodes is not null && i < entryNodes.Count ? entryNodes[i] : root;
            var field = $"entries[{i}]";
            var selectors = new List<(string Name, string Value)>();
            void Add(string name, string value)
            {
                if (value.Length > 0)
                {
                    selectors.Add((name, value));
                }
            }
            Add("user", e.User);
            Add("group", e.Group);
            Add("serviceAccount", e.ServiceAccount);
            Add("tokenSHA256", e.TokenSHA256);
            Add("certificateSerial", e.CertificateSerial);
            Add("sourceCIDR", e.SourceCIDR);
            if (selectors.Count != 1)
            {
                binder.Error(node, field, selectors.Count == 0
                    ? "needs one of user, group, serviceAccount, tokenSHA256, certificateSerial or sourceCIDR"
                    : $"names {string.Join(" and ", selectors.Select(s => s.Name))}; use one entry per selector");
                continue;
            }
            if (e.Reason.Trim().Length == 0)
            {
                binder.Error(node, field + ".reason", "is required: say why (it is audited and shown in the 403)");
            }
            var (name, value) = selectors[0];
            Cidr cidr = default;
            switch (name)
            {
                case "serviceAccount":
                    var parts = value.Split('/');
                    if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
                    {
                        binder.Error(node, field + ".serviceAccount", $"\"{value}\" must be namespace/name");
                    }
                    break;
                case "tokenSHA256":
                    value = value.ToLowerInvariant();
                    if (value.Length != 64 || !value.All(char.IsAsciiHexDigit))
                    {
                        binder.Error(node, field + ".tokenSHA256", "must be 64 hex digits (sha256sum of the token)");
                    }
                    break;
                case "certificateSerial":
                    if (!CertificateSerials.IsValid(value))
                    {
                        binder.Error(node, field + ".certificateSerial", "must be hex, colons optional (openssl x509 -serial)");
                        break;
                    }
                    value = CertificateSerials.Normalize(value, buffer).ToString();
                    break;
                case "sourceCIDR":
                    if (!Cidr.TryParse(value, out cidr))
                    {
                        binder.Error(node, field + ".sourceCIDR", $"\"{value}\" is not a CIDR (10.0.0.0/8, 2001:db8::/32) or IP address");
                    }
                    break;
                default:
                    break;
            }
            entries.Add(new DenyListEntry
            {
                Selector = name,
                Value = value,
                Reason = e.Reason,
                Expires = e.Expires,
                Index = i,
                Source = $"{path}:{(int)node.Start.Line}",
                Cidr = cidr,
            });
        }
        return errors.Count == 0 ? new DenyList(entries) : null;
    }

    private static YamlNode? Find(YamlNode root, string key) =>
        root is YamlMappingNode map && map.Children.TryGetValue(new YamlScalarNode(key), out var v) ? v : null;

    /// <summary>The file's shape, bound by <see cref="YamlBinder"/>.</summary>
    public sealed class DenyListDocument
    {
        public string ApiVersion { get; set; } = "";
        public string Kind { get; set; } = "";
        public List<DenyListEntryDocument> Entries { get; set; } = [];
    }

    /// <summary>One entry as written.</summary>
    public sealed class DenyListEntryDocument
    {
        public string User { get; set; } = "";
        public string Group { get; set; } = "";
        public string ServiceAccount { get; set; } = "";
        public string TokenSHA256 { get; set; } = "";
        public string CertificateSerial { get; set; } = "";
        public string SourceCIDR { get; set; } = "";
        public string Reason { get; set; } = "";
        public DateTimeOffset? Expires { get; set; }
    }
}

/// <summary>
/// The deny-list layer: Deny with reason <c>deny list: &lt;reason&gt;</c> when an active entry matches, else NoOpinion.
/// <see cref="Update"/> swaps the list and raises <see cref="Changed"/> so the gateway can close open streams of newly
/// denied identities.
/// </summary>
public sealed class DenyListAuthorizer : IAuthorizer
{
    public const string AuthorizerName = "DenyList";

    private readonly TimeProvider _time;
    private DenyList _list;

    public DenyListAuthorizer(DenyList list, TimeProvider? timeProvider = null)
    {
        _list = list;
        _time = timeProvider ?? TimeProvider.System;
    }

    public string Name => AuthorizerName;

    public DenyList List => Volatile.Read(ref _list);

    /// <summary>Raised after <see cref="Update"/> with the new list.</summary>
    public event EventHandler<DenyList>? Changed;

    public void Update(DenyList list)
    {
        ArgumentNullException.ThrowIfNull(list);
        Volatile.Write(ref _list, list);
        Changed?.Invoke(this, list);
    }

    /// <summary>The matching entry for these attributes now, or null (for re-checking open streams).</summary>
    public DenyListEntry? Match(AuthorizationAttributes attributes)
    {
        ArgumentNullException.ThrowIfNull(attributes);
        return List.Matches(attributes.User, attributes.TokenSha256, attributes.CertificateSerial, attributes.SourceAddress, _time.GetUtcNow());
    }

    public ValueTask<AuthorizationResult> AuthorizeAsync(AuthorizationAttributes attributes, CancellationToken cancellationToken)
    {
        var entry = Match(attributes);
        return new(entry is null
            ? AuthorizationResult.NoOpinion(AuthorizerName)
            : new AuthorizationResult(AuthorizationDecision.Deny, "deny list: " + entry.Reason, null, AuthorizerName,
                AuthorizationResult.DenyListAnnotation, entry.Describe()));
    }
}
