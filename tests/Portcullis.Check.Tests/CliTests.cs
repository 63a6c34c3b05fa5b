using System.Text;
using System.Text.Json;
using System.Xml.Linq;
using Portcullis.Check.Tests.Probe;

namespace Portcullis.Check.Tests;

/// <summary>The real <c>portcullis</c> executable: options, exit codes and output formats end to end.</summary>
public sealed class CliTests
{
    internal static Task<CliResult> RunAsync(params string[] args) => PortcullisCli.RunAsync(args);

    [Fact]
    public async Task Check_exit_codes_are_0_1_2()
    {
        var root = TestFiles.NewDirectory();
        HandMade.WriteNodeFiles(root);
        var secure = TestFiles.Write(TestFiles.NewDirectory(), "secure.yaml", HandMade.Manifest(HandMade.SecureFlags));
        var (ok, okOut, _) = await RunAsync("check", "--manifest", secure, "--root", root);
        Assert.True(ok == 0, okOut);
        Assert.Contains("0 failed", okOut, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', okOut);

        var failing = TestFiles.Fixture("apiserver-manifests/checkov/example_ApiServerAnonymousAuth/ApiServer-AnonymousAuth-True-FAILED.yaml");
        var (fail, failOut, _) = await RunAsync("check", "--manifest", failing);
        Assert.Equal(1, fail);
        Assert.Contains("[FAIL] 1.2.1", failOut, StringComparison.Ordinal);

        var (unreadable, _, _) = await RunAsync("check", "--manifest", Path.Combine(root, "absent.yaml"));
        Assert.Equal(2, unreadable);
        var (noInput, noInputOut, _) = await RunAsync("check");
        Assert.Equal(2, noInput);
        Assert.Contains("exactly one of", noInputOut, StringComparison.Ordinal);
    }

    // Exit 1 means "denied" to explain/who-can and "failed" to check: a usage error must never read as an answer.
    [Theory]
    [InlineData("explain", "--user")]
    [InlineData("firewall", "--format")]
    [InlineData("check --no-such-flag", "--no-such-flag")]
    [InlineData("no-such-command", "no-such-command")]
    public async Task A_usage_error_exits_2_naming_what_is_wrong_with_a_help_hint(string command, string named)
    {
        var (code, stdout, stderr) = await RunAsync(command.Split(' '));

        Assert.True(code == 2, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains(named, stderr, StringComparison.Ordinal);
        Assert.Contains("--help' for usage.", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_webhook_wiring_portcullis_prints_is_recognised_and_passes_check()
    {
        var root = TestFiles.NewDirectory();
        HandMade.WriteNodeFiles(root);
        var folder = Path.Combine(root, "etc", "kubernetes", "portcullis");
        using var pki = new TestPki("portcullis-webhook");
        TestFiles.Write(root, "etc/kubernetes/portcullis/ca.crt", pki.CertificatePem);
        var (wired, wiredOut, wiredErr) = await RunAsync("webhook", "kubeconfig", "--server", "https://portcullis.kube-system.svc:8443",
            "--ca", "/etc/kubernetes/portcullis/ca.crt", "--out", folder);
        Assert.True(wired == 0, wiredOut + wiredErr);
        // The printed flags replace --authorization-mode (an AuthorizationConfiguration takes its place).
        var flags = File.ReadAllLines(Path.Combine(folder, "kube-apiserver-flags.txt")).Where(l => l.Length > 0)
            .Select(l => (l[2..l.IndexOf('=')], (string?)l[(l.IndexOf('=') + 1)..]))
            .Append(("authorization-mode", null)).ToArray();
        var manifest = TestFiles.Write(TestFiles.NewDirectory(), "kube-apiserver.yaml", HandMade.Manifest(HandMade.With(flags)));

        var (code, json, stderr) = await RunAsync("check", "--manifest", manifest, "--root", root, "-o", "json");

        Assert.True(code == 0, json + stderr);
        using var doc = JsonDocument.Parse(json);
        var findings = doc.RootElement.GetProperty("findings").EnumerateArray()
            .GroupBy(f => f.GetProperty("id").GetString()!)
            .ToDictionary(g => g.Key, g => (Status: g.First().GetProperty("status").GetString(), Evidence: g.First().GetProperty("evidence").GetString()));
        Assert.Equal("pass", findings["PC-L3-AUTHN-WEBHOOK"].Status, ignoreCase: true);
        Assert.StartsWith("/etc/kubernetes/portcullis/authentication-webhook.kubeconfig:6 (read at ", findings["PC-L3-AUTHN-WEBHOOK"].Evidence, StringComparison.Ordinal);
        Assert.EndsWith("): https://portcullis.kube-system.svc:8443/authenticate verified with certificate-authority /etc/kubernetes/portcullis/ca.crt; TokenReview v1",
            findings["PC-L3-AUTHN-WEBHOOK"].Evidence, StringComparison.Ordinal);
        Assert.Equal("pass", findings["PC-L3-WEBHOOK-TTL"].Status, ignoreCase: true);
        Assert.Equal("pass", findings["PC-L4-AUTHZ-WEBHOOK"].Status, ignoreCase: true);
    }

    [Fact]
    public async Task Check_gateway_reports_the_admission_layer_the_gateway_lacks_as_failed()
    {
        var config = GatewayChecksTests.WriteConfig(GatewayChecksTests.SecureBody);

        var (code, json, stderr) = await RunAsync("check", "--gateway", config, "-o", "json");

        Assert.True(code == 1, json + stderr);
        using var doc = JsonDocument.Parse(json);
        var findings = doc.RootElement.GetProperty("findings").EnumerateArray().ToList();
        // API Priority and Fairness is on by default in the gateway; EventRateLimit needs admission.admissionControlConfigFile
        Assert.Contains(findings, f => f.GetProperty("id").GetString() == "PC-L5-APF" && f.GetProperty("status").GetString() == "PASS");
        Assert.Contains(findings, f => f.GetProperty("id").GetString() == "1.2.9" && f.GetProperty("status").GetString() == "FAIL");
        Assert.DoesNotContain(findings, f => f.GetProperty("layer").GetString()!.StartsWith("L5", StringComparison.Ordinal) && f.GetProperty("status").GetString() == "PASS"
            && f.GetProperty("id").GetString() != "PC-L5-APF");
    }

    [Fact]
    public async Task Check_writes_json_sarif_and_junit()
    {
        var failing = TestFiles.Fixture("apiserver-manifests/checkov/example_ApiServerAuthorizationModeNotAlwaysAllow/ApiServer-FAILED.yaml");
        var (code, json, _) = await RunAsync("check", "--manifest", failing, "--output", "json");
        Assert.Equal(1, code);
        using (var doc = JsonDocument.Parse(json))
        {
            Assert.Contains(doc.RootElement.GetProperty("findings").EnumerateArray(), f => f.GetProperty("id").GetString() == "1.2.6" && f.GetProperty("status").GetString() == "FAIL");
        }
        var (_, sarif, _) = await RunAsync("check", "--manifest", failing, "-o", "sarif");
        using (var doc = JsonDocument.Parse(sarif))
        {
            var results = doc.RootElement.GetProperty("runs")[0].GetProperty("results").GetArrayLength();
            OutputTests.AssertValidSarif(sarif, results);
            Assert.True(results > 0);
        }
        var (_, junit, _) = await RunAsync("check", "--flags", "kube-apiserver --anonymous-auth=true --authorization-mode=AlwaysAllow", "-o", "junit");
        var (tests, failures) = OutputTests.AssertValidJunit(junit);
        Assert.True(tests > 40 && failures > 5, $"{tests} tests, {failures} failures");
        Assert.Contains(XDocument.Parse(junit).Descendants("testcase"), t => ((string)t.Attribute("name")!).StartsWith("1.2.6 ", StringComparison.Ordinal) && t.Element("failure") is not null);
    }

    [Fact]
    public async Task Probe_with_a_kubeconfig_shows_APF_headers_identity_and_rights()
    {
        using var cts = new CancellationTokenSource(PortcullisCli.Timeout);
        using var pki = new ProbePki();
        await using var server = await TestApiServer.StartAsync(pki, new ServerMode(RequireClientCertificate: false, AllowLegacyTls: false, AnonymousAllowed: false, BearerToken: "t0ken-for-tests"), cts.Token);
        var kubeconfig = Kubeconfig(pki, server.Endpoint, "t0ken-for-tests");
        var ca = TestFiles.Write(TestFiles.NewDirectory(), "ca.pem", pki.CaPem);

        var (code, json, stderr) = await RunAsync("probe", server.Endpoint.ToString(), "--kubeconfig", kubeconfig, "--ca", ca, "-o", "json");

        Assert.True(code == 0, json + stderr);
        using var doc = JsonDocument.Parse(json);
        var findings = doc.RootElement.GetProperty("findings").EnumerateArray().ToDictionary(f => f.GetProperty("id").GetString()!, f => (Status: f.GetProperty("status").GetString(), Evidence: f.GetProperty("evidence").GetString()!));
        Assert.True(findings.ContainsKey("PC-P5-APF"), json);
        Assert.Equal("PASS", findings["PC-P5-APF"].Status);
        Assert.Contains(TestApiServer.FlowSchemaUid, findings["PC-P5-APF"].Evidence, StringComparison.Ordinal);
        Assert.Contains(TestApiServer.PriorityLevelUid, findings["PC-P5-APF"].Evidence, StringComparison.Ordinal);
        Assert.Contains("alice", findings["PC-P3-IDENTITY"].Evidence, StringComparison.Ordinal);
        Assert.Contains("get,list,watch core/pods", findings["PC-P4-RIGHTS"].Evidence, StringComparison.Ordinal);
        Assert.Equal("PASS", findings["PC-P3-ANON-NAMESPACES"].Status);
        Assert.DoesNotContain("t0ken-for-tests", json, StringComparison.Ordinal);
    }

    private static string Kubeconfig(ProbePki pki, Uri server, string token)
    {
        var caData = Convert.ToBase64String(Encoding.ASCII.GetBytes(pki.CaPem));
        return TestFiles.Write(TestFiles.NewDirectory(), "kubeconfig", $$"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: test
              cluster:
                server: {{server}}
                certificate-authority-data: {{caData}}
            users:
            - name: alice
              user:
                token: {{token}}
            contexts:
            - name: test
              context: {cluster: test, user: alice}
            current-context: test
            """);
    }

    [Fact]
    public async Task Check_of_a_live_cluster_reads_the_apiserver_pod_APF_objects_and_the_kubernetes_service()
    {
        using var cts = new CancellationTokenSource(PortcullisCli.Timeout);
        using var pki = new ProbePki();
        await using var server = await TestApiServer.StartAsync(pki, new ServerMode(false, false, AnonymousAllowed: false, BearerToken: "live-t0ken"), cts.Token);
        var kubeconfig = Kubeconfig(pki, server.Endpoint, "live-t0ken");

        var (code, json, stderr) = await RunAsync("check", "--kubeconfig", kubeconfig, "-o", "json");

        Assert.True(code == 1, json + stderr);
        using var doc = JsonDocument.Parse(json);
        Assert.Contains("kube-apiserver-cp1", doc.RootElement.GetProperty("source").GetString(), StringComparison.Ordinal);
        var findings = doc.RootElement.GetProperty("findings").EnumerateArray().ToDictionary(f => f.GetProperty("id").GetString()!, f => (Status: f.GetProperty("status").GetString(), Evidence: f.GetProperty("evidence").GetString()!));
        Assert.Equal("FAIL", findings["1.2.1"].Status);
        Assert.Equal("PASS", findings["1.2.8"].Status);
        Assert.Equal("PASS", findings["PC-L5-APF"].Status);
        Assert.Contains("2 FlowSchema(s)", findings["PC-L5-APF"].Evidence, StringComparison.Ordinal);
        Assert.Equal("FAIL", findings["PC-L1-SERVICE"].Status);
        Assert.Contains("203.0.113.7", findings["PC-L1-SERVICE"].Evidence, StringComparison.Ordinal);
        Assert.DoesNotContain("live-t0ken", json, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_of_an_unreachable_cluster_exits_2()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var pki = new ProbePki();
        var kubeconfig = Kubeconfig(pki, new Uri($"https://127.0.0.1:{port}"), "x");
        var (code, stdout, _) = await RunAsync("check", "--kubeconfig", kubeconfig);
        Assert.Equal(2, code);
        Assert.Contains("cannot list kube-system pods", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Probe_of_a_closed_port_is_a_finding_not_a_stack_trace()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var (code, stdout, stderr) = await RunAsync("probe", $"https://127.0.0.1:{port}", "--timeout", "5");
        Assert.Equal(1, code);
        Assert.Contains("[FAIL] PC-P1-REACHABLE", stdout, StringComparison.Ordinal);
        Assert.Contains("connection refused", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stdout + stderr, StringComparison.Ordinal);
    }
}
