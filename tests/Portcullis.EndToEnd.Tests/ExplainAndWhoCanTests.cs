using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Portcullis.Authorization.Tests;

namespace Portcullis.EndToEnd.Tests;

/// <summary>
/// <c>portcullis explain</c> and <c>portcullis who-can</c> run as the built portcullis.dll over the real bootstrap policy
/// (Portcullis.Authorization.Tests/fixtures, attribution in its SOURCES.md, copied here by the project reference).
/// Exit codes: 0 allowed, 1 denied, 2 bad configuration or arguments, 3 authorization error.
/// </summary>
public sealed class ExplainAndWhoCanTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-explain-").FullName;

    private static string Rbac => Path.Combine(BootstrapDecisionTable.FixturesDirectory, "rbac");
    private static string RbacLocal => Path.Combine(BootstrapDecisionTable.FixturesDirectory, "rbac-local");

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }

    /// <summary>Writes a configuration with only an authorization section; <paramref name="extra"/> is indented into it.</summary>
    private string Config(string extra = "", string modes = "[RBAC]", string? manifests = null)
    {
        var path = Path.Combine(_dir, $"portcullis-{Guid.NewGuid():N}.yaml");
        var lines = new StringBuilder()
            .AppendLine("apiVersion: portcullis.dev/v1alpha1")
            .AppendLine("kind: GatewayConfiguration")
            .AppendLine("authorization:")
            .AppendLine($"  modes: {modes}");
        if (modes.Contains("RBAC", StringComparison.Ordinal))
        {
            // Manifests without the RBAC mode would be refused at load ("has no effect").
            lines.AppendLine("  rbac:").AppendLine($"    manifests: {manifests ?? $"['{Rbac}', '{RbacLocal}']"}");
        }
        foreach (var line in extra.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            lines.AppendLine("  " + line);
        }
        File.WriteAllText(path, lines.ToString());
        return path;
    }

    /// <summary>Deny list with jane and the system:masters network scope, as in docs/authorization.md.</summary>
    private string HardenedConfig()
    {
        File.WriteAllText(Path.Combine(_dir, "deny.yaml"), """
            apiVersion: portcullis.dev/v1alpha1
            kind: DenyList
            entries:
            - user: jane
              reason: "laptop stolen 2026-11-20"
            """);
        return Config($"""
            denyListFile: {Path.Combine(_dir, "deny.yaml")}
            networkScopes:
            - subjects: [{"{"}kind: Group, name: system:masters{"}"}]
              allow: [192.168.1.0/24]
            """);
    }

    /// <summary>
    /// Every fourth row of the bootstrap decision table (the whole table is checked in-process by
    /// Portcullis.Authorization.Tests and through HTTP by Portcullis.Gateway.Tests; one process per row here is slow on a
    /// shared machine), skipping rows whose HTTP method has no verb (explain takes a verb, not a method).
    /// </summary>
    public static TheoryData<int, string> SampledRows()
    {
        var data = new TheoryData<int, string>();
        for (var i = 0; i < BootstrapDecisionTable.All.Count; i += 4)
        {
            var row = BootstrapDecisionTable.All[i];
            if (row.Request.Verb.Length > 0)
            {
                data.Add(i, row.ToString());
            }
        }
        return data;
    }

    /// <summary>kubectl-style explain arguments for a table row.</summary>
    private static List<string> ExplainArgs(string config, BootstrapDecision row)
    {
        var args = new List<string> { "explain", "--config", config, "--user", row.User };
        var groups = row.Groups.Split(',', StringSplitOptions.RemoveEmptyEntries);
        foreach (var g in groups.Where(g => g != "system:authenticated"))
        {
            args.AddRange(["--group", g]);
        }
        if (!groups.Contains("system:authenticated"))
        {
            args.Add("--no-authenticated-group");
        }
        var r = row.Request;
        if (!r.IsResourceRequest)
        {
            args.AddRange(["--path", r.Path, r.Verb]);
            return args;
        }
        if (r.Namespace.Length > 0)
        {
            args.AddRange(["-n", r.Namespace]);
        }
        if (r.ApiGroup.Length > 0)
        {
            args.AddRange(["--api-group", r.ApiGroup]);
        }
        if (r.Subresource.Length > 0)
        {
            args.AddRange(["--subresource", r.Subresource]);
        }
        args.AddRange([r.Verb, r.Resource]);
        if (r.Name.Length > 0)
        {
            args.Add(r.Name);
        }
        return args;
    }

    [Fact]
    public void The_sample_covers_both_decisions()
    {
        var rows = SampledRows().Select(d => BootstrapDecisionTable.All[(int)d[0]]).ToList();
        Assert.True(rows.Count >= 15, $"{rows.Count} rows");
        Assert.Contains(rows, r => r.Allowed);
        Assert.Contains(rows, r => !r.Allowed);
        Assert.Contains(rows, r => !r.Request.IsResourceRequest);
    }

    [Theory]
    [MemberData(nameof(SampledRows))]
    public async Task Explain_agrees_with_the_bootstrap_decision_table(int index, string row)
    {
        var decision = BootstrapDecisionTable.All[index];
        var result = await PortcullisCli.RunAsync([.. ExplainArgs(Config(), decision)]);

        Assert.True(result.ExitCode == (decision.Allowed ? 0 : 1), $"{row}\n{result}");
        Assert.StartsWith(decision.Allowed ? "allowed: " : "denied: ", result.Stdout, StringComparison.Ordinal);
        Assert.Contains($"User \"{decision.User}\"", result.Stdout, StringComparison.Ordinal);
        if (decision.Reason.Length > 0)
        {
            Assert.Contains(decision.Reason, result.Stdout, StringComparison.Ordinal);
        }
        Assert.Equal("", result.Stderr);
    }

    [Fact]
    public async Task Explain_names_the_binding_role_and_rule_that_allow()
    {
        var result = await PortcullisCli.RunAsync("explain", "--config", Config(), "--user", "vera", "get", "pods", "-n", "team-a");

        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = result.Stdout.Split('\n');
        Assert.Equal("allowed: User \"vera\" get pods in namespace team-a", lines[0]);
        Assert.Contains("  decided by: RBAC", lines);
        Assert.Contains("  reason: RBAC: allowed by RoleBinding \"viewers/team-a\" of ClusterRole \"view\" to User \"vera\"", lines);
        var chainLine = Assert.Single(lines, l => l.Contains(" → ", StringComparison.Ordinal));
        Assert.Contains("RoleBinding \"viewers\" in team-a (", chainLine, StringComparison.Ordinal);
        Assert.Contains("team-a.yaml:4)", chainLine, StringComparison.Ordinal);
        Assert.Contains("→ ClusterRole \"view\" (", chainLine, StringComparison.Ordinal);
        Assert.Contains("cluster-roles.yaml:", chainLine, StringComparison.Ordinal);
        Assert.Contains("→ rule 0: verbs=[get list watch]", chainLine, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Explain_denied_prints_the_403_message_and_exits_1()
    {
        var result = await PortcullisCli.RunAsync("explain", "--config", Config(), "--user", "vera", "get", "secrets", "-n", "team-a", "s1");

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.StartsWith("denied: User \"vera\" get secrets", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("403 message: secrets \"s1\" is forbidden: User \"vera\" cannot get resource \"secrets\" in API group \"\" in the namespace \"team-a\"",
            result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Explain_system_masters_is_allowed_before_the_modes()
    {
        var result = await PortcullisCli.RunAsync("explain", "--config", Config(modes: "[AlwaysDeny]"), "--user", "root", "--group", "system:masters", "delete", "nodes", "n1");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("decided by: system:masters", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Explain_shows_the_deny_list_entry_that_decided()
    {
        var result = await PortcullisCli.RunAsync("explain", "--config", HardenedConfig(), "--user", "jane", "--path", "/healthz", "get");

        Assert.True(result.ExitCode == 1, result.ToString());
        var lines = result.Stdout.Split('\n');
        Assert.Equal("denied: User \"jane\" get path /healthz", lines[0]);
        Assert.Contains("  decided by: DenyList", lines);
        Assert.Contains("  reason: deny list: laptop stolen 2026-11-20", lines);
        Assert.Contains("  403 message: forbidden: User \"jane\" cannot get path \"/healthz\": deny list: laptop stolen 2026-11-20", lines);
        Assert.Contains(lines, l => l.StartsWith("      entry entries[0] user=jane at ", StringComparison.Ordinal) && l.Contains("deny.yaml:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Explain_json_shows_a_network_scope_refusing_system_masters_from_elsewhere()
    {
        var config = HardenedConfig();
        var outside = await PortcullisCli.RunAsync("explain", "--config", config, "--user", "root", "--group", "system:masters", "--source-ip", "203.0.113.5",
            "delete", "nodes", "n1", "--json");

        Assert.True(outside.ExitCode == 1, outside.ToString());
        var json = JsonNode.Parse(outside.Stdout)!;
        Assert.False((bool)json["allowed"]!);
        Assert.Equal("forbid", (string?)json["decision"]);
        Assert.Equal("NetworkScope", (string?)json["decidedBy"]);
        Assert.Equal("network scope networkScopes[0] (Group \"system:masters\") allows only 192.168.1.0/24; the request came from 203.0.113.5", (string?)json["reason"]);

        var inside = await PortcullisCli.RunAsync("explain", "--config", config, "--user", "root", "--group", "system:masters", "--source-ip", "192.168.1.20",
            "delete", "nodes", "n1", "--json");
        Assert.True(inside.ExitCode == 0, inside.ToString());
        Assert.True((bool)JsonNode.Parse(inside.Stdout)!["allowed"]!);
    }

    [Fact]
    public async Task Explain_exits_3_when_an_authorizer_errs_without_an_allow()
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        } // closed again: connections are refused
        var kubeconfig = Path.Combine(_dir, "authz.kubeconfig");
        File.WriteAllText(kubeconfig, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: authz
              cluster: {"{"}server: "https://127.0.0.1:{port}/authorize"{"}"}
            users:
            - name: gateway
              user: {"{"}token: t{"}"}
            contexts:
            - name: authz
              context: {"{"}cluster: authz, user: gateway{"}"}
            current-context: authz
            """);
        var config = Config($"""
            webhook:
              configFile: {kubeconfig}
              timeout: 5s
            """, modes: "[RBAC, Webhook]");

        var result = await PortcullisCli.RunAsync("explain", "--config", config, "--user", "vera", "get", "secrets", "-n", "team-a");

        Assert.True(result.ExitCode == 3, result.ToString());
        Assert.StartsWith("error: User \"vera\" get secrets", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_configuration_or_arguments_exit_2()
    {
        var missing = await PortcullisCli.RunAsync("explain", "--config", Path.Combine(_dir, "nope.yaml"), "--user", "vera", "get", "pods");
        Assert.True(missing.ExitCode == 2, missing.ToString());
        Assert.Contains("nope.yaml", missing.Stderr, StringComparison.Ordinal);

        var brokenRbac = Path.Combine(_dir, "broken.yaml");
        File.WriteAllText(brokenRbac, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: x}\nrules: [{verbs: [get], resources: 7}]\n");
        var broken = Config(manifests: $"['{brokenRbac}']");
        var bad = await PortcullisCli.RunAsync("explain", "--config", broken, "--user", "vera", "get", "pods");
        Assert.True(bad.ExitCode == 2, bad.ToString());
        Assert.Contains("broken.yaml", bad.Stderr, StringComparison.Ordinal);
        Assert.Equal("", bad.Stdout);

        var whoCan = await PortcullisCli.RunAsync("who-can", "--config", broken, "get", "pods");
        Assert.True(whoCan.ExitCode == 2, whoCan.ToString());
        Assert.Contains("broken.yaml", whoCan.Stderr, StringComparison.Ordinal);

        var config = Config();
        foreach (var args in new[]
        {
            new[] { "explain", "--config", config, "--user", "vera", "--path", "metrics", "get" },
            ["explain", "--config", config, "--user", "vera", "--path", "/metrics", "get", "pods"],
            ["explain", "--config", config, "--user", "vera", "--source-ip", "not-an-ip", "get", "pods"],
            ["explain", "--config", config, "--user", "vera", "get"],
            ["who-can", "--config", config, "get"],
        })
        {
            var result = await PortcullisCli.RunAsync(args);
            Assert.True(result.ExitCode == 2, $"{string.Join(' ', args[3..])}\n{result}");
            Assert.NotEqual("", result.Stderr);
        }
    }

    [Fact]
    public async Task Who_can_lists_the_subjects_with_their_bindings()
    {
        var result = await PortcullisCli.RunAsync("who-can", "--config", HardenedConfig(), "get", "secrets", "-n", "team-a");

        Assert.True(result.ExitCode == 0, result.ToString());
        var rows = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split("  ", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        Assert.Equal(["SUBJECT", "BINDING", "ROLE"], rows[0]);
        var table = rows.Skip(1).Where(r => r.Length == 3).Select(r => string.Join(" | ", r)).ToList();
        Assert.Equal(
        [
            "Group system:masters | ClusterRoleBinding/cluster-admin | ClusterRole/cluster-admin",
            "User system:kube-controller-manager | ClusterRoleBinding/system:kube-controller-manager | ClusterRole/system:kube-controller-manager",
            "ServiceAccount kube-system/generic-garbage-collector | ClusterRoleBinding/system:controller:generic-garbage-collector | ClusterRole/system:controller:generic-garbage-collector",
            "ServiceAccount kube-system/namespace-controller | ClusterRoleBinding/system:controller:namespace-controller | ClusterRole/system:controller:namespace-controller",
            "Group team-a-devs | RoleBinding/team-a/editors | ClusterRole/edit",
            "ServiceAccount team-a/ci | RoleBinding/team-a/editors | ClusterRole/edit",
            "User ada | RoleBinding/team-a/admins | ClusterRole/admin",
        ], table);
        Assert.DoesNotContain("vera", result.Stdout, StringComparison.Ordinal); // view does not read secrets
        Assert.DoesNotContain("nobody", result.Stdout, StringComparison.Ordinal); // an SA without namespace in a ClusterRoleBinding matches nobody
        Assert.Contains("note: members of group system:masters may do anything (the system:masters authorizer runs before the modes)", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("note: the deny list (1 entries) removes matching identities, credentials and networks first", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("note: network scope networkScopes[0] (Group \"system:masters\") allows only 192.168.1.0/24", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Who_can_json_and_non_resource_paths()
    {
        var result = await PortcullisCli.RunAsync("who-can", "--config", Config(), "--path", "/healthz", "get", "--json");

        Assert.True(result.ExitCode == 0, result.ToString());
        var json = JsonNode.Parse(result.Stdout)!;
        var subjects = json["subjects"]!.AsArray().Select(s => $"{(string?)s!["kind"]} {(string?)s["name"]} {(string?)s["binding"]} {(string?)s["role"]}").ToList();
        Assert.Contains("Group system:unauthenticated ClusterRoleBinding/system:public-info-viewer ClusterRole/system:public-info-viewer", subjects);
        Assert.Contains("Group system:authenticated ClusterRoleBinding/system:public-info-viewer ClusterRole/system:public-info-viewer", subjects);
        Assert.NotEmpty(json["notes"]!.AsArray());

        var nobody = await PortcullisCli.RunAsync("who-can", "--config", Config(), "--path", "/debug/pprof/heap", "get", "--json");
        Assert.True(nobody.ExitCode == 0, nobody.ToString());
        var only = JsonNode.Parse(nobody.Stdout)!["subjects"]!.AsArray().Select(s => (string?)s!["name"]).ToList();
        Assert.DoesNotContain("system:authenticated", only);
        Assert.Contains("system:masters", only);
    }

    /// <summary>
    /// <see cref="Config"/> plus <c>admission.priorityAndFairness</c> with docs/traffic.md's worked example
    /// (<c>batch-jobs-low-priority</c> → <c>batch-low</c>, 5 shares, Reject) in its <c>configFiles</c>.
    /// </summary>
    private string ApfConfig(bool enabled = true)
    {
        var apf = Path.Combine(_dir, "batch-low.yaml");
        File.WriteAllText(apf, """
            apiVersion: flowcontrol.apiserver.k8s.io/v1
            kind: PriorityLevelConfiguration
            metadata:
              name: batch-low
            spec:
              type: Limited
              limited:
                nominalConcurrencyShares: 5
                lendablePercent: 0
                limitResponse:
                  type: Reject
            ---
            apiVersion: flowcontrol.apiserver.k8s.io/v1
            kind: FlowSchema
            metadata:
              name: batch-jobs-low-priority
            spec:
              matchingPrecedence: 400
              priorityLevelConfiguration:
                name: batch-low
              distinguisherMethod:
                type: ByUser
              rules:
              - subjects:
                - kind: User
                  user: {name: batch}
                resourceRules:
                - verbs: ["*"]
                  apiGroups: ["*"]
                  resources: ["*"]
                  namespaces: ["*"]
                  clusterScope: true
                nonResourceRules:
                - verbs: ["*"]
                  nonResourceURLs: ["*"]
            """);
        var path = Config();
        File.AppendAllText(path, enabled
            ? $"""
              admission:
                priorityAndFairness:
                  configFiles: ['{apf}']

              """
            : """
              admission:
                priorityAndFairness:
                  enabled: false

              """);
        return path;
    }

    /// <summary>
    /// The APF block of explain: kube-apiserver's seats with the defaults (600) and Σ shares 245 + 5 = 250 as
    /// docs/traffic.md computes them; the flow schema, level and distinguisher each user's request lands in.
    /// </summary>
    [Theory]
    [InlineData("batch", "", "get pods -n jobs", "batch-jobs-low-priority (matchingPrecedence 400)", "batch-low (Limited, 12 nominal seats, rejects when full)", "ByUser = \"batch\"")]
    [InlineData("vera", "", "get pods -n team-a", "global-default (matchingPrecedence 9900)", "global-default (Limited, 48 nominal seats, queues 128 × 50)", "ByUser = \"vera\"")]
    [InlineData("root", "system:masters", "delete nodes n1", "exempt (matchingPrecedence 1)", "exempt (Exempt)", "none")]
    [InlineData("system:node:n1", "system:nodes", "get pods -n team-a", "system-nodes (matchingPrecedence 500)", "system (Limited, 72 nominal seats, queues 64 × 50)", "ByUser = \"system:node:n1\"")]
    [InlineData("system:node:n1", "system:nodes", "update nodes n1", "system-node-high (matchingPrecedence 400)", "node-high (Limited, 96 nominal seats, queues 64 × 50)", "ByUser = \"system:node:n1\"")]
    [InlineData("system:kube-controller-manager", "", "list deployments.apps -n shop", "kube-controller-manager (matchingPrecedence 800)", "workload-high (Limited, 96 nominal seats, queues 128 × 50)", "ByNamespace = \"shop\"")]
    public async Task Explain_shows_the_flow_schema_and_priority_level(string user, string group, string request, string schema, string level, string distinguisher)
    {
        var args = new List<string> { "explain", "--config", ApfConfig(), "--user", user };
        if (group.Length > 0)
        {
            args.AddRange(["--group", group]);
        }
        args.AddRange(request.Split(' '));

        var result = await PortcullisCli.RunAsync([.. args]);

        Assert.True(result.ExitCode is 0 or 1, result.ToString());
        var lines = result.Stdout.Split('\n');
        Assert.Contains("  priority and fairness:", lines);
        Assert.Contains(lines, l => l.StartsWith("    flow schema: " + schema, StringComparison.Ordinal));
        Assert.Contains("    priority level: " + level, lines);
        Assert.Contains("    distinguisher: " + distinguisher, lines);
    }

    [Fact]
    public async Task Explain_json_has_the_priority_and_fairness_object()
    {
        var result = await PortcullisCli.RunAsync("explain", "--config", ApfConfig(), "--user", "batch", "--json", "list", "jobs.batch", "-n", "jobs");

        Assert.True(result.ExitCode is 0 or 1, result.ToString());
        var apf = JsonNode.Parse(result.Stdout)!["priorityAndFairness"]!;
        Assert.True((bool)apf["enabled"]!);
        Assert.False((bool)apf["bypassed"]!);
        Assert.Equal("batch-jobs-low-priority", (string?)apf["flowSchema"]!["name"]);
        Assert.Equal(400, (int)apf["flowSchema"]!["matchingPrecedence"]!);
        Assert.Equal("ByUser", (string?)apf["flowSchema"]!["distinguisherMethod"]);
        Assert.EndsWith("batch-low.yaml:13", (string?)apf["flowSchema"]!["source"], StringComparison.Ordinal);
        Assert.Equal("batch-low", (string?)apf["priorityLevel"]!["name"]);
        Assert.Equal("Limited", (string?)apf["priorityLevel"]!["type"]);
        Assert.Equal(5, (int)apf["priorityLevel"]!["nominalConcurrencyShares"]!);
        Assert.Equal(12, (int)apf["priorityLevel"]!["nominalSeats"]!);
        Assert.Equal("Reject", (string?)apf["priorityLevel"]!["limitResponse"]);
        Assert.Equal("batch", (string?)apf["distinguisher"]);
        Assert.False(string.IsNullOrEmpty((string?)apf["flowSchema"]!["uid"]));

        var masters = await PortcullisCli.RunAsync("explain", "--config", ApfConfig(), "--user", "root", "--group", "system:masters", "--json", "delete", "nodes", "n1");
        var exempt = JsonNode.Parse(masters.Stdout)!["priorityAndFairness"]!;
        Assert.Equal("exempt", (string?)exempt["flowSchema"]!["name"]);
        Assert.Equal("Exempt", (string?)exempt["priorityLevel"]!["type"]);
    }

    [Fact]
    public async Task Explain_says_when_priority_and_fairness_is_off_or_bypassed()
    {
        var off = await PortcullisCli.RunAsync("explain", "--config", ApfConfig(enabled: false), "--user", "batch", "get", "pods", "-n", "jobs");
        Assert.True(off.ExitCode is 0 or 1, off.ToString());
        Assert.Contains("  priority and fairness: disabled (admission.priorityAndFairness.enabled is false)", off.Stdout.Split('\n'));
        var offJson = await PortcullisCli.RunAsync("explain", "--config", ApfConfig(enabled: false), "--user", "batch", "--json", "get", "pods", "-n", "jobs");
        Assert.False((bool)JsonNode.Parse(offJson.Stdout)!["priorityAndFairness"]!["enabled"]!);

        var exec = await PortcullisCli.RunAsync("explain", "--config", ApfConfig(), "--user", "batch", "create", "pods/exec", "-n", "jobs", "p1");
        Assert.Contains("  priority and fairness: bypassed", exec.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Explain_refuses_a_broken_flowcontrol_file_with_its_location()
    {
        var config = ApfConfig();
        File.WriteAllText(Path.Combine(_dir, "batch-low.yaml"), "apiVersion: flowcontrol.apiserver.k8s.io/v1\nkind: FlowSchema\nmetadata: {name: x}\nspec: {matchingPrecedence: banana}\n");

        var result = await PortcullisCli.RunAsync("explain", "--config", config, "--user", "batch", "get", "pods");

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("batch-low.yaml", result.Stderr, StringComparison.Ordinal);
        Assert.Equal("", result.Stdout);
    }
}
