using System.Net;

namespace Portcullis.Network;

/// <summary>
/// The accept-time answer of <c>network.allow</c> and <c>network.deny</c> in one lookup: deny wins over allow, and an
/// empty allow list allows every address. Built once per configuration as the allowed address ranges (allow minus
/// deny), so <see cref="IsAllowed"/> is a single range search, allocation-free — the same answers as
/// <c>!deny.Contains(a) &amp;&amp; (allow.IsEmpty || allow.Contains(a))</c> with one search instead of two.
/// </summary>
public sealed class NetworkAccess
{
    private readonly CidrMatcher _allowed;

    public NetworkAccess(CidrSet allow, CidrSet deny)
    {
        ArgumentNullException.ThrowIfNull(allow);
        ArgumentNullException.ThrowIfNull(deny);
        Allow = allow;
        Deny = deny;
        _allowed = CidrMatcher.Difference(allow.IsEmpty ? null : allow.Matcher, deny.Matcher);
    }

    /// <summary>Every address allowed.</summary>
    public static NetworkAccess Open { get; } = new(CidrSet.Empty, CidrSet.Empty);

    public CidrSet Allow { get; }

    public CidrSet Deny { get; }

    public bool IsAllowed(IPAddress address) => _allowed.Contains(address);
}
