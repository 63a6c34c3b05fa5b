using CsCheck;
using Portcullis.Authentication;
using Portcullis.Authorization.Rbac;
using Portcullis.Configuration;

namespace Portcullis.Authorization.Tests;

/// <summary>The subject index decides exactly as kube-apiserver's scan of every binding, for random policies and requests.</summary>
public class RbacPropertyTests
{
    private static readonly Gen<string> Verb = Gen.OneOf("get", "list", "create", "*", "impersonate");
    private static readonly Gen<string> ApiGroup = Gen.OneOf("", "apps", "*");
    private static readonly Gen<string> Resource = Gen.OneOf("pods", "pods/log", "*/log", "*", "secrets", "deployments", "pods/*");
    private static readonly Gen<string> ResourceName = Gen.OneOf("a", "b");
    private static readonly Gen<string> Url = Gen.OneOf("/healthz", "/api/*", "*", "/apis", "/api**");
    private static readonly Gen<string> Namespace = Gen.OneOf("n0", "n1");
    private static readonly Gen<string> UserName = Gen.OneOf("u0", "u1", "u2", "system:serviceaccount:n0:sa", "system:serviceaccount:n1:sa", "*");
    private static readonly Gen<string> GroupName = Gen.OneOf("g0", "g1", "g2", "*");

    private static readonly Gen<PolicyRule> Rule = Gen.Select(Verb.Array[1, 2], ApiGroup.Array[0, 2], Resource.Array[0, 2], ResourceName.Array[0, 1], Url.Array[0, 1],
        (v, g, r, n, u) => new PolicyRule(v, g, r, n, u));

    private static readonly Gen<RbacSubject> Subject = Gen.OneOf(
        UserName.Select(n => new RbacSubject("User", n)),
        GroupName.Select(n => new RbacSubject("Group", n)),
        Gen.Select(Gen.OneOf("sa", "x"), Gen.OneOf("", "n0", "n1"), (n, ns) => new RbacSubject("ServiceAccount", n, ns)));

    private static readonly Gen<RbacBinding> Binding = Gen.Select(Gen.Bool, Namespace, Gen.OneOf("cr0", "cr1", "cr2", "missing", "r0"), Subject.Array[0, 3], Gen.Int[0, 1_000_000],
        (cluster, ns, role, subjects, id) => new RbacBinding
        {
            Kind = cluster ? "ClusterRoleBinding" : "RoleBinding",
            Name = "b" + id,
            Namespace = cluster ? "" : ns,
            RoleRefKind = cluster || role.StartsWith("cr", StringComparison.Ordinal) || role == "missing" ? "ClusterRole" : "Role",
            RoleRefName = role,
            Subjects = subjects,
        });

    private static readonly Gen<RbacPolicy> Policy = Gen.Select(Rule.Array[0, 3].Array[3], Rule.Array[0, 3].Array[2], Binding.Array[0, 12], (clusterRules, nsRules, bindings) =>
    {
        var roles = new List<RbacRole>();
        for (var i = 0; i < clusterRules.Length; i++)
        {
            roles.Add(new RbacRole { Kind = "ClusterRole", Name = "cr" + i, Rules = clusterRules[i] });
        }
        for (var i = 0; i < nsRules.Length; i++)
        {
            roles.Add(new RbacRole { Kind = "Role", Name = "r0", Namespace = "n" + i, Rules = nsRules[i] });
        }
        var unique = bindings.GroupBy(b => (b.Kind, b.Namespace, b.Name)).Select(g => g.First());
        return RbacPolicy.Build(roles, unique, new List<ConfigError>())!;
    });

    private static readonly Gen<UserInfo> User = Gen.Select(UserName, GroupName.Array[0, 3], (n, g) => UserInfo.Create(n, g));

    private static readonly Gen<RequestInfo> Request = Gen.OneOf(
        Gen.Select(Gen.OneOf("get", "list", "create", "delete"), Gen.OneOf("", "apps"), Gen.OneOf("pods", "secrets", "deployments"),
            Gen.OneOf("", "log", "status"), Gen.OneOf("", "n0", "n1"), Gen.OneOf("", "a", "b"),
            (verb, group, resource, sub, ns, name) => RequestInfoParser.Resource(verb, group, resource, sub, ns, name)),
        Gen.Select(Gen.OneOf("get", "post"), Gen.OneOf("/healthz", "/api", "/api/v1", "/apis", "/apis/apps", "/metrics"),
            (verb, path) => RequestInfoParser.NonResource(verb, path)));

    private static string[] Errors(string reason) =>
        [.. reason.Replace("RBAC: ", "", StringComparison.Ordinal).Trim('[', ']').Split(", ", StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal)];

    [Fact]
    public void Index_equals_linear_evaluation() =>
        Gen.Select(Policy, User, Request).Sample((policy, user, request) =>
        {
            var indexed = policy.Evaluate(user, request);
            var linear = policy.EvaluateLinear(user, request);
            Assert.Equal(linear.Allowed, indexed.Allowed);
            if (!linear.Allowed)
            {
                // the same errors; their order follows binding order, which kube-apiserver does not fix either
                Assert.Equal(Errors(linear.Reason), Errors(indexed.Reason));
            }
        }, iter: 10_000);
}
