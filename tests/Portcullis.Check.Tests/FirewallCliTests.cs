using System.Diagnostics;
using System.Text;
using k8s;
using k8s.Models;

namespace Portcullis.Check.Tests;

/// <summary>
/// <c>portcullis firewall</c> and <c>portcullis netpol</c> through the real CLI; the rules are checked by the real
/// <c>iptables-restore --test</c>, <c>ip6tables-restore --test</c> and <c>nft -c</c> (installed by .ci/run).
/// </summary>
public sealed class FirewallCliTests
{
    private const string Network = """

        network:
          allow: [10.0.0.0/8, "2001:db8::/32"]
          deny: [10.0.0.66, "2001:db8::bad/128"]
        """;

    private static string Config(string listeners, string network) =>
        GatewayChecksTests.WriteConfig(GatewayChecksTests.SecureBody.Replace("- address: 10.0.0.10:6443", listeners, StringComparison.Ordinal) + network);

    private static async Task<string> RulesAsync(string config, string format, params string[] extra)
    {
        var result = await PortcullisCli.RunAsync(["firewall", "--config", config, "--format", format, .. extra]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("", result.Stderr);
        return result.Stdout;
    }

    private static async Task<(int Code, string Output)> ToolAsync(string tool, params string[] args)
    {
        var info = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(PortcullisCli.Timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return (process.ExitCode, await stdout.WaitAsync(PortcullisCli.Timeout) + await stderr.WaitAsync(PortcullisCli.Timeout));
    }

    private static async Task AssertLoadsAsync(string tool, string rules, params string[] args)
    {
        if (tool != "nft")
        {
            // --test does not check that a jump's target chain exists: every target is built in or declared in the file.
            var declared = rules.Split('\n').Where(l => l.StartsWith(':')).Select(l => l[1..].Split(' ')[0]).ToHashSet();
            var targets = rules.Split('\n').Where(l => l.StartsWith('-')).Select(l => l.Split(' ')[^1]);
            Assert.All(targets, t => Assert.True(t is "DROP" or "RETURN" || declared.Contains(t), $"{t} is not declared"));
        }
        var file = TestFiles.Write(TestFiles.NewDirectory(), "rules", rules);
        var (code, output) = await ToolAsync(tool, [.. args, file]);
        Assert.True(code == 0, $"{tool} {string.Join(' ', args)} refused the rules ({code}): {output}\n{rules}");
    }

    /// <summary>The rules of <paramref name="chain"/> in order, as (source, target).</summary>
    private static List<(string Source, string Target)> Chain(string rules, string chain) =>
        [.. rules.Split('\n').Where(l => l.StartsWith($"-A {chain} ", StringComparison.Ordinal)).Select(l =>
        {
            var words = l.Split(' ');
            var s = Array.IndexOf(words, "-s");
            var i = Array.IndexOf(words, "-i");
            return (s > 0 ? words[s + 1] : i > 0 ? "iface:" + words[i + 1] : "any", words[^1]);
        })];

    [Fact]
    public async Task Iptables_ip6tables_and_nftables_rules_load_in_the_real_tools()
    {
        var config = Config("- address: 0.0.0.0:6443\n- address: \"[::]:7443\"\n- address: 10.0.0.10:8443", Network);

        await AssertLoadsAsync("iptables-restore", await RulesAsync(config, "iptables", "--admin-allow", "192.0.2.0/24"), "--test", "--noflush");
        await AssertLoadsAsync("ip6tables-restore", await RulesAsync(config, "ip6tables", "--admin-allow", "2001:db8:1::/48"), "--test", "--noflush");
        await AssertLoadsAsync("nft", await RulesAsync(config, "nftables", "--admin-allow", "192.0.2.0/24"), "-c", "-f");
    }

    [Fact]
    public async Task Deny_comes_before_allow_and_a_non_empty_allow_list_ends_in_a_drop()
    {
        var config = Config("- address: 0.0.0.0:6443\n- address: \"[::]:7443\"\n- address: 10.0.0.10:8443", Network);

        var v4 = await RulesAsync(config, "iptables");
        Assert.Equal(
            [("10.0.0.66/32", "DROP"), ("10.0.0.0/8", "RETURN"), ("any", "DROP")],
            Chain(v4, "PORTCULLIS-INPUT"));
        Assert.Equal([("iface:lo", "RETURN"), ("any", "DROP")], Chain(v4, "PORTCULLIS-ADMIN"));
        // Jumps for the listener ports only: 0.0.0.0 and [::] (dual-stack) by port, 10.0.0.10 by address and port; the admin port.
        var jumps = v4.Split('\n').Where(l => l.StartsWith("-I INPUT ", StringComparison.Ordinal)).ToList();
        Assert.Equal(4, jumps.Count);
        Assert.Contains(jumps, j => j.StartsWith("-I INPUT -p tcp -m tcp --dport 6443 ", StringComparison.Ordinal) && j.EndsWith("-j PORTCULLIS-INPUT", StringComparison.Ordinal));
        Assert.Contains(jumps, j => j.StartsWith("-I INPUT -p tcp -m tcp --dport 7443 ", StringComparison.Ordinal));
        Assert.Contains(jumps, j => j.StartsWith("-I INPUT -d 10.0.0.10/32 -p tcp -m tcp --dport 8443 ", StringComparison.Ordinal));
        Assert.Contains(jumps, j => j.StartsWith("-I INPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 9095 ", StringComparison.Ordinal) && j.EndsWith("-j PORTCULLIS-ADMIN", StringComparison.Ordinal));

        var v6 = await RulesAsync(config, "ip6tables");
        Assert.Equal(
            [("2001:db8::bad/128", "DROP"), ("2001:db8::/32", "RETURN"), ("any", "DROP")],
            Chain(v6, "PORTCULLIS-INPUT"));
        var jumps6 = v6.Split('\n').Where(l => l.StartsWith("-I INPUT ", StringComparison.Ordinal)).ToList();
        Assert.Equal(["7443"], jumps6.Select(j => j.Split(' ')[7]));

        var nft = (await RulesAsync(config, "nftables")).Split('\n').Select(l => l.Trim()).ToList();
        var gateway = nft.SkipWhile(l => l != "chain gateway {").Skip(1).TakeWhile(l => l != "}").ToList();
        Assert.Equal(
            ["ip saddr 10.0.0.66/32 drop", "ip6 saddr 2001:db8::bad/128 drop", "ip saddr 10.0.0.0/8 return", "ip6 saddr 2001:db8::/32 return", "drop"],
            gateway.Select(l => l.Split(" comment ")[0]));
        Assert.Contains("meta nfproto ipv4 tcp dport 6443 jump gateway", nft.Select(l => l.Split(" comment ")[0]));
        Assert.Contains("tcp dport 7443 jump gateway", nft.Select(l => l.Split(" comment ")[0]));
        Assert.Contains("ip daddr 10.0.0.10 tcp dport 8443 jump gateway", nft.Select(l => l.Split(" comment ")[0]));
    }

    [Fact]
    public async Task An_empty_allow_list_allows_every_source_but_the_denied()
    {
        var config = Config("- address: 0.0.0.0:6443", "\nnetwork:\n  deny: [192.0.2.7]\n");

        var v4 = await RulesAsync(config, "iptables");
        Assert.Equal([("192.0.2.7/32", "DROP")], Chain(v4, "PORTCULLIS-INPUT"));
        await AssertLoadsAsync("iptables-restore", v4, "--test", "--noflush");
        Assert.Empty(Chain(await RulesAsync(config, "ip6tables"), "PORTCULLIS-INPUT"));
        var nft = await RulesAsync(config, "nftables");
        var gateway = nft.Split('\n').Select(l => l.Trim()).SkipWhile(l => l != "chain gateway {").Skip(1).TakeWhile(l => l != "}").ToList();
        Assert.Equal(["ip saddr 192.0.2.7/32 drop"], gateway.Select(l => l.Split(" comment ")[0]));
        await AssertLoadsAsync("nft", nft, "-c", "-f");
    }

    [Fact]
    public async Task Default_listener_is_guarded_when_none_is_written()
    {
        var config = Config("", Network);

        var v4 = await RulesAsync(config, "iptables");

        Assert.Contains("-I INPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 6443 ", v4, StringComparison.Ordinal);
        await AssertLoadsAsync("iptables-restore", v4, "--test", "--noflush");
    }

    [Fact]
    public async Task A_bad_configuration_exits_2_with_the_errors_validate_prints()
    {
        var config = Config("- address: 0.0.0.0:6443", "\nnetwork:\n  allow: [10.0.0.0/8, not-a-cidr]\n");
        var lines = File.ReadAllLines(config);
        var line = Array.FindIndex(lines, l => l.Contains("not-a-cidr", StringComparison.Ordinal)) + 1;

        var result = await PortcullisCli.RunAsync("firewall", "--config", config, "--format", "nftables");
        var validate = await PortcullisCli.RunAsync("validate", "--config", config);

        Assert.Equal(2, result.ExitCode);
        Assert.Equal("", result.Stdout);
        Assert.Contains($"{config}:{line}: network.allow[1]", result.Stderr, StringComparison.Ordinal);
        Assert.Equal(validate.Stderr, result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);

        var badAdmin = await PortcullisCli.RunAsync("firewall", "--config", config, "--format", "iptables", "--admin-allow", "nope");
        Assert.Equal(2, badAdmin.ExitCode);
        Assert.Contains("--admin-allow: \"nope\"", badAdmin.Stderr, StringComparison.Ordinal);
        // A format System.CommandLine refuses is a parse error: its exit code (1) like every command's.
        var badFormat = await PortcullisCli.RunAsync("firewall", "--config", config, "--format", "pf");
        Assert.NotEqual(0, badFormat.ExitCode);
        Assert.DoesNotContain("*filter", badFormat.Stdout, StringComparison.Ordinal);
    }

    private static List<V1NetworkPolicy> Policies(string yaml) =>
        [.. yaml.Split("---\n").Where(d => d.Contains("kind:", StringComparison.Ordinal)).Select(d => KubernetesYaml.Deserialize<V1NetworkPolicy>(d, strict: true))];

    [Fact]
    public async Task Netpol_prints_NetworkPolicies_that_except_the_API_server_for_every_pod_but_the_gateway()
    {
        var result = await PortcullisCli.RunAsync("netpol", "--apiserver-ip", "10.96.0.1", "--apiserver-ip", "fd00::1",
            "--namespace", "team-a", "--namespace", "team-b", "--gateway-namespace", "gw", "--port", "6443");

        Assert.True(result.ExitCode == 0, result.ToString());
        var policies = Policies(result.Stdout);
        Assert.Equal(3, policies.Count);
        Assert.All(policies, p => Assert.Equal(("networking.k8s.io/v1", "NetworkPolicy"), (p.ApiVersion, p.Kind)));
        Assert.All(policies, p => Assert.Equal(["Egress"], p.Spec.PolicyTypes));
        Assert.All(policies, p => Assert.Empty(p.Spec.PodSelector.MatchLabels ?? new Dictionary<string, string>()));

        var deny = policies.Where(p => p.Metadata.Name == "portcullis-deny-apiserver-egress").ToList();
        Assert.Equal(["team-a", "team-b"], deny.Select(p => p.Metadata.NamespaceProperty));
        foreach (var p in deny)
        {
            var rule = Assert.Single(p.Spec.Egress);
            Assert.Null(rule.Ports);
            Assert.Equal(
                [("0.0.0.0/0", "10.96.0.1/32"), ("::/0", "fd00::1/128")],
                rule.To.Select(t => (t.IpBlock.Cidr, string.Join(",", t.IpBlock.Except))));
        }

        var gateway = Assert.Single(policies, p => p.Metadata.Name == "portcullis-gateway-to-apiserver");
        Assert.Equal("gw", gateway.Metadata.NamespaceProperty);
        var allow = Assert.Single(gateway.Spec.Egress);
        Assert.Equal(["10.96.0.1/32", "fd00::1/128"], allow.To.Select(t => t.IpBlock.Cidr));
        Assert.All(allow.To, t => Assert.Null(t.IpBlock.Except));
        var port = Assert.Single(allow.Ports);
        Assert.Equal(("TCP", "6443"), (port.Protocol, port.Port.Value));
    }

    [Fact]
    public async Task Netpol_without_namespaces_prints_a_template_and_refuses_bad_options()
    {
        var result = await PortcullisCli.RunAsync("netpol", "--apiserver-ip", "172.20.0.1");

        Assert.True(result.ExitCode == 0, result.ToString());
        var policies = Policies(result.Stdout);
        var template = Assert.Single(policies, p => p.Metadata.Name == "portcullis-deny-apiserver-egress");
        Assert.Null(template.Metadata.NamespaceProperty);
        var to = Assert.Single(template.Spec.Egress).To;
        Assert.Equal(["172.20.0.1/32"], to[0].IpBlock.Except);
        Assert.Null(to[1].IpBlock.Except); // all IPv6 egress stays allowed
        var gateway = Assert.Single(policies, p => p.Metadata.Name == "portcullis-gateway-to-apiserver");
        Assert.Equal(("portcullis", "443"), (gateway.Metadata.NamespaceProperty, Assert.Single(Assert.Single(gateway.Spec.Egress).Ports).Port.Value));

        string[][] refusals =
        [
            ["--apiserver-ip", "10.96.0.0/12"], ["--apiserver-ip", "api.example"], ["--apiserver-ip", "10.96.0.1", "--port", "0"],
            ["--apiserver-ip", "10.96.0.1", "--namespace", "Team_A"],
        ];
        foreach (var bad in refusals)
        {
            var refused = await PortcullisCli.RunAsync(["netpol", .. bad]);
            Assert.True(refused.ExitCode == 2, $"{string.Join(' ', bad)}: {refused}");
            Assert.Equal("", refused.Stdout);
        }
    }
}
