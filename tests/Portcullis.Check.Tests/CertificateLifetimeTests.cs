using System.Security.Cryptography.X509Certificates;
using System.Text;
using Portcullis.Gateway.Snapshots;

namespace Portcullis.Check.Tests;

/// <summary>
/// <c>PC-L2-CERT-LIFETIME</c>: <c>check</c> reports the lifetime of the client certificates it finds — files named by
/// kube-apiserver's flags, kubeconfigs (<c>client-certificate</c> and <c>client-certificate-data</c>), the gateway's own —
/// and warns above 365 days, or above <c>tls.clientCertificates.maxLifetime</c> for a gateway configuration.
/// </summary>
public sealed class CertificateLifetimeTests
{
    private const string Rule = "PC-L2-CERT-LIFETIME";

    [Fact]
    public void Manifest_client_certificates_and_webhook_kubeconfigs_are_reported_with_their_lifetime()
    {
        var root = TestFiles.NewDirectory();
        HandMade.WriteNodeFiles(root); // kubelet and etcd client certificates of 365 days
        using var pki = new TestPki("front-proxy-ca");
        using var proxy = pki.IssueClient(TimeSpan.FromDays(400), "front-proxy-client");
        TestFiles.Write(root, "/etc/kubernetes/pki/front-proxy-client.crt", proxy.ExportCertificatePem());
        using var webhook = pki.IssueClient(TimeSpan.FromDays(3650), "authn-webhook-client");
        var data = Convert.ToBase64String(Encoding.UTF8.GetBytes(webhook.ExportCertificatePem()));
        var key = Convert.ToBase64String(Encoding.UTF8.GetBytes(webhook.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem()));
        TestFiles.Write(root, "/etc/kubernetes/authn-webhook.kubeconfig", $$"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: authn
              cluster: {server: "https://authn.example:8443/authenticate"}
            users:
            - name: apiserver
              user:
                client-certificate-data: {{data}}
                client-key-data: {{key}}
            contexts:
            - name: authn
              context: {cluster: authn, user: apiserver}
            current-context: authn
            """);
        string[] flags = [.. HandMade.SecureFlags, "--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt",
            "--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key",
            "--authentication-token-webhook-config-file=/etc/kubernetes/authn-webhook.kubeconfig"];
        var manifest = TestFiles.Write(TestFiles.NewDirectory(), "kube-apiserver.yaml", HandMade.Manifest(flags));

        var report = ConfigurationCheck.FromManifest(manifest, root);

        Assert.Null(report.InputError);
        var findings = report.Findings.Where(f => f.Id == Rule).ToList();
        Assert.Equal(4, findings.Count);
        var kubelet = Assert.Single(findings, f => f.Evidence.StartsWith("--kubelet-client-certificate=", StringComparison.Ordinal));
        Assert.Equal(CheckStatus.Pass, kubelet.Status);
        Assert.Contains("CN=kube-apiserver-kubelet-client", kubelet.Evidence, StringComparison.Ordinal);
        Assert.Contains(" valid for 365d (", kubelet.Evidence, StringComparison.Ordinal);
        Assert.EndsWith("within 365d (the default limit)", kubelet.Evidence, StringComparison.Ordinal);
        Assert.Equal(CheckStatus.Pass, Assert.Single(findings, f => f.Evidence.StartsWith("--etcd-certfile=", StringComparison.Ordinal)).Status);
        var front = Assert.Single(findings, f => f.Evidence.StartsWith("--proxy-client-cert-file=", StringComparison.Ordinal));
        Assert.Equal(CheckStatus.Warn, front.Status);
        Assert.Contains("CN=front-proxy-client valid for 400d", front.Evidence, StringComparison.Ordinal);
        Assert.EndsWith("longer than 365d (the default limit)", front.Evidence, StringComparison.Ordinal);
        Assert.NotEmpty(front.Remediation);
        Assert.Equal(Path.Combine(root, "etc/kubernetes/pki/front-proxy-client.crt"), front.Location);
        var hook = Assert.Single(findings, f => f.Evidence.StartsWith("--authentication-token-webhook-config-file=", StringComparison.Ordinal));
        Assert.Equal(CheckStatus.Warn, hook.Status);
        Assert.Contains("users[apiserver]: CN=authn-webhook-client valid for 3650d", hook.Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public void Gateway_kubeconfig_certificates_are_held_to_the_configured_max_lifetime()
    {
        var path = GatewayChecksTests.WriteConfig(GatewayChecksTests.SecureBody.Replace("  clientCAFile: ca.crt", "  clientCAFile: ca.crt\n  clientCertificates: {maxLifetime: 90d}", StringComparison.Ordinal));
        var dir = Path.GetDirectoryName(path)!;
        using var pki = new TestPki("upstream-ca");
        TestPki.WritePem(pki.IssueClient(TimeSpan.FromDays(364), "portcullis-gateway", "portcullis:gateways"), Path.Combine(dir, "gateway.crt"), Path.Combine(dir, "gateway.key"));

        var report = Check(path);

        Assert.True(report.InputError is null, report.InputError);
        var findings = report.Findings.Where(f => f.Id == Rule).ToList();
        Assert.Equal(2, findings.Count); // upstream.kubeconfig and authentication.webhook.configFile both use gateway.crt
        Assert.All(findings, f => Assert.Equal(CheckStatus.Warn, f.Status));
        var upstream = Assert.Single(findings, f => f.Evidence.StartsWith("upstream.kubeconfig=upstream.kubeconfig users[gateway]: ", StringComparison.Ordinal));
        Assert.Contains("CN=portcullis-gateway", upstream.Evidence, StringComparison.Ordinal);
        Assert.Contains(" valid for 364d (", upstream.Evidence, StringComparison.Ordinal);
        Assert.EndsWith("longer than 90d (tls.clientCertificates.maxLifetime)", upstream.Evidence, StringComparison.Ordinal);
        Assert.Equal(Path.Combine(dir, "upstream.kubeconfig"), upstream.Location);
    }

    [Fact]
    public void Without_a_configured_limit_the_gateway_kubeconfig_is_held_to_365_days()
    {
        var path = GatewayChecksTests.WriteConfig(GatewayChecksTests.SecureBody);
        var dir = Path.GetDirectoryName(path)!;
        using var pki = new TestPki("upstream-ca");
        TestPki.WritePem(pki.IssueClient(TimeSpan.FromDays(364), "portcullis-gateway"), Path.Combine(dir, "gateway.crt"), Path.Combine(dir, "gateway.key"));

        var report = Check(path);

        var upstream = Assert.Single(report.Findings, f => f.Id == Rule && f.Evidence.StartsWith("upstream.kubeconfig=", StringComparison.Ordinal));
        Assert.Equal(CheckStatus.Pass, upstream.Status);
        Assert.EndsWith("valid for 364d", upstream.Evidence[..upstream.Evidence.IndexOf(" (", StringComparison.Ordinal)], StringComparison.Ordinal);
        Assert.EndsWith("within 365d (the default limit)", upstream.Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_cli_prints_the_lifetime_finding_for_a_gateway_configuration()
    {
        var path = GatewayChecksTests.WriteConfig(GatewayChecksTests.SecureBody);
        var dir = Path.GetDirectoryName(path)!;
        using var pki = new TestPki("upstream-ca");
        TestPki.WritePem(pki.IssueClient(TimeSpan.FromDays(400), "portcullis-gateway"), Path.Combine(dir, "gateway.crt"), Path.Combine(dir, "gateway.key"));

        var result = await PortcullisCli.RunAsync("check", "--gateway", path, "--output", "json");

        using var json = System.Text.Json.JsonDocument.Parse(result.Stdout);
        Assert.Equal(System.Text.Json.JsonValueKind.Object, json.RootElement.ValueKind);
        var text = result.Stdout;
        Assert.Contains(Rule, text, StringComparison.Ordinal);
        Assert.Contains("valid for 400d", text, StringComparison.Ordinal);
        Assert.Contains("longer than 365d (the default limit)", text, StringComparison.Ordinal);
    }

    private static CheckReport Check(string path)
    {
        using var load = GatewayConfigurationPipeline.Load(path);
        return ConfigurationCheck.FromGateway(path, load.Configuration, load.AuditPolicy, load.Errors);
    }
}
