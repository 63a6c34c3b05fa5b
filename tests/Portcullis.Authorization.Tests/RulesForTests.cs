using System.Net;
using Portcullis.Authentication;
using Portcullis.Authorization.DenyLists;
using Portcullis.Authorization.NetworkScopes;
using Portcullis.Authorization.Rbac;
using Portcullis.Authorization.Review;
using Portcullis.Configuration;
using Portcullis.Network;

namespace Portcullis.Authorization.Tests;

/// <summary>
/// <see cref="AuthorizerChain.RulesFor"/>, the rules <c>kubectl auth can-i --list</c> shows: kube-apiserver's union
/// RulesFor over the chain's layers, with the gateway's restricting layers in front.
/// </summary>
public sealed class RulesForTests
{
    private static readonly UserInfo Jane = UserInfo.Create("jane", ["developers", "system:authenticated"]);

    private static RbacPolicy Policy()
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("portcullis-rulesfor-").FullName, "rbac.yaml");
        File.WriteAllText(file, """
            apiVersion: rbac.authorization.k8s.io/v1
            kind: Role
            metadata: {name: developer, namespace: dev}
            rules:
            - {apiGroups: [""], resources: [pods], verbs: [get, list], resourceNames: [web-1]}
            - {nonResourceURLs: [/healthz], verbs: [get]}
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: RoleBinding
            metadata: {name: developers, namespace: dev}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: developer}
            subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: developers}]
            """);
        var loaded = RbacPolicy.Load([file]);
        return loaded.Policy ?? throw new InvalidOperationException(string.Join("\n", loaded.Errors));
    }

    private static string Show(SubjectRules r) =>
        string.Join(" ", r.ResourceRules.Select(x => $"R[{string.Join(",", x.Verbs)}|{string.Join(",", x.ApiGroups)}|{string.Join(",", x.Resources)}|{string.Join(",", x.ResourceNames)}]"))
        + " " + string.Join(" ", r.NonResourceRules.Select(x => $"N[{string.Join(",", x.Verbs)}|{string.Join(",", x.NonResourceUrls)}]"))
        + $" incomplete={r.Incomplete} error={r.EvaluationError} refusedBy={r.RefusedBy}";

    private static AuthorizationAttributes Identity(UserInfo user, string? source = null) =>
        new(user, RequestInfoParser.Resource("create", "authorization.k8s.io", "selfsubjectrulesreviews"), source is null ? null : IPAddress.Parse(source));

    [Fact]
    public void Rbac_lists_the_bindings_of_the_namespace_and_other_namespaces_have_none()
    {
        using var chain = new AuthorizerChain([new SystemMastersAuthorizer(), new RbacAuthorizer(Policy())]);

        Assert.Equal("R[get,list||pods|web-1] N[get|/healthz] incomplete=False error= refusedBy=", Show(chain.RulesFor(Identity(Jane), "dev")));
        Assert.Equal("  incomplete=False error= refusedBy=", Show(chain.RulesFor(Identity(Jane), "prod")));
    }

    [Fact]
    public void Masters_and_AlwaysAllow_may_do_everything_and_AlwaysDeny_adds_nothing()
    {
        using var masters = new AuthorizerChain([new SystemMastersAuthorizer(), new AlwaysDenyAuthorizer()]);
        using var allow = new AuthorizerChain([new SystemMastersAuthorizer(), new AlwaysAllowAuthorizer()]);

        Assert.Equal("R[*|*|*|] N[*|*] incomplete=False error= refusedBy=", Show(masters.RulesFor(Identity(UserInfo.Create("root", ["system:masters"])), "dev")));
        Assert.Equal("  incomplete=False error= refusedBy=", Show(masters.RulesFor(Identity(Jane), "dev")));
        Assert.Equal("R[*|*|*|] N[*|*] incomplete=False error= refusedBy=", Show(allow.RulesFor(Identity(Jane), "dev")));
    }

    [Fact]
    public void A_deny_listed_user_and_a_user_outside_its_network_scope_have_no_rules()
    {
        var deny = new DenyList([new DenyListEntry { Selector = "user", Value = "jane", Reason = "laptop stolen" }]);
        var scope = new NetworkScope("networkScopes[0]", [new SubjectReference { Kind = "Group", Name = "developers" }], CidrSet.Parse(["10.0.0.0/8"]));
        using var denied = new AuthorizerChain([new DenyListAuthorizer(deny), new SystemMastersAuthorizer(), new AlwaysAllowAuthorizer()]);
        using var scoped = new AuthorizerChain([new NetworkScopeAuthorizer([scope]), new SystemMastersAuthorizer(), new RbacAuthorizer(Policy())]);

        Assert.Equal("  incomplete=False error= refusedBy=DenyList", Show(denied.RulesFor(Identity(Jane), "dev")));
        Assert.Equal("  incomplete=False error= refusedBy=NetworkScope", Show(scoped.RulesFor(Identity(Jane, "192.0.2.1"), "dev")));
        Assert.Equal("  incomplete=False error= refusedBy=NetworkScope", Show(scoped.RulesFor(Identity(Jane), "dev"))); // unknown address: fail closed
        Assert.Equal("R[get,list||pods|web-1] N[get|/healthz] incomplete=False error= refusedBy=", Show(scoped.RulesFor(Identity(Jane, "10.1.2.3"), "dev")));
    }
}
