using Portcullis.Admission.Flowcontrol;
using Portcullis.Authentication;
using Portcullis.Authorization;
using Portcullis.Configuration;

namespace Portcullis.Core.Tests.Admission;

/// <summary>FlowSchema matching as kube-apiserver does it, with its default objects and with public manifests (fixtures/apf).</summary>
public sealed class FlowcontrolMatchingTests
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "fixtures", "apf");

    private static UserInfo User(string name, params string[] groups) => UserInfo.Create(name, groups);

    private static RequestInfo Resource(string verb, string group, string resource, string ns = "", string subresource = "") =>
        RequestInfoParser.Resource(verb, group, resource, subresource, ns);

    private static RequestInfo NonResource(string verb, string path) => RequestInfoParser.NonResource(verb, path);

    private static FlowcontrolSystem Defaults(bool suggested = true)
    {
        var errors = new List<ConfigError>();
        var system = FlowcontrolSystem.Create([], [], 600, suggested, TimeProvider.System, errors);
        Assert.Empty(errors);
        return system;
    }

    public static TheoryData<string, string[], RequestInfo, string, string> DefaultCases => new()
    {
        { "root", ["system:masters", "system:authenticated"], Resource("delete", "", "secrets", "prod"), "exempt", "exempt" },
        { "system:anonymous", ["system:unauthenticated"], NonResource("get", "/healthz"), "probes", "exempt" },
        // "/readyz" also prefixes "/readyz/etcd" (the rule's path gets a '/' appended)
        { "jane", ["system:authenticated"], NonResource("get", "/readyz/etcd"), "probes", "exempt" },
        { "jane", ["system:authenticated"], NonResource("post", "/healthz"), "global-default", "global-default" },
        { "jane", ["system:authenticated"], NonResource("get", "/healthzfoo"), "global-default", "global-default" },
        { "system:node:n1", ["system:nodes", "system:authenticated"], Resource("patch", "", "nodes", subresource: "status"), "system-node-high", "node-high" },
        { "system:node:n1", ["system:nodes", "system:authenticated"], Resource("update", "coordination.k8s.io", "leases", "kube-node-lease"), "system-node-high", "node-high" },
        { "system:node:n1", ["system:nodes", "system:authenticated"], Resource("get", "", "pods", "dev"), "system-nodes", "system" },
        // node-high's leases rule is namespaced only (clusterScope false): a cluster-scoped leases request falls to system-nodes
        { "system:node:n1", ["system:nodes", "system:authenticated"], Resource("list", "coordination.k8s.io", "leases"), "system-nodes", "system" },
        { "system:kube-controller-manager", ["system:authenticated"], Resource("update", "coordination.k8s.io", "leases", "kube-system"), "system-leader-election", "leader-election" },
        { "system:kube-controller-manager", ["system:authenticated"], Resource("list", "apps", "deployments", "dev"), "kube-controller-manager", "workload-high" },
        { "system:kube-scheduler", ["system:authenticated"], Resource("create", "", "pods", "dev", "binding"), "kube-scheduler", "workload-high" },
        { "system:serviceaccount:kube-system:job", ["system:serviceaccounts", "system:authenticated"], Resource("get", "coordination.k8s.io", "leases", "kube-system"), "system-leader-election", "leader-election" },
        { "system:serviceaccount:kube-system:job", ["system:serviceaccounts", "system:authenticated"], Resource("list", "", "pods", "dev"), "kube-system-service-accounts", "workload-high" },
        // "kube-systemx" is not the namespace kube-system
        { "system:serviceaccount:kube-systemx:job", ["system:serviceaccounts", "system:authenticated"], Resource("list", "", "pods", "dev"), "service-accounts", "workload-low" },
        { "system:serviceaccount:dev:app", ["system:serviceaccounts", "system:authenticated"], Resource("list", "", "pods", "dev"), "service-accounts", "workload-low" },
        { "jane", ["developers", "system:authenticated"], Resource("list", "", "pods", "dev"), "global-default", "global-default" },
        // in neither system:authenticated nor system:unauthenticated: kube-apiserver ends in catch-all
        { "odd", [], Resource("list", "", "pods", "dev"), "catch-all", "catch-all" },
    };

    [Theory]
    [MemberData(nameof(DefaultCases))]
    public void The_default_objects_classify_as_kube_apiserver_does(string user, string[] groups, RequestInfo request, string schema, string level)
    {
        var c = Defaults().Classify(User(user, groups), request);
        Assert.Equal((schema, level), (c.FlowSchema.Name, c.PriorityLevel.Name));
    }

    [Fact]
    public void Without_the_suggested_objects_only_exempt_and_catch_all_remain()
    {
        var system = Defaults(suggested: false);
        Assert.Equal(["exempt", "catch-all"], system.FlowSchemas.Select(s => s.Name));
        Assert.Equal("catch-all", system.Classify(User("jane", "system:authenticated"), NonResource("get", "/healthz")).FlowSchema.Name);
        Assert.Equal("exempt", system.Classify(User("root", "system:masters"), NonResource("get", "/healthz")).FlowSchema.Name);
    }

    public static TheoryData<string, string[], RequestInfo, string, string> FixtureCases => new()
    {
        // health-for-strangers (1000) is after the suggested probes (2), which takes only get
        { "system:anonymous", ["system:unauthenticated"], NonResource("get", "/livez"), "probes", "exempt" },
        { "system:anonymous", ["system:unauthenticated"], NonResource("post", "/livez"), "health-for-strangers", "exempt" },
        { "jane", ["system:authenticated"], NonResource("post", "/livez"), "global-default", "global-default" },
        { "system:serviceaccount:default:default", ["system:serviceaccounts", "system:authenticated"], Resource("list", "", "events", "default"), "list-events-default-service-account", "catch-all" },
        { "system:serviceaccount:default:default", ["system:serviceaccounts", "system:authenticated"], Resource("list", "", "events", "kube-public"), "service-accounts", "workload-low" },
        { "system:serviceaccount:default:default", ["system:serviceaccounts", "system:authenticated"], Resource("watch", "", "events", "default"), "service-accounts", "workload-low" },
        { "system:serviceaccount:openshift-monitoring:prometheus-k8s", ["system:serviceaccounts", "system:authenticated"], NonResource("get", "/metrics"), "openshift-monitoring-metrics", "workload-high" },
        { "system:serviceaccount:openshift-kube-apiserver-operator:kube-apiserver-operator", ["system:serviceaccounts", "system:authenticated"], Resource("get", "", "configmaps", "openshift-config"), "openshift-kube-apiserver-operator", "openshift-control-plane-operators" },
    };

    [Theory]
    [MemberData(nameof(FixtureCases))]
    public void Public_manifests_classify_with_the_default_objects(string user, string[] groups, RequestInfo request, string schema, string level)
    {
        var errors = new List<ConfigError>();
        var system = FlowcontrolSystem.Load([Fixtures], 600, includeSuggested: true, TimeProvider.System, errors, []);
        Assert.Empty(errors);
        var c = system!.Classify(User(user, groups), request);
        Assert.Equal((schema, level), (c.FlowSchema.Name, c.PriorityLevel.Name));
    }

    [Fact]
    public void A_v1beta1_level_reads_assured_shares_and_its_queuing()
    {
        var errors = new List<ConfigError>();
        var reader = new FlowcontrolManifestReader(errors, []);
        reader.ReadPath(Path.Combine(Fixtures, "openshift-kube-apiserver-operator-flowschema.yaml"));
        Assert.Empty(errors);
        var level = Assert.Single(reader.PriorityLevels);
        Assert.Equal((10, false, 128, 6, 50), (level.NominalConcurrencyShares, level.Reject, level.Queues, level.HandSize, level.QueueLengthLimit));
        Assert.Equal(3, reader.FlowSchemas.Count);
    }

    [Fact]
    public void Ties_of_precedence_go_by_name_and_a_schema_without_its_level_is_ignored()
    {
        var system = Read("""
            apiVersion: v1
            kind: List
            items:
            - apiVersion: flowcontrol.apiserver.k8s.io/v1
              kind: FlowSchema
              metadata: {name: b-first-written}
              spec:
                matchingPrecedence: 500
                priorityLevelConfiguration: {name: workload-high}
                rules: [{subjects: [{kind: User, user: {name: jane}}], nonResourceRules: [{verbs: ["*"], nonResourceURLs: ["*"]}]}]
            - apiVersion: flowcontrol.apiserver.k8s.io/v1beta3
              kind: FlowSchema
              metadata: {name: a-second-written}
              spec:
                matchingPrecedence: 500
                priorityLevelConfiguration: {name: workload-low}
                rules: [{subjects: [{kind: User, user: {name: "*"}}], nonResourceRules: [{verbs: ["*"], nonResourceURLs: ["/version"]}]}]
            - apiVersion: flowcontrol.apiserver.k8s.io/v1
              kind: FlowSchema
              metadata: {name: 0-no-such-level}
              spec:
                matchingPrecedence: 1
                priorityLevelConfiguration: {name: missing}
                rules: [{subjects: [{kind: Group, group: {name: "*"}}], nonResourceRules: [{verbs: ["*"], nonResourceURLs: ["*"]}]}]
            """);
        var jane = User("jane", "system:authenticated");
        Assert.Equal("a-second-written", system.Classify(jane, NonResource("get", "/version")).FlowSchema.Name);
        Assert.Equal("b-first-written", system.Classify(jane, NonResource("get", "/api")).FlowSchema.Name);
        Assert.DoesNotContain(system.FlowSchemas, s => s.Name == "0-no-such-level");
    }

    [Fact]
    public void A_wildcard_counts_only_alone_and_clusterScope_and_namespaces_are_separate()
    {
        var system = Read("""
            apiVersion: flowcontrol.apiserver.k8s.io/v1
            kind: FlowSchema
            metadata: {name: rules}
            spec:
              matchingPrecedence: 100
              priorityLevelConfiguration: {name: workload-high}
              distinguisherMethod: {type: ByNamespace}
              rules:
              - subjects: [{kind: User, user: {name: jane}}]
                resourceRules:
                - {verbs: ["*", "get"], apiGroups: ["*"], resources: ["*"], namespaces: ["*"]}
                - {verbs: ["list"], apiGroups: [""], resources: ["pods/log"], clusterScope: true}
            """);
        var jane = User("jane", "system:authenticated");
        Assert.Equal("rules", system.Classify(jane, Resource("get", "", "pods", "dev")).FlowSchema.Name);
        Assert.NotEqual("rules", system.Classify(jane, Resource("delete", "", "pods", "dev")).FlowSchema.Name); // ["*", "get"] is not a wildcard
        Assert.NotEqual("rules", system.Classify(jane, Resource("get", "", "nodes")).FlowSchema.Name); // cluster-scoped needs clusterScope
        Assert.Equal("rules", system.Classify(jane, Resource("list", "", "pods", subresource: "log")).FlowSchema.Name);
        Assert.NotEqual("rules", system.Classify(jane, Resource("list", "", "pods", "dev", "log")).FlowSchema.Name); // namespaced needs namespaces
    }

    [Fact]
    public void Flows_of_ByUser_and_ByNamespace_hash_as_kube_apiserver()
    {
        var system = Defaults();
        var jane = User("jane", "system:authenticated");
        var c = system.Classify(jane, Resource("list", "", "pods", "dev"));
        // little-endian uint64 of SHA-256("global-default" 0x00 "jane")[0..8], computed independently
        Assert.Equal(6822407026147695384UL, c.FlowHash);
        Assert.Equal(6822407026147695384UL, ShuffleShardDealer.FlowHash("global-default", "jane"));
        var kcm = system.Classify(User("system:kube-controller-manager", "system:authenticated"), Resource("list", "", "pods", "dev"));
        Assert.Equal(ShuffleShardDealer.FlowHash("kube-controller-manager", "dev"), kcm.FlowHash);
        Assert.Equal(0UL, system.Classify(jane, NonResource("get", "/healthz")).FlowHash); // exempt: no queues, no hash
    }

    public static TheoryData<string, string, string> BadObjects => new()
    {
        { "kind: FlowSchema\nmetadata: {name: x}\nspec:\n  matchingPrecedence: 0\n  priorityLevelConfiguration: {name: exempt}\n", "spec.matchingPrecedence", "0 must be between 1 and 10000" },
        { "kind: FlowSchema\nmetadata: {name: x}\nspec:\n  priorityLevelConfiguration: {name: exempt}\n  rules:\n  - subjects: [{kind: User, user: {name: a}}]\n    resourceRules: [{verbs: [get], apiGroups: [\"\"], resources: [pods]}]\n", "spec.rules.resourceRules.namespaces", "must name at least one namespace" },
        { "kind: FlowSchema\nmetadata: {name: x}\nspec:\n  priorityLevelConfiguration: {name: exempt}\n  distinguisherMethod: {type: ByGroup}\n", "spec.distinguisherMethod.type", "\"ByGroup\" is not ByUser or ByNamespace" },
        { "kind: PriorityLevelConfiguration\nmetadata: {name: x}\nspec:\n  type: Limited\n  limited:\n    limitResponse: {type: Drop}\n", "spec.limited.limitResponse.type", "\"Drop\" is not Queue or Reject" },
        { "kind: PriorityLevelConfiguration\nmetadata: {name: x}\nspec:\n  type: Limited\n  limited:\n    limitResponse:\n      type: Queue\n      queuing: {queues: 4, handSize: 8}\n", "spec.limited.limitResponse.queuing.handSize", "handSize 8 must not exceed queues (4)" },
        { "kind: PriorityLevelConfiguration\nmetadata: {name: x}\nspec:\n  type: Limited\n  limited:\n    lendablePercent: 120\n    limitResponse: {type: Reject}\n", "spec.limited.lendablePercent", "120 must be between 0 and 100" },
    };

    [Theory]
    [MemberData(nameof(BadObjects))]
    public void A_bad_object_is_refused_with_file_line_and_field(string yaml, string field, string message)
    {
        var errors = new List<ConfigError>();
        var file = "/cfg/apf.yaml";
        new FlowcontrolManifestReader(errors, []).ReadText("# objects\napiVersion: flowcontrol.apiserver.k8s.io/v1\n" + yaml, file);
        var error = Assert.Single(errors);
        Assert.Equal(file, error.File);
        Assert.True(error.Line >= 2, $"line {error.Line}");
        Assert.Equal(field, error.Field);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Built_in_objects_have_stable_uids_and_a_manifest_keeps_its_own()
    {
        var a = Defaults();
        var b = Defaults();
        Assert.Equal(a.FlowSchemas.Select(s => s.Uid), b.FlowSchemas.Select(s => s.Uid));
        Assert.Equal(a.FlowSchemas.Count, a.FlowSchemas.Select(s => s.Uid).Distinct().Count());
        Assert.Matches("^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", a.Level("exempt").Uid);
        var system = Read("""
            apiVersion: flowcontrol.apiserver.k8s.io/v1
            kind: PriorityLevelConfiguration
            metadata: {name: batch, uid: 1f6f4b5e-2f6c-4a53-9d7e-0c8a3b2e9f10}
            spec: {type: Limited, limited: {nominalConcurrencyShares: 5, limitResponse: {type: Reject}}}
            """);
        Assert.Equal("1f6f4b5e-2f6c-4a53-9d7e-0c8a3b2e9f10", system.Level("batch").Uid);
    }

    private static FlowcontrolSystem Read(string yaml)
    {
        var errors = new List<ConfigError>();
        var reader = new FlowcontrolManifestReader(errors, []);
        reader.ReadText(yaml, "/cfg/apf.yaml");
        Assert.Empty(errors);
        var system = FlowcontrolSystem.Create(reader.FlowSchemas, reader.PriorityLevels, 600, true, TimeProvider.System, errors);
        Assert.Empty(errors);
        return system;
    }
}
