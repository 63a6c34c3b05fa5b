using Portcullis.Authentication;
using Portcullis.Configuration;
using YamlDotNet.RepresentationModel;
using static Portcullis.Audit.Tests.TestSupport;

namespace Portcullis.Audit.Tests;

public sealed class PolicyMatchingTests
{
    private const AuditStages RR = AuditStages.RequestReceived;
    private const AuditStages None = AuditStages.None;

    private static readonly Dictionary<string, UserInfo?> Users = new()
    {
        ["alice"] = User("alice"),
        ["carol"] = User("carol"),
        ["kube-proxy"] = User("system:kube-proxy"),
        ["node"] = User("system:node:n1", "system:nodes"),
        ["kubelet"] = User("kubelet"),
        ["ns-controller"] = User("system:serviceaccount:kube-system:namespace-controller", "system:serviceaccounts"),
        ["kcm"] = User("system:kube-controller-manager"),
        ["scheduler"] = User("system:kube-scheduler"),
        ["apiserver"] = User("system:apiserver", "system:masters"),
        ["anonymous"] = UserInfo.AnonymousUser,
        ["none"] = null, // failed authentication: no user at all
    };

    private static readonly Dictionary<string, AuditPolicy> Policies = new()
    {
        ["website"] = AuditPolicyLoader.Load(Fixture("k8s-website-audit-policy.yaml")),
        ["falco"] = AuditPolicyLoader.Load(Fixture("falco-k8saudit-audit-policy.yaml")),
        ["gce"] = AuditPolicyLoader.Load(Fixture("gce-configure-helper-audit-policy.yaml")),
        ["os-default"] = AuditPolicyLoader.Load(Fixture("openshift-library-go/default.yaml")),
        ["os-none"] = AuditPolicyLoader.Load(Fixture("openshift-library-go/none.yaml")),
        ["os-write"] = AuditPolicyLoader.Load(Fixture("openshift-library-go/writerequestbodies.yaml")),
        ["os-all"] = AuditPolicyLoader.Load(Fixture("openshift-library-go/allrequestbodies.yaml")),
        ["audit2rbac"] = AuditPolicyLoader.Load(Fixture("audit2rbac/demo-policy.yaml")),
        ["wildcards"] = AuditPolicyLoader.Parse("""
            apiVersion: audit.k8s.io/v1
            kind: Policy
            rules:
            - level: RequestResponse
              resources:
              - group: "*"
                resources: ["*/scale"]
            - level: Request
              resources:
              - group: ""
                resources: ["pods/*"]
            - level: Metadata
              verbs: ["get"]
              resources:
              - group: ""
                resources: ["secrets"]
                resourceNames: ["a", "b"]
            - level: None
              namespaces: [""]
            - level: RequestResponse
              nonResourceURLs: ["/metrics"]
            - level: Request
              nonResourceURLs: ["/debug/*"]
            - level: Metadata
              omitStages: ["ResponseStarted"]
              nonResourceURLs: ["*"]
            - level: Request
              omitManagedFields: false
            """, "wildcards.yaml"),
    };

    public static TheoryData<string, string, string, string, AuditLevel, AuditStages> Table => new()
    {
        // kubernetes/website example policy (policy-wide omitStages: RequestReceived)
        { "website", "alice", "GET", "/api/v1/namespaces/default/pods/p1", AuditLevel.RequestResponse, RR },
        { "website", "alice", "GET", "/api/v1/namespaces/default/pods/p1/log", AuditLevel.Metadata, RR },
        { "website", "alice", "PUT", "/api/v1/namespaces/default/pods/p1/status", AuditLevel.Metadata, RR },
        { "website", "alice", "POST", "/api/v1/namespaces/default/pods/p1/exec?command=sh", AuditLevel.Request, RR },
        { "website", "alice", "GET", "/api/v1/namespaces/kube-system/configmaps/controller-leader", AuditLevel.None, RR },
        { "website", "alice", "GET", "/api/v1/namespaces/kube-system/configmaps/other", AuditLevel.Request, RR },
        { "website", "alice", "GET", "/api/v1/namespaces/default/configmaps/x", AuditLevel.Metadata, RR },
        { "website", "kube-proxy", "GET", "/api/v1/endpoints?watch=true", AuditLevel.None, RR },
        { "website", "alice", "GET", "/api/v1/endpoints?watch=true", AuditLevel.Request, RR },
        { "website", "kube-proxy", "GET", "/api/v1/endpoints", AuditLevel.Request, RR },
        { "website", "alice", "GET", "/api", AuditLevel.None, RR },
        { "website", "alice", "GET", "/apis", AuditLevel.None, RR },
        { "website", "alice", "GET", "/version", AuditLevel.None, RR },
        { "website", "none", "GET", "/version", AuditLevel.Metadata, RR },
        { "website", "anonymous", "GET", "/version", AuditLevel.Metadata, RR },
        { "website", "alice", "GET", "/healthz", AuditLevel.Metadata, RR },
        { "website", "alice", "GET", "/apis/apps/v1/namespaces/default/deployments", AuditLevel.Metadata, RR },
        { "website", "alice", "GET", "/apis/extensions/v1beta1/namespaces/default/ingresses", AuditLevel.Request, RR },
        { "website", "alice", "DELETE", "/api/v1/namespaces/default/secrets/s", AuditLevel.Metadata, RR },
        // Falco k8saudit plugin policy
        { "falco", "alice", "GET", "/api/v1/namespaces/default/pods", AuditLevel.RequestResponse, RR },
        { "falco", "alice", "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", AuditLevel.RequestResponse, RR },
        { "falco", "alice", "PATCH", "/api/v1/namespaces/default/configmaps/x", AuditLevel.RequestResponse, RR },
        { "falco", "alice", "GET", "/api/v1/namespaces/kube-system/configmaps/x", AuditLevel.Request, RR },
        { "falco", "alice", "GET", "/api/v1/namespaces/default/secrets/x", AuditLevel.Metadata, RR },
        { "falco", "alice", "GET", "/apis/apps/v1/namespaces/default/deployments", AuditLevel.Metadata, RR },
        { "falco", "alice", "GET", "/api/v1/namespaces/default/services", AuditLevel.Request, RR },
        // GCE configure-helper policy (no policy-wide omitStages)
        { "gce", "kube-proxy", "GET", "/api/v1/services?watch=1", AuditLevel.None, None },
        { "gce", "node", "GET", "/api/v1/nodes/n1", AuditLevel.None, None },
        { "gce", "kubelet", "GET", "/api/v1/nodes/n1/status", AuditLevel.None, None },
        { "gce", "alice", "GET", "/healthz/etcd", AuditLevel.None, None },
        { "gce", "alice", "GET", "/swagger.json", AuditLevel.None, None },
        { "gce", "alice", "POST", "/api/v1/namespaces/default/events", AuditLevel.None, None },
        { "gce", "node", "PATCH", "/api/v1/nodes/n1/status", AuditLevel.Request, RR },
        { "gce", "ns-controller", "DELETE", "/api/v1/namespaces/foo/pods", AuditLevel.Request, RR },
        { "gce", "alice", "GET", "/api/v1/namespaces/default/secrets/s", AuditLevel.Metadata, RR },
        { "gce", "alice", "POST", "/api/v1/namespaces/default/serviceaccounts/default/token", AuditLevel.Metadata, RR },
        { "gce", "alice", "POST", "/apis/authentication.k8s.io/v1/tokenreviews", AuditLevel.Metadata, RR },
        { "gce", "alice", "GET", "/api/v1/namespaces/default/pods", AuditLevel.Request, RR },
        { "gce", "alice", "POST", "/apis/apps/v1/namespaces/default/deployments", AuditLevel.RequestResponse, RR },
        { "gce", "kcm", "GET", "/apis/metrics.k8s.io/v1beta1/pods", AuditLevel.None, None },
        { "gce", "alice", "GET", "/apis/custom.example.com/v1/widgets", AuditLevel.Metadata, RR },
        { "gce", "scheduler", "GET", "/api/v1/namespaces/kube-system/endpoints/kube-scheduler", AuditLevel.None, None },
        { "gce", "scheduler", "GET", "/api/v1/namespaces/default/endpoints/x", AuditLevel.Request, RR },
        { "gce", "alice", "GET", "/metrics", AuditLevel.Metadata, RR },
        // OpenShift profiles
        { "os-default", "anonymous", "GET", "/readyz", AuditLevel.None, RR },
        { "os-default", "none", "GET", "/readyz", AuditLevel.Metadata, RR },
        { "os-default", "alice", "POST", "/apis/user.openshift.io/v1/identities", AuditLevel.RequestResponse, RR },
        { "os-default", "alice", "GET", "/apis/user.openshift.io/v1/identities", AuditLevel.Metadata, RR },
        { "os-default", "apiserver", "GET", "/apis/apiserver.openshift.io/v1/apirequestcounts/x", AuditLevel.None, RR },
        { "os-default", "apiserver", "GET", "/apis/apiserver.openshift.io/v1/namespaces/ns1/apirequestcounts/x", AuditLevel.Metadata, RR },
        { "os-none", "apiserver", "PUT", "/apis/apiserver.openshift.io/v1/apirequestcounts/x/status", AuditLevel.None, RR },
        { "os-none", "alice", "POST", "/api/v1/namespaces/default/pods", AuditLevel.None, RR },
        { "os-write", "alice", "POST", "/api/v1/namespaces/default/pods", AuditLevel.RequestResponse, RR },
        { "os-write", "alice", "GET", "/api/v1/namespaces/default/pods", AuditLevel.Metadata, RR },
        { "os-write", "alice", "POST", "/api/v1/namespaces/default/secrets", AuditLevel.Metadata, RR },
        { "os-write", "alice", "PUT", "/apis/route.openshift.io/v1/namespaces/x/routes/r/status", AuditLevel.Metadata, RR },
        { "os-write", "alice", "POST", "/api/v1/namespaces/default/events", AuditLevel.RequestResponse, RR },
        // The "resource:" typo in two OpenShift profiles is an unknown field kube-apiserver ignores: the whole group matches.
        { "os-write", "alice", "POST", "/apis/machineconfiguration.openshift.io/v1/machineconfigs", AuditLevel.Metadata, RR },
        { "os-all", "alice", "POST", "/apis/machineconfiguration.openshift.io/v1/machineconfigs", AuditLevel.Metadata, RR },
        { "os-default", "alice", "POST", "/apis/machineconfiguration.openshift.io/v1/machineconfigs", AuditLevel.Metadata, RR },
        { "os-all", "alice", "GET", "/api/v1/namespaces/default/pods", AuditLevel.RequestResponse, RR },
        // audit2rbac demo policy: rule-level omitStages only
        { "audit2rbac", "alice", "GET", "/api/v1/namespaces/default/pods", AuditLevel.Metadata,
            AuditStages.RequestReceived | AuditStages.ResponseStarted | AuditStages.Panic },
        { "audit2rbac", "carol", "GET", "/api/v1/namespaces/default/pods", AuditLevel.None, None },
        // Wildcard forms
        { "wildcards", "alice", "PUT", "/apis/apps/v1/namespaces/d/deployments/web/scale", AuditLevel.RequestResponse, None },
        { "wildcards", "alice", "GET", "/apis/apps/v1/namespaces/d/deployments/web", AuditLevel.Request, None },
        { "wildcards", "alice", "GET", "/api/v1/namespaces/d/pods/p/log", AuditLevel.Request, None },
        { "wildcards", "alice", "GET", "/api/v1/namespaces/d/pods/p", AuditLevel.Request, None },
        { "wildcards", "alice", "GET", "/api/v1/namespaces/d/secrets/a", AuditLevel.Metadata, None },
        { "wildcards", "alice", "GET", "/api/v1/namespaces/d/secrets/c", AuditLevel.Request, None },
        { "wildcards", "alice", "GET", "/api/v1/namespaces/d/secrets", AuditLevel.Request, None },
        { "wildcards", "alice", "GET", "/api/v1/nodes/n1", AuditLevel.None, None },
        { "wildcards", "alice", "GET", "/metrics", AuditLevel.RequestResponse, None },
        { "wildcards", "alice", "GET", "/metrics/x", AuditLevel.Metadata, AuditStages.ResponseStarted },
        { "wildcards", "alice", "GET", "/debug/pprof/heap", AuditLevel.Request, None },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void Fixture_policies_give_the_expected_level_and_omitted_stages(
        string policy, string user, string method, string uri, AuditLevel level, AuditStages omitted)
    {
        var decision = Policies[policy].Evaluate(Users[user], Request(method, uri));

        Assert.Equal(level, decision.Level);
        Assert.Equal(omitted, decision.OmitStages);
    }

    [Fact]
    public void OmitManagedFields_comes_from_the_policy_unless_the_rule_sets_it()
    {
        Assert.True(Policies["os-default"].Evaluate(Users["alice"], Request("GET", "/api/v1/namespaces/d/pods")).OmitManagedFields);
        Assert.False(Policies["website"].Evaluate(Users["alice"], Request("GET", "/api/v1/namespaces/d/pods")).OmitManagedFields);
        var policy = AuditPolicyLoader.Parse("""
            apiVersion: audit.k8s.io/v1
            kind: Policy
            omitManagedFields: true
            rules:
            - level: Request
              verbs: ["get"]
              omitManagedFields: false
            - level: Request
            """, "p.yaml");
        Assert.False(policy.Evaluate(Users["alice"], Request("GET", "/api/v1/namespaces/d/pods/p")).OmitManagedFields);
        Assert.True(policy.Evaluate(Users["alice"], Request("POST", "/api/v1/namespaces/d/pods")).OmitManagedFields);
    }

    [Fact]
    public void Decision_tells_which_stages_to_emit()
    {
        var d = Policies["website"].Evaluate(Users["alice"], Request("GET", "/api/v1/namespaces/default/pods/p1"));

        Assert.False(d.ShouldEmit(AuditStage.RequestReceived));
        Assert.True(d.ShouldEmit(AuditStage.ResponseComplete));
        Assert.Equal(0, d.RuleIndex);
        Assert.Equal(-1, Policies["audit2rbac"].Evaluate(Users["carol"], Request("GET", "/api/v1/pods")).RuleIndex);
    }

    [Fact]
    public void Every_fixture_policy_loads()
    {
        var files = Directory.EnumerateFiles(Fixture(""), "*.yaml", SearchOption.AllDirectories)
            .Where(f => !f.EndsWith("audit-policies-cm-scenario-1.yaml", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}webhook{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToList();
        Assert.True(files.Count >= 8);
        foreach (var file in files)
        {
            var policy = AuditPolicyLoader.Load(file);
            Assert.NotEmpty(policy.Rules);
        }
    }

    [Fact]
    public void Every_policy_inside_the_OpenShift_ConfigMap_loads_and_the_ConfigMap_itself_is_rejected()
    {
        var file = Fixture("openshift-library-go/audit-policies-cm-scenario-1.yaml");
        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(file)));
        var data = (YamlMappingNode)((YamlMappingNode)stream.Documents[0].RootNode).Children[new YamlScalarNode("data")];

        Assert.Equal(3, data.Children.Count);
        foreach (var (key, value) in data.Children)
        {
            var policy = AuditPolicyLoader.Parse(((YamlScalarNode)value).Value!, file + "#" + key);
            Assert.NotEmpty(policy.Rules);
        }
        var ex = Assert.Throws<ConfigurationException>(() => AuditPolicyLoader.Load(file));
        Assert.Contains(ex.Errors, e => e.Field == "kind" && e.Message.Contains("ConfigMap", StringComparison.Ordinal));
    }

    [Fact]
    public void Unknown_fields_are_warnings_with_file_and_line_as_kube_apiserver_decodes_leniently()
    {
        var policy = AuditPolicyLoader.Load(Fixture("openshift-library-go/writerequestbodies.yaml"));

        var warning = Assert.Single(policy.Warnings);
        Assert.EndsWith("writerequestbodies.yaml:38: rules[2].resources[4].resource: unknown field ignored", warning, StringComparison.Ordinal);
    }
}
