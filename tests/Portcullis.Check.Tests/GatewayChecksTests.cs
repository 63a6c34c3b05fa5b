using System.Security.Cryptography.X509Certificates;
using Portcullis.Check.Tests.Probe;
using Portcullis.Gateway.Snapshots;

namespace Portcullis.Check.Tests;

/// <summary>
/// <c>check --gateway</c> scores a configuration only after loading it as <c>serve</c> does, so the files it names are
/// real here (certificates from a test CA, a kubeconfig, a token file, an audit policy); only what the gateway enforces
/// can PASS.
/// </summary>
public sealed class GatewayChecksTests
{
    /// <summary>A folder with every file a gateway configuration may name, and <c>portcullis.yaml</c> with <paramref name="body"/>.</summary>
    internal static string WriteConfig(string body)
    {
        var dir = TestFiles.NewDirectory();
        using (var pki = new ProbePki())
        {
            TestFiles.Write(dir, "server.crt", pki.Server.ExportCertificatePem());
            TestFiles.Write(dir, "server.key", pki.Server.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
            TestFiles.Write(dir, "gateway.crt", pki.Client.ExportCertificatePem());
            TestFiles.Write(dir, "gateway.key", pki.Client.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
            TestFiles.Write(dir, "ca.crt", pki.CaPem);
        }
        TestFiles.Write(dir, "upstream.kubeconfig", """
            apiVersion: v1
            kind: Config
            clusters: [{name: upstream, cluster: {server: "https://127.0.0.1:6444", certificate-authority: ca.crt}}]
            users: [{name: gateway, user: {client-certificate: gateway.crt, client-key: gateway.key}}]
            contexts: [{name: upstream, context: {cluster: upstream, user: gateway}}]
            current-context: upstream
            """);
        TestFiles.Write(dir, "authn-webhook.kubeconfig", """
            apiVersion: v1
            kind: Config
            clusters: [{name: authn, cluster: {server: "https://127.0.0.1:6445/authenticate", certificate-authority: ca.crt}}]
            users: [{name: gateway, user: {client-certificate: gateway.crt, client-key: gateway.key}}]
            contexts: [{name: authn, context: {cluster: authn, user: gateway}}]
            current-context: authn
            """);
        TestFiles.Write(dir, "tokens.csv", "t0ken,jane,u-1\n");
        TestFiles.Write(dir, "audit-policy.yaml", HandMade.AuditPolicy);
        return TestFiles.Write(dir, "portcullis.yaml", "apiVersion: portcullis.dev/v1alpha1\nkind: GatewayConfiguration\n" + body.Replace("$DIR", dir, StringComparison.Ordinal));
    }

    /// <summary>What <c>portcullis check --gateway</c> does: load as serve does, then score.</summary>
    private static CheckReport Check(string path)
    {
        using var load = GatewayConfigurationPipeline.Load(path);
        return ConfigurationCheck.FromGateway(path, load.Configuration, load.AuditPolicy, load.Errors);
    }

    internal const string SecureBody = """
        listeners:
        - address: 10.0.0.10:6443
        tls:
          certFile: server.crt
          keyFile: server.key
          clientCAFile: ca.crt
        authentication:
          webhook:
            configFile: authn-webhook.kubeconfig
        authorization:
          modes: [RBAC]
        audit:
          policyFile: audit-policy.yaml
          log:
            path: $DIR/audit.log
            maxAge: 30
            maxBackup: 10
            maxSize: 100
        upstream:
          kubeconfig: upstream.kubeconfig
        """;

    [Fact]
    public void Secure_gateway_configuration_fails_only_on_the_admission_layer_the_gateway_lacks()
    {
        var report = Check(WriteConfig(SecureBody));

        Assert.True(report.InputError is null, report.InputError);
        var bad = report.Findings.Where(f => f.Status is CheckStatus.Fail or CheckStatus.Warn).ToList();
        Assert.True(bad.All(f => f.Layer == CheckLayer.Admission), string.Join("\n", bad.Select(f => $"{f.Status} {f.Id} {f.Evidence}")));
        Assert.Contains(report.Findings, f => f.Id == "3.2.2" && f.Status == CheckStatus.Pass);
        Assert.Contains(report.Findings, f => f.Id == "1.2.25" && f.Status == CheckStatus.Pass); // clientCAFile: mTLS is enforced
    }

    [Fact]
    public void Gateway_scores_APF_as_enforced_by_default_and_EventRateLimit_as_missing()
    {
        // API Priority and Fairness is on unless admission.priorityAndFairness.enabled is false; EventRateLimit is not built.
        var report = Check(WriteConfig(SecureBody));

        Assert.Null(report.InputError);
        var apf = Assert.Single(report.Findings, f => f.Id == "PC-L5-APF");
        Assert.Equal(CheckStatus.Pass, apf.Status);
        Assert.Contains("admission.priorityAndFairness.enabled=true", apf.Evidence, StringComparison.Ordinal);
        var off = Check(WriteConfig(SecureBody + "\nadmission:\n  priorityAndFairness:\n    enabled: false\n"));
        Assert.Null(off.InputError);
        var apfOff = Assert.Single(off.Findings, f => f.Id == "PC-L5-APF");
        Assert.Equal(CheckStatus.Fail, apfOff.Status);
        Assert.Contains("not enforced by the gateway", apfOff.Evidence, StringComparison.Ordinal);
        var eventRateLimit = Assert.Single(report.Findings, f => f.Id == "1.2.9");
        Assert.Equal(CheckStatus.Fail, eventRateLimit.Status);
        Assert.DoesNotContain(report.Findings, f => f.Layer == CheckLayer.Admission && f.Status == CheckStatus.Pass && f.Id != "PC-L5-APF");
        Assert.Equal(ExitCodes.Failures, report.ExitCode);
    }

    [Fact]
    public void Gateway_scores_EventRateLimit_1_2_9_as_enforced_when_its_file_is_valid()
    {
        var path = WriteConfig(SecureBody + "\nadmission:\n  admissionControlConfigFile: admission.yaml\n");
        var dir = Path.GetDirectoryName(path)!;
        File.WriteAllText(Path.Combine(dir, "admission.yaml"), "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: EventRateLimit\n  path: eventconfig.yaml\n");
        File.WriteAllText(Path.Combine(dir, "eventconfig.yaml"), "apiVersion: eventratelimit.admission.k8s.io/v1alpha1\nkind: Configuration\nlimits:\n- {type: Namespace, qps: 50, burst: 100}\n");

        var pass = Assert.Single(Check(path).Findings, f => f.Id == "1.2.9");
        Assert.Equal(CheckStatus.Pass, pass.Status);
        Assert.Contains("the gateway enforces EventRateLimit (Namespace qps 50 burst 100)", pass.Evidence, StringComparison.Ordinal);

        File.WriteAllText(Path.Combine(dir, "eventconfig.yaml"), "apiVersion: eventratelimit.admission.k8s.io/v1alpha1\nkind: Configuration\nlimits:\n- {type: Namespace, qps: 0, burst: 100}\n");
        // an invalid file: the gateway would not load the configuration, so neither does check (not a pass)
        var broken = Check(path);
        Assert.Equal(ExitCodes.InputUnreadable, broken.ExitCode);
        Assert.Contains("eventconfig.yaml:4: limits[0].qps: Invalid value: 0: must be positive", broken.InputError, StringComparison.Ordinal);
        Assert.Empty(broken.Findings);
    }

    [Fact]
    public void Admission_section_is_unreadable_input_not_a_pass()
    {
        // Before, admissionControlConfigFile with EventRateLimit limits scored 1.2.9 PASS though nothing enforced them.
        var report = Check(WriteConfig(SecureBody + """

            admission:
              store: redis://127.0.0.1:6379
            """));

        Assert.Equal(ExitCodes.InputUnreadable, report.ExitCode);
        Assert.Contains("admission.store: not supported yet", report.InputError, StringComparison.Ordinal);
        Assert.Empty(report.Findings);
    }

    [Fact]
    public void Insecure_gateway_configuration_reports_each_weakness()
    {
        var path = WriteConfig("""
            listeners:
            - address: 0.0.0.0:6443
            tls:
              certFile: server.crt
              keyFile: server.key
            authentication:
              anonymous:
                enabled: true
              tokenAuthFile: tokens.csv
            authorization:
              modes: [AlwaysAllow]
            upstream:
              kubeconfig: upstream.kubeconfig
            """);
        var report = Check(path);
        Assert.Null(report.InputError);
        CheckStatus Status(string id) => Assert.Single(report.Findings, f => f.Id == id).Status;
        Assert.Equal(CheckStatus.Warn, Status("PC-L1-BIND"));
        Assert.Equal(CheckStatus.Fail, Status("1.2.1"));
        Assert.Equal(CheckStatus.Fail, Status("1.2.2"));
        Assert.Equal(CheckStatus.Fail, Status("1.2.6"));
        Assert.Equal(CheckStatus.Pass, Status("PC-L5-APF")); // on by default
        Assert.Equal(CheckStatus.Fail, Status("3.2.1"));
        Assert.Equal(CheckStatus.Fail, Status("1.2.16"));
        Assert.Equal(ExitCodes.Failures, report.ExitCode);
    }

    [Fact]
    public void Invalid_gateway_configuration_is_unreadable_input()
    {
        var path = WriteConfig("tls:\n  certFile: missing.crt\n");
        var report = Check(path);
        Assert.Equal(ExitCodes.InputUnreadable, report.ExitCode);
        Assert.Contains("missing.crt", report.InputError, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_serve_could_not_load_is_unreadable_input()
    {
        // Before, check read only the configuration file and scored a gateway that serve would refuse to start.
        var path = WriteConfig(SecureBody);
        File.WriteAllText(Path.Combine(Path.GetDirectoryName(path)!, "server.crt"), "not a certificate\n");

        var report = Check(path);

        Assert.Equal(ExitCodes.InputUnreadable, report.ExitCode);
        Assert.Contains("portcullis.yaml:6: tls.certFile: cannot load the server certificate", report.InputError, StringComparison.Ordinal);
    }

    [Fact]
    public void The_audit_policy_is_scored_as_the_pipeline_loaded_it_not_read_again()
    {
        // Before, check --gateway read audit.policyFile a second time after the pipeline had parsed it.
        var path = WriteConfig(SecureBody);
        using var load = GatewayConfigurationPipeline.Load(path);
        Assert.True(load.IsValid, string.Join("\n", load.Errors));
        var policyFile = Path.Combine(Path.GetDirectoryName(path)!, "audit-policy.yaml");
        File.WriteAllText(policyFile, "level: Bogus\n"); // changed after the load: a second read would fail 3.2.2's policy check

        var report = ConfigurationCheck.FromGateway(path, load.Configuration, load.AuditPolicy, load.Errors);

        var parses = Assert.Single(report.Findings, f => f.Id == "PC-L6-AUDIT-POLICY");
        Assert.Equal(CheckStatus.Pass, parses.Status);
        Assert.Contains($"{policyFile}: audit.k8s.io/v1 Policy with {load.AuditPolicy!.Rules.Count} rule(s)", parses.Evidence, StringComparison.Ordinal);
        Assert.Contains(report.Findings, f => f.Id == "3.2.2" && f.Status == CheckStatus.Pass);
    }
}
