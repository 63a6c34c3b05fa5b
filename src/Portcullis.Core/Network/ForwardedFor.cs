using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Portcullis.Network;

/// <summary>
/// Who sent a request, as the gateway believes it. <see cref="Client"/> is the address every check uses (allow/deny,
/// bans, network scopes, the deny list's sourceCIDR, logs); <see cref="SourceIps"/> is the audit event's
/// <c>sourceIPs</c> in kube-apiserver's order: the believed part of the forwarded chain (client first), then the TCP
/// peer. <see cref="ViaProxy"/>: the client was named by a trusted proxy's header, not seen on the connection.
/// <see cref="Error"/> is set (and the request must be refused) when a trusted proxy's headers cannot be read.
/// </summary>
public sealed record ForwardedSource(IPAddress Client, IReadOnlyList<IPAddress> SourceIps, bool ViaProxy, string? Error = null)
{
    /// <summary>A request from <paramref name="peer"/> itself.</summary>
    public static ForwardedSource Direct(IPAddress peer) => new(peer, [peer], false);
}

/// <summary>
/// <c>network.trustedProxies</c>: reads <c>X-Forwarded-For</c> and RFC 7239 <c>Forwarded</c> only when the TCP peer is a
/// trusted proxy, and walks the chain from the right, as a careful proxy does: each address that is itself a trusted proxy
/// is skipped, and the first one that is not is the client. Entries to its left were written by the client (or by
/// proxies nobody vouches for) and are not believed, recorded or forwarded. All entries trusted: the leftmost is the client.
/// <para>
/// Failing closed: a trusted proxy's header that cannot be read up to the client — an entry that is not an IP address
/// (<c>unknown</c>, an obfuscated name, garbage) at or right of the client, a <c>Forwarded</c> header that breaks RFC 7239
/// syntax, or the two headers naming different clients (a proxy that appends one and passes the client's other through)
/// — is an <see cref="ForwardedSource.Error"/>: the request is refused, never attributed to the proxy, so that a banned or
/// denied client cannot escape its address by sending junk, and the proxy is never blamed for it.
/// </para>
/// </summary>
public static class ForwardedFor
{
    /// <summary>Resolves the client of a request from <paramref name="peer"/> (the TCP peer, after any PROXY protocol header).</summary>
    /// <param name="xForwardedFor">Every <c>X-Forwarded-For</c> field value, in order (empty: none).</param>
    /// <param name="forwarded">Every <c>Forwarded</c> field value, in order (empty: none).</param>
    public static ForwardedSource Resolve(IPAddress peer, CidrSet trustedProxies, IReadOnlyList<string> xForwardedFor, IReadOnlyList<string> forwarded)
    {
        ArgumentNullException.ThrowIfNull(peer);
        ArgumentNullException.ThrowIfNull(trustedProxies);
        ArgumentNullException.ThrowIfNull(xForwardedFor);
        ArgumentNullException.ThrowIfNull(forwarded);
        peer = Cidr.Normalize(peer);
        if (!trustedProxies.Contains(peer) || (xForwardedFor.Count == 0 && forwarded.Count == 0))
        {
            return ForwardedSource.Direct(peer);
        }
        List<IPAddress?>? xff = null;
        List<IPAddress?>? fwd = null;
        int xffClient = -1, fwdClient = -1;
        if (xForwardedFor.Count > 0)
        {
            xff = ParseXForwardedFor(xForwardedFor);
            if (!Walk(xff, trustedProxies, out xffClient))
            {
                return Refused(peer, "the X-Forwarded-For header of a trusted proxy has an entry that is not an IP address");
            }
        }
        if (forwarded.Count > 0)
        {
            fwd = ParseForwarded(forwarded);
            if (fwd is null)
            {
                return Refused(peer, "the Forwarded header of a trusted proxy is not valid RFC 7239 syntax");
            }
            if (!Walk(fwd, trustedProxies, out fwdClient))
            {
                return Refused(peer, "the Forwarded header of a trusted proxy has a for= that is not an IP address");
            }
        }
        if (xff is not null && fwd is not null && !xff[xffClient]!.Equals(fwd[fwdClient]))
        {
            return Refused(peer, "the X-Forwarded-For and Forwarded headers of a trusted proxy name different clients");
        }
        var (chain, from) = xff is not null ? (xff, xffClient) : (fwd!, fwdClient);
        var sources = new List<IPAddress>(chain.Count - from + 1);
        for (var i = from; i < chain.Count; i++)
        {
            sources.Add(chain[i]!);
        }
        if (!sources[^1].Equals(peer))
        {
            sources.Add(peer); // as kube-apiserver: the remote address last, unless the chain already ends with it
        }
        return new ForwardedSource(sources[0], sources, true);
    }

    private static ForwardedSource Refused(IPAddress peer, string error) => new(peer, [peer], false, error);

    // From the right: skip trusted proxies; the first untrusted address is the client; a non-address before it fails.
    private static bool Walk(List<IPAddress?> chain, CidrSet trusted, out int client)
    {
        client = -1;
        for (var i = chain.Count - 1; i >= 0; i--)
        {
            if (chain[i] is not { } address)
            {
                return false;
            }
            client = i;
            if (!trusted.Contains(address))
            {
                return true;
            }
        }
        return client >= 0;
    }

    /// <summary>The entries of every X-Forwarded-For value, comma-separated; null for an entry that is not an address.</summary>
    public static List<IPAddress?> ParseXForwardedFor(IReadOnlyList<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var entries = new List<IPAddress?>();
        foreach (var value in values)
        {
            foreach (var entry in value.Split(','))
            {
                entries.Add(ParseNode(entry.Trim(' ', '\t'), allowBareIPv6: true));
            }
        }
        return entries;
    }

    /// <summary>
    /// The <c>for=</c> node of each element of every Forwarded value (RFC 7239: elements separated by commas, pairs by
    /// semicolons, token or quoted-string values); an element without <c>for=</c>, or whose node is not an IP address,
    /// is null. Null (not a list) when the syntax is broken or an element names <c>for</c> twice.
    /// </summary>
    public static List<IPAddress?>? ParseForwarded(IReadOnlyList<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var entries = new List<IPAddress?>();
        foreach (var value in values)
        {
            var i = 0;
            var s = value;
            while (true)
            {
                // One element: pairs separated by ';'.
                string? forNode = null;
                var sawFor = false;
                var empty = true;
                while (true)
                {
                    SkipSpace(s, ref i);
                    if (i < s.Length && s[i] is ',' or ';')
                    {
                        // An empty pair or element (RFC 7230 list rules allow empty list elements).
                        if (s[i] == ',')
                        {
                            break;
                        }
                        i++;
                        continue;
                    }
                    if (i >= s.Length)
                    {
                        break;
                    }
                    var nameStart = i;
                    while (i < s.Length && IsTokenChar(s[i]))
                    {
                        i++;
                    }
                    if (i == nameStart || i >= s.Length || s[i] != '=')
                    {
                        return null;
                    }
                    var name = s[nameStart..i];
                    i++;
                    string pairValue;
                    if (i < s.Length && s[i] == '"')
                    {
                        var sb = new System.Text.StringBuilder();
                        i++;
                        var closed = false;
                        while (i < s.Length)
                        {
                            var c = s[i++];
                            if (c == '\\')
                            {
                                if (i >= s.Length)
                                {
                                    return null;
                                }
                                sb.Append(s[i++]);
                            }
                            else if (c == '"')
                            {
                                closed = true;
                                break;
                            }
                            else
                            {
                                sb.Append(c);
                            }
                        }
                        if (!closed)
                        {
                            return null;
                        }
                        pairValue = sb.ToString();
                    }
                    else
                    {
                        var valueStart = i;
                        while (i < s.Length && IsTokenChar(s[i]))
                        {
                            i++;
                        }
                        if (i == valueStart)
                        {
                            return null;
                        }
                        pairValue = s[valueStart..i];
                    }
                    empty = false;
                    if (name.Equals("for", StringComparison.OrdinalIgnoreCase))
                    {
                        if (sawFor)
                        {
                            return null;
                        }
                        sawFor = true;
                        forNode = pairValue;
                    }
                    SkipSpace(s, ref i);
                    if (i < s.Length && s[i] == ';')
                    {
                        i++;
                        continue;
                    }
                    if (i < s.Length && s[i] != ',')
                    {
                        return null;
                    }
                    break;
                }
                if (!empty)
                {
                    entries.Add(forNode is null ? null : ParseNode(forNode, allowBareIPv6: false));
                }
                if (i >= s.Length)
                {
                    break;
                }
                i++; // ','
            }
        }
        return entries;
    }

    private static void SkipSpace(string s, ref int i)
    {
        while (i < s.Length && s[i] is ' ' or '\t')
        {
            i++;
        }
    }

    // RFC 7230 tchar.
    private static bool IsTokenChar(char c) =>
        char.IsAsciiLetterOrDigit(c) || c is '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '.' or '^' or '_' or '`' or '|' or '~';

    /// <summary>
    /// An address as proxies write it: IPv4 (four decimal octets) with an optional <c>:port</c>, <c>[IPv6]</c> with an
    /// optional <c>:port</c>, or (X-Forwarded-For only) a bare IPv6 address. Null for anything else (<c>unknown</c>,
    /// <c>_obfuscated</c>, a name, a zone index).
    /// </summary>
    public static IPAddress? ParseNode(string node, bool allowBareIPv6)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node.StartsWith('['))
        {
            var close = node.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || (close + 1 < node.Length && !IsPort(node.AsSpan(close + 1))))
            {
                return null;
            }
            return V6(node[1..close]);
        }
        if (node.Contains(':', StringComparison.Ordinal) && node.IndexOf(':', StringComparison.Ordinal) == node.LastIndexOf(':'))
        {
            var colon = node.IndexOf(':', StringComparison.Ordinal);
            return IsPort(node.AsSpan(colon)) ? V4(node[..colon]) : null;
        }
        if (node.Contains(':', StringComparison.Ordinal))
        {
            return allowBareIPv6 ? V6(node) : null;
        }
        return V4(node);
    }

    private static bool IsPort(ReadOnlySpan<char> colonPort) =>
        colonPort.Length is >= 2 and <= 6 && colonPort[0] == ':' && colonPort[1..].ToString().All(char.IsAsciiDigit)
        && int.Parse(colonPort[1..], NumberStyles.None, CultureInfo.InvariantCulture) <= 65535;

    private static IPAddress? V4(string text)
    {
        var octets = text.Split('.');
        if (octets.Length != 4)
        {
            return null;
        }
        var bytes = new byte[4];
        for (var i = 0; i < 4; i++)
        {
            var o = octets[i];
            if (o.Length is 0 or > 3 || !o.All(char.IsAsciiDigit) || (o.Length > 1 && o[0] == '0'))
            {
                return null;
            }
            var v = int.Parse(o, NumberStyles.None, CultureInfo.InvariantCulture);
            if (v > 255)
            {
                return null;
            }
            bytes[i] = (byte)v;
        }
        return new IPAddress(bytes);
    }

    private static IPAddress? V6(string text)
    {
        if (text.Length == 0 || !text.All(c => char.IsAsciiHexDigit(c) || c is ':' or '.')
            || !IPAddress.TryParse(text, out var address) || address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return null;
        }
        return Cidr.Normalize(address);
    }
}
