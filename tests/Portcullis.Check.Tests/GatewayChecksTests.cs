namespace Portcullis.Check.Tests;

public sealed class GatewayChecksTests
{
    private static string WriteConfig(string body)
    {
        var dir = TestFiles.NewDirectory();
        foreach (var file in new[] { "server.crt", "server.key", "ca.crt", "upstream.kubeconfig", "tokens.csv" })
        {
            TestFiles.Write(dir, file, "placeholder\n");
        }
        TestFiles.Write(dir, "audit-policy.yaml", HandMade.AuditPolicy);
        TestFiles.Write(dir, "admission.yaml", HandMade.AdmissionConfiguration);
        TestFiles.Write(dir, "eventconfig.yaml", HandMade.EventConfig);
        return TestFiles.Write(dir, "portcullis.yaml", "apiVersion: portcullis.dev/v1alpha1\nkind: GatewayConfiguration\n" + body.Replace("$DIR", dir, StringComparison.Ordinal));
    }

    [Fact]
    public void Secure_gateway_configuration_has_no_failures()
    {
        var path = WriteConfig("""
            listeners:
            - address: 10.0.0.10:6443
            tls:
              certFile: server.crt
              keyFile: server.key
              clientCAFile: ca.crt
            authentication:
              oidc:
                issuerURL: https://issuer.example.com
                clientID: kubernetes
            authorization:
              modes: [RBAC]
            admission:
              admissionControlConfigFile: admission.yaml
            audit:
              policyFile: audit-policy.yaml
              log:
                path: $DIR/audit.log
                maxAge: 30
                maxBackup: 10
                maxSize: 100
            upstream:
              kubeconfig: upstream.kubeconfig
            """);
        var report = ConfigurationCheck.FromGateway(path);
        Assert.True(report.InputError is null, report.InputError);
        var bad = report.Findings.Where(f => f.Status is CheckStatus.Fail or CheckStatus.Warn).ToList();
        Assert.True(bad.Count == 0, string.Join("\n", bad.Select(f => $"{f.Status} {f.Id} {f.Evidence}")));
        Assert.Equal(ExitCodes.Ok, report.ExitCode);
        Assert.Contains(report.Findings, f => f.Id == "3.2.2" && f.Status == CheckStatus.Pass);
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
            admission:
              priorityAndFairness:
                enabled: false
            upstream:
              kubeconfig: upstream.kubeconfig
            """);
        var report = ConfigurationCheck.FromGateway(path);
        Assert.Null(report.InputError);
        CheckStatus Status(string id) => Assert.Single(report.Findings, f => f.Id == id).Status;
        Assert.Equal(CheckStatus.Warn, Status("PC-L1-BIND"));
        Assert.Equal(CheckStatus.Fail, Status("1.2.1"));
        Assert.Equal(CheckStatus.Fail, Status("1.2.2"));
        Assert.Equal(CheckStatus.Fail, Status("1.2.6"));
        Assert.Equal(CheckStatus.Fail, Status("PC-L5-APF"));
        Assert.Equal(CheckStatus.Fail, Status("3.2.1"));
        Assert.Equal(CheckStatus.Fail, Status("1.2.16"));
        Assert.Equal(ExitCodes.Failures, report.ExitCode);
    }

    [Fact]
    public void Invalid_gateway_configuration_is_unreadable_input()
    {
        var path = WriteConfig("tls:\n  certFile: missing.crt\n");
        var report = ConfigurationCheck.FromGateway(path);
        Assert.Equal(ExitCodes.InputUnreadable, report.ExitCode);
        Assert.Contains("missing.crt", report.InputError, StringComparison.Ordinal);
    }
}
