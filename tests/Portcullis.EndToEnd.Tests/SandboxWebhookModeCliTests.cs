namespace Portcullis.EndToEnd.Tests;

/// <summary><c>portcullis sandbox</c>'s webhook-mode flags: wired to the authorizers, and every mistake refused with what and where.</summary>
public sealed class SandboxWebhookModeCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-sandbox-cli-").FullName;
    private readonly string[] _tls;

    public SandboxWebhookModeCliTests()
    {
        using var pki = new TestPki("sandbox-cli-ca");
        var ca = Path.Combine(_dir, "ca.crt");
        File.WriteAllText(ca, pki.CertificatePem);
        var cert = Path.Combine(_dir, "server.crt");
        var key = Path.Combine(_dir, "server.key");
        TestPki.WritePem(pki.IssueServer("localhost"), cert, key);
        _tls = ["sandbox", "--address", "127.0.0.1:0", "--cert", cert, "--key", key, "--client-ca", ca];
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public async Task An_AuthorizationConfiguration_With_Errors_Is_Refused_Naming_File_Line_And_Field()
    {
        var config = Write("authz.yaml", """
            apiVersion: apiserver.config.k8s.io/v1
            kind: AuthorizationConfiguration
            authorizers:
              - type: Webhook
                name: portcullis
                webhook:
                  timeout: 45s
                  subjectAccessReviewVersion: v1
                  failurePolicy: Deny
                  connectionInfo: {type: KubeConfigFile, kubeConfigFile: /nonexistent/authz.kubeconfig}
              - {type: ABAC, name: abac}
            """);

        var result = await PortcullisCli.RunAsync([.. _tls, "--authorization-config", config]);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains($"{config}:7: authorizers[0].webhook.timeout: must be more than 0s and at most 30s, not 45s", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Webhook_Flags_That_Would_Do_Nothing_Are_Refused()
    {
        var config = Write("authz.yaml", """
            apiVersion: apiserver.config.k8s.io/v1
            kind: AuthorizationConfiguration
            authorizers:
              - {type: RBAC, name: rbac}
            """);

        var alone = await PortcullisCli.RunAsync([.. _tls, "--authentication-token-webhook-cache-ttl", "5s"]);
        var both = await PortcullisCli.RunAsync([.. _tls, "--authorization-config", config, "--authorization-webhook", config]);
        var badTtl = await PortcullisCli.RunAsync([.. _tls, "--rbac", config, "--authentication-token-webhook-cache-ttl", "soon"]);

        Assert.True(alone.ExitCode == 2, alone.ToString());
        Assert.Contains("--authentication-token-webhook-cache-ttl: applies to webhook mode only", alone.Stderr, StringComparison.Ordinal);
        Assert.True(both.ExitCode == 2, both.ToString());
        Assert.Contains("--authorization-webhook: cannot be used with --authorization-config", both.Stderr, StringComparison.Ordinal);
        Assert.True(badTtl.ExitCode == 2, badTtl.ToString());
        Assert.Contains("--authentication-token-webhook-cache-ttl: \"soon\" is not a duration", badTtl.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_Legacy_Webhook_Flag_Puts_The_Webhook_Before_Rbac()
    {
        var kubeconfig = Write("authz.kubeconfig", """
            apiVersion: v1
            kind: Config
            clusters:
            - name: webhook
              cluster: {server: "https://127.0.0.1:9/authorize"}
            users:
            - name: apiserver
              user: {token: not-used}
            contexts:
            - name: webhook
              context: {cluster: webhook, user: apiserver}
            current-context: webhook
            """);
        using var process = PortcullisCli.Start([.. _tls, "--authorization-webhook", kubeconfig]);
        try
        {
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(PortcullisCli.Timeout);

            Assert.NotNull(line);
            Assert.Contains("webhook mode: authorizers system:masters, Webhook, RBAC", line, StringComparison.Ordinal);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync().WaitAsync(PortcullisCli.Timeout);
        }
    }
}
