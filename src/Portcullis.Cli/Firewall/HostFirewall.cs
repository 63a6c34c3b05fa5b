using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Portcullis.Configuration;
using Portcullis.Network;

namespace Portcullis.Cli.Firewall;

/// <summary>One port the host rules guard: the address the gateway binds (any address: <c>null</c>) and its port.</summary>
internal sealed record GuardedPort(IPAddress? Address, bool V4, bool V6, int Port, string Field)
{
    public bool Covers(AddressFamily family) => family == AddressFamily.InterNetwork ? V4 : V6;
}

/// <summary>
/// Host firewall rules equivalent to <c>network.allow</c> / <c>network.deny</c> for the listener ports, in the order the
/// gateway decides: every deny entry first (deny wins over allow), then every allow entry, then a drop when the allow
/// list is not empty (an empty allow list allows every address). Allowed packets <em>return</em> to the caller's chain
/// rather than being accepted, so the host's own rules still apply after ours. The admin port is reachable from the
/// loopback interface and from <c>--admin-allow</c> CIDRs only: it carries <c>/bans</c> and <c>/metrics</c> and has no
/// CIDR filter of its own.
/// </summary>
internal sealed class HostFirewall
{
    public const string GatewayChain = "PORTCULLIS-INPUT";
    public const string AdminChain = "PORTCULLIS-ADMIN";
    public const string NftTable = "portcullis";

    private readonly IReadOnlyList<GuardedPort> _listeners;
    private readonly GuardedPort _admin;
    private readonly List<(Cidr Cidr, string Field)> _deny;
    private readonly List<(Cidr Cidr, string Field)> _allow;
    private readonly List<(Cidr Cidr, string Field)> _adminAllow;
    private readonly string _source;

    public HostFirewall(GatewayConfiguration config, IReadOnlyList<Cidr> adminAllow)
    {
        ArgumentNullException.ThrowIfNull(config);
        _source = config.SourcePath;
        var listeners = config.Listeners.Count == 0
            ? [Guard(ListenerConfiguration.DefaultAddress, "listeners (default)")]
            : config.Listeners.Select((l, i) => Guard(l.Address, $"listeners[{i}].address")).Distinct().ToList();
        _listeners = listeners;
        _admin = Guard(config.Admin.Address, "admin.address");
        _deny = Entries(config.Network.Deny, "network.deny");
        _allow = Entries(config.Network.Allow, "network.allow");
        _adminAllow = [.. adminAllow.Select(c => (c, "--admin-allow"))];
    }

    /// <summary>Listener and admin addresses whose port is 0 (chosen at start): no rule can name them.</summary>
    public IEnumerable<string> UnguardablePorts() =>
        _listeners.Append(_admin).Where(p => p.Port == 0).Select(p => p.Field);

    private static GuardedPort Guard(string address, string field)
    {
        if (!ConfigurationLoader.TryParseEndpoint(address, out var endpoint))
        {
            // The loader refuses such an address before the rules are written.
            throw new ArgumentException($"{field}: \"{address}\" is not host:port", nameof(address));
        }
        var ip = Cidr.Normalize(endpoint.Address);
        if (ip.Equals(IPAddress.Any))
        {
            return new GuardedPort(null, true, false, endpoint.Port, field);
        }
        if (ip.Equals(IPAddress.IPv6Any))
        {
            // Kestrel binds [::] dual-stack: IPv4 clients arrive on it too.
            return new GuardedPort(null, true, true, endpoint.Port, field);
        }
        var v4 = ip.AddressFamily == AddressFamily.InterNetwork;
        return new GuardedPort(ip, v4, !v4, endpoint.Port, field);
    }

    private static List<(Cidr Cidr, string Field)> Entries(List<string> entries, string field)
    {
        var result = new List<(Cidr Cidr, string Field)>();
        for (var i = 0; i < entries.Count; i++)
        {
            if (Cidr.TryParse(entries[i], out var cidr))
            {
                result.Add((cidr, $"{field}[{i}]"));
            }
        }
        return result;
    }

    /// <summary><c>iptables-restore</c> (IPv4) or <c>ip6tables-restore</c> (IPv6) input, to load with <c>--noflush</c>.</summary>
    public string IptablesRestore(AddressFamily family)
    {
        var tool = family == AddressFamily.InterNetwork ? "iptables" : "ip6tables";
        var host = family == AddressFamily.InterNetwork ? 32 : 128;
        var s = new StringBuilder();
        s.Append(CultureInfo.InvariantCulture, $"# portcullis firewall: {tool} rules for {_source}\n");
        s.Append(CultureInfo.InvariantCulture, $"# network.deny, then network.allow, on the listener ports; the admin port from loopback{(_adminAllow.Count > 0 ? " and --admin-allow" : "")} only.\n");
        s.Append(CultureInfo.InvariantCulture, $"# Apply: {tool}-restore --noflush < this-file   (keeps every other rule; re-applying refills the chains)\n");
        s.Append("*filter\n");
        s.Append(CultureInfo.InvariantCulture, $":{GatewayChain} - [0:0]\n");
        s.Append(CultureInfo.InvariantCulture, $":{AdminChain} - [0:0]\n");
        foreach (var (port, chain) in Jumps(family))
        {
            var destination = port.Address is null ? "" : $"-d {port.Address}/{host} ";
            s.Append(CultureInfo.InvariantCulture, $"-I INPUT {destination}-p tcp -m tcp --dport {port.Port} -m comment --comment \"portcullis {port.Field}\" -j {chain}\n");
        }
        foreach (var (cidr, field) in _deny.Where(e => e.Cidr.Network.AddressFamily == family))
        {
            s.Append(CultureInfo.InvariantCulture, $"-A {GatewayChain} -s {cidr} -m comment --comment \"{field}\" -j DROP\n");
        }
        foreach (var (cidr, field) in _allow.Where(e => e.Cidr.Network.AddressFamily == family))
        {
            s.Append(CultureInfo.InvariantCulture, $"-A {GatewayChain} -s {cidr} -m comment --comment \"{field}\" -j RETURN\n");
        }
        if (_allow.Count > 0)
        {
            s.Append(CultureInfo.InvariantCulture, $"-A {GatewayChain} -m comment --comment \"network.allow: not listed\" -j DROP\n");
        }
        s.Append(CultureInfo.InvariantCulture, $"-A {AdminChain} -i lo -j RETURN\n");
        foreach (var (cidr, field) in _adminAllow.Where(e => e.Cidr.Network.AddressFamily == family))
        {
            s.Append(CultureInfo.InvariantCulture, $"-A {AdminChain} -s {cidr} -m comment --comment \"{field}\" -j RETURN\n");
        }
        s.Append(CultureInfo.InvariantCulture, $"-A {AdminChain} -m comment --comment \"admin: not loopback\" -j DROP\n");
        s.Append("COMMIT\n");
        return s.ToString();
    }

    /// <summary>An <c>nft -f</c> file: table <c>inet portcullis</c>, both families, replaced whole on every load.</summary>
    public string Nftables()
    {
        var s = new StringBuilder();
        s.Append(CultureInfo.InvariantCulture, $"# portcullis firewall: nftables rules for {_source}\n");
        s.Append(CultureInfo.InvariantCulture, $"# network.deny, then network.allow, on the listener ports; the admin port from loopback{(_adminAllow.Count > 0 ? " and --admin-allow" : "")} only.\n");
        s.Append("# Apply: nft -f this-file   (replaces table inet portcullis only; other tables are untouched)\n");
        // Declaring the table before deleting it makes the delete succeed on a host that does not have it yet.
        s.Append(CultureInfo.InvariantCulture, $"table inet {NftTable}\ndelete table inet {NftTable}\n");
        s.Append(CultureInfo.InvariantCulture, $"table inet {NftTable} {{\n");
        s.Append("\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n");
        foreach (var (port, chain) in Jumps(AddressFamily.InterNetwork).Concat(Jumps(AddressFamily.InterNetworkV6)).Distinct())
        {
            var match = port.Address is { } a
                ? (a.AddressFamily == AddressFamily.InterNetwork ? $"ip daddr {a} " : $"ip6 daddr {a} ")
                : port.V6 ? "" : "meta nfproto ipv4 ";
            s.Append(CultureInfo.InvariantCulture, $"\t\t{match}tcp dport {port.Port} jump {(chain == GatewayChain ? "gateway" : "admin")} comment \"portcullis {port.Field}\"\n");
        }
        s.Append("\t}\n\tchain gateway {\n");
        foreach (var (cidr, field) in _deny)
        {
            s.Append(CultureInfo.InvariantCulture, $"\t\t{Nft(cidr)} saddr {cidr} drop comment \"{field}\"\n");
        }
        foreach (var (cidr, field) in _allow)
        {
            s.Append(CultureInfo.InvariantCulture, $"\t\t{Nft(cidr)} saddr {cidr} return comment \"{field}\"\n");
        }
        if (_allow.Count > 0)
        {
            s.Append("\t\tdrop comment \"network.allow: not listed\"\n");
        }
        s.Append("\t}\n\tchain admin {\n\t\tiifname \"lo\" return\n");
        foreach (var (cidr, field) in _adminAllow)
        {
            s.Append(CultureInfo.InvariantCulture, $"\t\t{Nft(cidr)} saddr {cidr} return comment \"{field}\"\n");
        }
        s.Append("\t\tdrop comment \"admin: not loopback\"\n\t}\n}\n");
        return s.ToString();
    }

    private static string Nft(Cidr cidr) => cidr.Network.AddressFamily == AddressFamily.InterNetwork ? "ip" : "ip6";

    private IEnumerable<(GuardedPort Port, string Chain)> Jumps(AddressFamily family) =>
        _listeners.Where(l => l.Covers(family)).Select(l => (l, GatewayChain))
            .Append((_admin, AdminChain)).Where(j => j.Item1.Covers(family));
}
