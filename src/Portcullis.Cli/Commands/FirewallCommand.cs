using System.CommandLine;
using System.Net.Sockets;
using Portcullis.Cli.Firewall;
using Portcullis.Gateway.Snapshots;
using Portcullis.Network;

namespace Portcullis.Cli;

/// <summary>
/// <c>portcullis firewall --config FILE --format iptables|ip6tables|nftables [--admin-allow CIDR]…</c>: prints host
/// rules equivalent to <c>network.allow</c> / <c>network.deny</c> for the listener ports, and loopback-only access to the
/// admin port (<see cref="HostFirewall"/>). The configuration is loaded as <c>validate</c> loads it
/// (<see cref="GatewayConfigurationPipeline.Load"/>): exit 0 with the rules, 2 with the same errors when it is invalid.
/// </summary>
internal static class FirewallCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "The GatewayConfiguration file", Required = true };
        var format = new Option<string>("--format", "-f")
        {
            Description = "iptables (iptables-restore, IPv4), ip6tables (ip6tables-restore, IPv6) or nftables (table inet portcullis, both)",
            Required = true,
        };
        format.AcceptOnlyFromAmong("iptables", "ip6tables", "nftables");
        var adminAllow = new Option<string[]>("--admin-allow")
        {
            Description = "A CIDR that may reach the admin port besides loopback (repeatable), e.g. the Prometheus scraper",
            AllowMultipleArgumentsPerToken = false,
        };
        var command = new Command("firewall", "Print host firewall rules equivalent to network.allow/deny for the listener ports; the admin port from loopback only.")
        {
            config, format, adminAllow,
        };
        command.SetAction(parse =>
        {
            var cidrs = new List<Cidr>();
            foreach (var text in parse.GetValue(adminAllow) ?? [])
            {
                if (!Cidr.TryParse(text, out var cidr))
                {
                    Console.Error.WriteLine($"portcullis: --admin-allow: \"{text}\" is not an address or CIDR (10.0.0.0/8, 2001:db8::/32)");
                    return 2;
                }
                cidrs.Add(cidr);
            }
            var path = parse.GetValue(config)!.FullName;
            using var load = GatewayConfigurationPipeline.Load(path);
            if (!load.IsValid)
            {
                ServeCommand.ReportErrors(path, load.Errors);
                return 2;
            }
            var rules = new HostFirewall(load.Configuration!, cidrs);
            var unguardable = rules.UnguardablePorts().ToList();
            if (unguardable.Count > 0)
            {
                Console.Error.WriteLine($"portcullis: {path}: {string.Join(", ", unguardable)}: port 0 is chosen when the gateway starts; no firewall rule can name it");
                return 2;
            }
            Console.Out.Write(parse.GetValue(format) switch
            {
                "iptables" => rules.IptablesRestore(AddressFamily.InterNetwork),
                "ip6tables" => rules.IptablesRestore(AddressFamily.InterNetworkV6),
                _ => rules.Nftables(),
            });
            return 0;
        });
        return command;
    }
}
