using System.CommandLine;
using System.Net;
using Portcullis.Cli.Firewall;

namespace Portcullis.Cli;

/// <summary>
/// <c>portcullis netpol --apiserver-ip IP… [--namespace NS]… [--gateway-namespace NS] [--port 443]</c>: prints the
/// Kubernetes NetworkPolicies that keep pods away from the API server except through the gateway
/// (<see cref="ApiServerNetworkPolicy"/>). Exit 0 with the YAML, 2 on a bad option.
/// </summary>
internal static class NetpolCommand
{
    public static Command Create()
    {
        var apiServerIp = new Option<string[]>("--apiserver-ip")
        {
            Description = "An API server address pods must not reach directly (repeatable: the kubernetes Service's ClusterIP and its endpoints)",
            Required = true,
        };
        var namespaces = new Option<string[]>("--namespace", "-n")
        {
            Description = "A namespace to write the deny policy for (repeatable); without it the deny policy has no namespace, a template for kubectl apply -n",
        };
        var gatewayNamespace = new Option<string>("--gateway-namespace") { Description = "The gateway's namespace, whose pods may reach the API server", DefaultValueFactory = _ => "portcullis" };
        var port = new Option<int>("--port") { Description = "The API server port the gateway connects to", DefaultValueFactory = _ => 443 };
        var command = new Command("netpol", "Print the NetworkPolicies that keep pods away from the API server except through the gateway.")
        {
            apiServerIp, namespaces, gatewayNamespace, port,
        };
        command.SetAction(parse =>
        {
            var addresses = new List<IPAddress>();
            foreach (var text in parse.GetValue(apiServerIp) ?? [])
            {
                if (!IPAddress.TryParse(text, out var address) || text.Contains('/', StringComparison.Ordinal))
                {
                    Console.Error.WriteLine($"portcullis: --apiserver-ip: \"{text}\" is not an IP address (10.96.0.1, fd00::1)");
                    return 2;
                }
                addresses.Add(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address);
            }
            var apiPort = parse.GetValue(port);
            if (apiPort is < 1 or > 65535)
            {
                Console.Error.WriteLine($"portcullis: --port: {apiPort} is not a TCP port (1-65535)");
                return 2;
            }
            var gatewayNs = parse.GetValue(gatewayNamespace)!;
            var targets = parse.GetValue(namespaces) is { Length: > 0 } list ? list.Select(n => (string?)n) : [null];
            foreach (var ns in targets.Append(gatewayNs))
            {
                if (ns is not null && !IsDnsLabel(ns))
                {
                    Console.Error.WriteLine($"portcullis: \"{ns}\" is not a namespace name (a DNS label: lowercase letters, digits, '-', at most 63)");
                    return 2;
                }
            }
            Console.Out.Write("# portcullis netpol: pods reach the API server only through the gateway.\n");
            Console.Out.Write(ApiServerNetworkPolicy.Yaml(
                targets.Select(ns => ApiServerNetworkPolicy.DenyApiServer(addresses, ns))
                    .Append(ApiServerNetworkPolicy.GatewayToApiServer(addresses, gatewayNs, apiPort))));
            return 0;
        });
        return command;
    }

    private static bool IsDnsLabel(string s) =>
        s.Length is > 0 and <= 63 && s.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-') && s[0] != '-' && s[^1] != '-';
}
