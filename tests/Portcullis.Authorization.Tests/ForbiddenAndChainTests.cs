using System.Net;
using Portcullis.Authentication;
using Portcullis.Http;

namespace Portcullis.Authorization.Tests;

public class ForbiddenTests
{
    [Fact]
    public void Namespaced_list_body_is_byte_exact() =>
        Assert.Equal(
            """{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods is forbidden: User \"x\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"","reason":"Forbidden","details":{"kind":"pods"},"code":403}""",
            Status.ToText(Forbidden.Body("x", RequestInfoParser.Parse("GET", "/api/v1/namespaces/default/pods", ""), "")));

    [Fact]
    public void Named_subresource_body_is_byte_exact() =>
        Assert.Equal(
            """{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps \"d1\" is forbidden: User \"x\" cannot get resource \"deployments/scale\" in API group \"apps\" in the namespace \"ns1\"","reason":"Forbidden","details":{"name":"d1","group":"apps","kind":"deployments"},"code":403}""",
            Status.ToText(Forbidden.Body("x", RequestInfoParser.Parse("GET", "/apis/apps/v1/namespaces/ns1/deployments/d1/scale", ""), "")));

    [Fact]
    public void Non_resource_body_is_byte_exact() =>
        Assert.Equal(
            """{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"system:anonymous\" cannot get path \"/metrics\"","reason":"Forbidden","details":{},"code":403}""",
            Status.ToText(Forbidden.Body("system:anonymous", RequestInfoParser.Parse("GET", "/metrics", ""), "")));

    [Fact]
    public void Cluster_scope_message() =>
        Assert.Equal("nodes is forbidden: User \"x\" cannot list resource \"nodes\" in API group \"\" at the cluster scope",
            Forbidden.Message("x", RequestInfoParser.Parse("GET", "/api/v1/nodes", ""), ""));

    [Fact]
    public void Reason_is_appended_and_only_the_msg_part_is_html_escaped() =>
        Assert.Equal("forbidden: User \"a&amp;b&lt;c&gt;\" cannot get path \"/metrics\": deny list: <stolen> & gone",
            Forbidden.Message("a&b<c>", RequestInfoParser.Parse("GET", "/metrics", ""), "deny list: <stolen> & gone"));

    [Fact]
    public void Names_are_go_quoted() =>
        Assert.Equal("pods \"a\\\"b\" is forbidden: User \"tab\\there\" cannot get resource \"pods\" in API group \"\" in the namespace \"n\"",
            Forbidden.Message("tab\there", RequestInfoParser.Resource("get", "", "pods", ns: "n", name: "a\"b"), ""));

    [Fact]
    public void Impersonation_denial_message() =>
        Assert.Equal("users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
            Forbidden.Message("alice", RequestInfoParser.Resource("impersonate", "", "users", name: "bob"), ""));
}

public class AuthorizerChainTests
{
    private static readonly AuthorizationAttributes Jane = new(UserInfo.Create("jane", ["dev"]), RequestInfoParser.Parse("GET", "/api/v1/namespaces/ns1/pods", ""));

    private sealed class Fixed(AuthorizationResult result, bool async = false) : IAuthorizer
    {
        public int Calls { get; private set; }
        public string Name => result.Authorizer;

        public ValueTask<AuthorizationResult> AuthorizeAsync(AuthorizationAttributes attributes, CancellationToken cancellationToken)
        {
            Calls++;
            return async ? new(Task.Run(() => result, cancellationToken)) : new(result);
        }
    }

    [Fact]
    public async Task First_allow_or_deny_wins()
    {
        var later = new Fixed(AuthorizationResult.Allowed("b"));
        var chain = new AuthorizerChain([new Fixed(AuthorizationResult.NoOpinion("a", "ra")), new Fixed(AuthorizationResult.Denied("d", "no")), later]);
        var r = await chain.AuthorizeAsync(Jane, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(AuthorizationDecision.Deny, r.Decision);
        Assert.Equal("no", r.Reason);
        Assert.Equal("d", r.Authorizer);
        Assert.Equal(0, later.Calls);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task All_no_opinion_joins_reasons_and_errors(bool async)
    {
        var chain = new AuthorizerChain([
            new Fixed(AuthorizationResult.NoOpinion("a", "first"), async),
            new Fixed(AuthorizationResult.NoOpinion("b", "")),
            new Fixed(new AuthorizationResult(AuthorizationDecision.NoOpinion, "second", "boom", "c"), async),
            new Fixed(new AuthorizationResult(AuthorizationDecision.NoOpinion, "", "bang", "d")),
        ]);
        var r = await chain.AuthorizeAsync(Jane, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(AuthorizationDecision.NoOpinion, r.Decision);
        Assert.Equal("first\nsecond", r.Reason);
        Assert.Equal("[boom, bang]", r.Error);
        Assert.True(r.IsInternalError);
        Assert.Equal("Internal Server Error: \"/api/v1/namespaces/ns1/pods\": [boom, bang]", AuthorizerChain.InternalErrorMessage("/api/v1/namespaces/ns1/pods", r.Error!));
    }

    [Fact]
    public async Task Allow_with_error_still_allows()
    {
        var chain = new AuthorizerChain([new Fixed(new AuthorizationResult(AuthorizationDecision.Allow, "ok", "partial", "w"))]);
        var r = await chain.AuthorizeAsync(Jane, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(r.IsAllowed);
        Assert.False(r.IsInternalError);
    }

    [Fact]
    public async Task Always_deny_mode_says_everything_is_forbidden()
    {
        using var chain = AuthorizerChain.Create(BootstrapDecisionTable.Configuration("AlwaysDeny"));
        var r = await chain.AuthorizeAsync(Jane, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(AuthorizationDecision.NoOpinion, r.Decision);
        Assert.Equal("Everything is forbidden.", r.Reason);
        Assert.Equal("pods is forbidden: User \"jane\" cannot list resource \"pods\" in API group \"\" in the namespace \"ns1\": Everything is forbidden.",
            Forbidden.Message("jane", Jane.Request, r.Reason));
    }

    [Fact]
    public async Task Modes_run_in_order_after_system_masters()
    {
        using var chain = AuthorizerChain.Create(BootstrapDecisionTable.Configuration("AlwaysDeny", "RBAC", "AlwaysAllow"));
        Assert.Equal(["system:masters", "AlwaysDeny", "RBAC", "AlwaysAllow"], chain.Authorizers.Select(a => a.Name));
        var r = await chain.AuthorizeAsync(Jane, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("AlwaysAllow", r.Authorizer);
        var masters = await chain.AuthorizeAsync(Jane with { User = UserInfo.Create("root", [UserInfo.MastersGroup]) }, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("system:masters", masters.Authorizer);
    }

    [Fact]
    public async Task Audit_annotations_carry_decision_reason_and_layer()
    {
        using var chain = AuthorizerChain.Create(BootstrapDecisionTable.Configuration());
        var vera = new AuthorizationAttributes(UserInfo.Create("vera", [UserInfo.AuthenticatedGroup]), RequestInfoParser.Parse("GET", "/api/v1/namespaces/team-a/pods", ""), IPAddress.Loopback);
        var r = await chain.AuthorizeAsync(vera, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        var annotations = r.AuditAnnotations().ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal("allow", annotations["authorization.k8s.io/decision"]);
        Assert.Equal("RBAC: allowed by RoleBinding \"viewers/team-a\" of ClusterRole \"view\" to User \"vera\"", annotations["authorization.k8s.io/reason"]);
        Assert.Equal("RBAC", annotations["portcullis.dev/authorizer"]);
    }

    // The RBAC path is synchronous: the ValueTask is already completed, so reading it does not block.
    private static AuthorizationResult Completed(ValueTask<AuthorizationResult> pending)
    {
        Assert.True(pending.IsCompletedSuccessfully);
#pragma warning disable CA2012
        return pending.Result;
#pragma warning restore CA2012
    }

    [Fact]
    public void Rbac_hot_path_does_not_allocate()
    {
        using var chain = AuthorizerChain.Create(BootstrapDecisionTable.Configuration());
        var vera = new AuthorizationAttributes(UserInfo.Create("vera", [UserInfo.AuthenticatedGroup]), RequestInfoParser.Parse("GET", "/api/v1/namespaces/team-a/pods", ""));
        var denied = vera with { Request = RequestInfoParser.Parse("GET", "/api/v1/namespaces/team-a/secrets", "") };
        for (var i = 0; i < 100; i++)
        {
            _ = Completed(chain.AuthorizeAsync(vera, CancellationToken.None));
            _ = Completed(chain.AuthorizeAsync(denied, CancellationToken.None));
        }
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            _ = Completed(chain.AuthorizeAsync(vera, CancellationToken.None));
            _ = Completed(chain.AuthorizeAsync(denied, CancellationToken.None));
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Bad_rbac_manifest_errors_name_file_and_line()
    {
        var dir = Directory.CreateTempSubdirectory("portcullis-rbac-");
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "bad.yaml"), """
                apiVersion: rbac.authorization.k8s.io/v1
                kind: ClusterRole
                metadata: {name: ok}
                rules: []
                ---
                apiVersion: rbac.authorization.k8s.io/v1beta1
                kind: ClusterRole
                metadata: {name: old}
                ---
                apiVersion: rbac.authorization.k8s.io/v1
                kind: RoleBinding
                metadata: {name: nons}
                roleRef: {kind: ClusterRole, name: ok}
                """);
            var config = BootstrapDecisionTable.Configuration();
            config.BaseDirectory = dir.FullName;
            config.Authorization.Rbac.Manifests = ["."];
            var (chain, errors) = AuthorizerChain.TryCreate(config);
            Assert.Null(chain);
            Assert.Contains(errors, e => e.File.EndsWith("bad.yaml", StringComparison.Ordinal) && e.Line == 6 && e.Field == "apiVersion");
            Assert.Contains(errors, e => e.Line == 12 && e.Field == "metadata.namespace");
        }
        finally
        {
            dir.Delete(true);
        }
    }
}
