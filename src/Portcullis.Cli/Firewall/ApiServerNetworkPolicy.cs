using System.Net;
using System.Net.Sockets;
using k8s;
using k8s.Models;

namespace Portcullis.Cli.Firewall;

/// <summary>
/// The NetworkPolicies that keep pods away from the API server except through the gateway. NetworkPolicies are
/// namespaced and additive: <see cref="DenyApiServer"/> selects every pod of a namespace and allows all egress except
/// to the API server addresses; <see cref="GatewayToApiServer"/> in the gateway's namespace adds egress to them on the
/// API port, which the union of the two lets through for the gateway only.
/// </summary>
internal static class ApiServerNetworkPolicy
{
    public const string DenyName = "portcullis-deny-apiserver-egress";
    public const string GatewayName = "portcullis-gateway-to-apiserver";

    /// <summary>All egress except to <paramref name="apiServers"/>; no namespace when <paramref name="ns"/> is null (a template for <c>kubectl apply -n</c>).</summary>
    public static V1NetworkPolicy DenyApiServer(IReadOnlyList<IPAddress> apiServers, string? ns)
    {
        ArgumentNullException.ThrowIfNull(apiServers);
        V1NetworkPolicyPeer Everything(AddressFamily family, string cidr)
        {
            var except = apiServers.Where(a => a.AddressFamily == family).Select(Host).ToList();
            return new V1NetworkPolicyPeer { IpBlock = new V1IPBlock { Cidr = cidr, Except = except.Count > 0 ? except : null } };
        }
        return new V1NetworkPolicy
        {
            ApiVersion = "networking.k8s.io/v1",
            Kind = "NetworkPolicy",
            Metadata = Metadata(DenyName, ns),
            Spec = new V1NetworkPolicySpec
            {
                PodSelector = new V1LabelSelector(),
                PolicyTypes = ["Egress"],
                Egress =
                [
                    new V1NetworkPolicyEgressRule
                    {
                        To = [Everything(AddressFamily.InterNetwork, "0.0.0.0/0"), Everything(AddressFamily.InterNetworkV6, "::/0")],
                    },
                ],
            },
        };
    }

    /// <summary>Egress from every pod of the gateway's namespace to the API server addresses on TCP <paramref name="port"/>.</summary>
    public static V1NetworkPolicy GatewayToApiServer(IReadOnlyList<IPAddress> apiServers, string ns, int port)
    {
        ArgumentNullException.ThrowIfNull(apiServers);
        return new V1NetworkPolicy
        {
            ApiVersion = "networking.k8s.io/v1",
            Kind = "NetworkPolicy",
            Metadata = Metadata(GatewayName, ns),
            Spec = new V1NetworkPolicySpec
            {
                PodSelector = new V1LabelSelector(),
                PolicyTypes = ["Egress"],
                Egress =
                [
                    new V1NetworkPolicyEgressRule
                    {
                        To = [.. apiServers.Select(a => new V1NetworkPolicyPeer { IpBlock = new V1IPBlock { Cidr = Host(a) } })],
                        Ports = [new V1NetworkPolicyPort { Protocol = "TCP", Port = port.ToString(System.Globalization.CultureInfo.InvariantCulture) }],
                    },
                ],
            },
        };
    }

    private static V1ObjectMeta Metadata(string name, string? ns) => new()
    {
        Name = name,
        NamespaceProperty = ns,
        Labels = new Dictionary<string, string> { ["app.kubernetes.io/managed-by"] = "portcullis" },
    };

    private static string Host(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetwork ? $"{address}/32" : $"{address}/128";

    /// <summary>The documents as one YAML stream, each after <c>---</c>.</summary>
    public static string Yaml(IEnumerable<V1NetworkPolicy> policies) =>
        string.Concat(policies.Select(p => "---\n" + KubernetesYaml.Serialize(p).TrimEnd() + "\n"));
}
