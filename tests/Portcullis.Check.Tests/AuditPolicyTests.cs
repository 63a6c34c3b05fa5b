using Portcullis.Audit;
using Portcullis.Authentication;
using Portcullis.Authorization;
using Portcullis.Configuration;

namespace Portcullis.Check.Tests;

/// <summary>
/// check scores audit policies with the gateway's own loader and model (Portcullis.Audit); these pin the matching
/// semantics the scoring relies on, through the same API the scoring calls.
/// </summary>
public sealed class AuditPolicyTests
{
    private static AuditPolicy Parse(string text)
    {
        var errors = new List<ConfigError>();
        var policy = AuditPolicyLoader.TryParse(text, "policy.yaml", errors);
        Assert.True(errors.Count == 0, string.Join("; ", errors));
        return policy!;
    }

    private static readonly string[] Authenticated = ["system:authenticated"];

    /// <summary>The policy's level and 1-based rule number for a request (0: no rule matched).</summary>
    private static (AuditLevel Level, int RuleIndex) Evaluate(AuditPolicy policy, string user, string[] groups, string verb,
        string group = "", string resource = "", string subresource = "", string ns = "", string name = "", string? path = null)
    {
        var request = path is null
            ? new RequestInfo { IsResourceRequest = true, Verb = verb, ApiGroup = group, Resource = resource, Subresource = subresource, Namespace = ns, Name = name }
            : new RequestInfo { Verb = verb, Path = path };
        var decision = policy.Evaluate(UserInfo.Create(user, groups), request);
        return (decision.Level, decision.RuleIndex + 1);
    }

    [Fact]
    public void First_matching_rule_wins_and_no_match_is_None()
    {
        var policy = Parse("""
            apiVersion: audit.k8s.io/v1
            kind: Policy
            rules:
            - level: None
              users: ["system:kube-proxy"]
            - level: Metadata
              resources: [{group: "", resources: [secrets]}]
            - level: RequestResponse
              resources: [{group: ""}]
            """);
        Assert.Equal((AuditLevel.None, 1), Evaluate(policy, "system:kube-proxy", Authenticated, "get", "", "secrets"));
        Assert.Equal((AuditLevel.Metadata, 2), Evaluate(policy, "alice", Authenticated, "get", "", "secrets"));
        Assert.Equal((AuditLevel.RequestResponse, 3), Evaluate(policy, "alice", Authenticated, "get", "", "pods"));
        Assert.Equal((AuditLevel.None, 0), Evaluate(policy, "alice", Authenticated, "get", "apps", "deployments"));
        Assert.Equal((AuditLevel.None, 0), Evaluate(policy, "alice", Authenticated, "get", path: "/version"));
    }

    [Fact]
    public void Subresource_forms_match_as_kube_apiserver_does()
    {
        var policy = Parse("""
            apiVersion: audit.k8s.io/v1
            kind: Policy
            rules:
            - level: Request
              resources: [{group: "", resources: ["pods/exec"]}]
            - level: Metadata
              resources: [{group: "", resources: ["*/status"]}]
            - level: RequestResponse
              resources: [{group: "", resources: ["nodes/*"]}]
            - level: None
              resources: [{group: "", resources: ["pods"]}]
            - level: Metadata
              nonResourceURLs: ["/healthz*"]
            """);
        Assert.Equal(AuditLevel.Request, Evaluate(policy, "a", Authenticated, "create", "", "pods", "exec").Level);
        Assert.Equal(AuditLevel.Metadata, Evaluate(policy, "a", Authenticated, "update", "", "pods", "status").Level);
        Assert.Equal(AuditLevel.RequestResponse, Evaluate(policy, "a", Authenticated, "get", "", "nodes", "proxy").Level);
        // "nodes/*" matches on the resource part alone, so nodes itself too (kube-apiserver's policy checker:
        // HasSuffix(res, "/*") && resource == TrimRight(res, "/*")); "pods" is not pods/log.
        Assert.Equal(3, Evaluate(policy, "a", Authenticated, "get", "", "nodes").RuleIndex);
        Assert.Equal(0, Evaluate(policy, "a", Authenticated, "get", "", "pods", "log").RuleIndex);
        Assert.Equal(AuditLevel.Metadata, Evaluate(policy, "a", Authenticated, "get", path: "/healthz/etcd").Level);
        Assert.Equal(0, Evaluate(policy, "a", Authenticated, "get", path: "/api").RuleIndex);
    }

    [Fact]
    public void Namespaces_and_resource_names_narrow_a_rule()
    {
        var policy = Parse("""
            apiVersion: audit.k8s.io/v1
            kind: Policy
            rules:
            - level: Request
              namespaces: [kube-system]
              resources: [{group: "", resources: [configmaps], resourceNames: [controller-leader]}]
            - level: Metadata
            """);
        Assert.Equal(AuditLevel.Request, Evaluate(policy, "a", Authenticated, "update", "", "configmaps", "", "kube-system", "controller-leader").Level);
        Assert.Equal(AuditLevel.Metadata, Evaluate(policy, "a", Authenticated, "update", "", "configmaps", "", "default", "controller-leader").Level);
        Assert.Equal(AuditLevel.Metadata, Evaluate(policy, "a", Authenticated, "update", "", "configmaps", "", "kube-system", "other").Level);
    }

    private static List<Finding> Score(string policyText)
    {
        var dir = TestFiles.NewDirectory();
        var path = TestFiles.Write(dir, "policy.yaml", policyText);
        return ConfigurationCheck.FromFlags($"kube-apiserver --audit-policy-file={path}", null).Findings.Where(f => f.Layer == CheckLayer.Audit).ToList();
    }

    private static CheckStatus StatusOf(List<Finding> findings, string id) => Assert.Single(findings, f => f.Id == id).Status;

    [Fact]
    public void Secrets_at_RequestResponse_leak_and_fail()
    {
        var findings = Score("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n");
        Assert.Equal(CheckStatus.Fail, StatusOf(findings, "PC-L6-AUDIT-SECRETS"));
        Assert.Equal(CheckStatus.Fail, StatusOf(findings, "PC-L6-AUDIT-TOKENREVIEWS"));
        Assert.Equal(CheckStatus.Warn, StatusOf(findings, "PC-L6-AUDIT-CONFIGMAPS"));
        Assert.Equal(CheckStatus.Pass, StatusOf(findings, "PC-L6-AUDIT-NOT-NONE"));
        Assert.Equal(CheckStatus.Fail, StatusOf(findings, "3.2.2"));
        Assert.Contains("request/response bodies", Assert.Single(findings, f => f.Id == "PC-L6-AUDIT-SECRETS").Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public void Everything_None_fails()
    {
        var findings = Score("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n");
        Assert.Equal(CheckStatus.Fail, StatusOf(findings, "PC-L6-AUDIT-NOT-NONE"));
        Assert.Equal(CheckStatus.Warn, StatusOf(findings, "PC-L6-AUDIT-SECRETS"));
        Assert.Equal(CheckStatus.Fail, StatusOf(findings, "3.2.2"));
    }

    [Fact]
    public void A_later_metadata_rule_for_secrets_does_not_save_an_earlier_catch_all()
    {
        var findings = Score("""
            apiVersion: audit.k8s.io/v1
            kind: Policy
            rules:
            - level: Request
              verbs: [get, list, watch]
            - level: Metadata
              resources: [{group: "", resources: [secrets]}]
            - level: Metadata
            """);
        Assert.Equal(CheckStatus.Fail, StatusOf(findings, "PC-L6-AUDIT-SECRETS"));
    }

    [Fact]
    public void Hand_made_policy_covers_every_concern()
    {
        var findings = Score(HandMade.AuditPolicy).Where(f => f.Id.StartsWith("PC-L6-AUDIT", StringComparison.Ordinal) || f.Id.StartsWith("3.2", StringComparison.Ordinal)).ToList();
        Assert.Equal(10, findings.Count);
        Assert.All(findings, f => Assert.Equal(CheckStatus.Pass, f.Status));
    }

    [Theory]
    [InlineData("audit/gce-configure-helper-audit-policy.yaml", CheckStatus.Pass)]
    [InlineData("audit/k8s-website-audit-policy.yaml", CheckStatus.Warn)]   // configmaps in kube-system at Request
    [InlineData("audit/falco-k8saudit-audit-policy.yaml", CheckStatus.Warn)] // configmaps at RequestResponse
    public void Published_policies_are_scored(string fixture, CheckStatus coverage)
    {
        var findings = Score(File.ReadAllText(TestFiles.Fixture(fixture)));
        Assert.Equal(CheckStatus.Pass, StatusOf(findings, "PC-L6-AUDIT-POLICY"));
        Assert.Equal(CheckStatus.Pass, StatusOf(findings, "PC-L6-AUDIT-SECRETS"));
        Assert.Equal(CheckStatus.Pass, StatusOf(findings, "PC-L6-AUDIT-TOKENREVIEWS"));
        Assert.Equal(coverage, StatusOf(findings, "3.2.2"));
    }
}
