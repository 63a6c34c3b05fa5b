using Portcullis.Authorization;
using Portcullis.Gateway.Hosting;
using Portcullis.Sandbox;
using Portcullis.Sandbox.Security;

namespace Portcullis.EndToEnd.Tests;

/// <summary>
/// The sandbox as the API server and <see cref="WebhookHost"/> in-process (the demo runs both in one process, so it
/// cannot stop Portcullis alone), wired by <c>portcullis webhook kubeconfig --out</c>: once Portcullis is stopped,
/// <c>failurePolicy: Deny</c> refuses what RBAC allows with kube-apiserver's 500, and <c>NoOpinion</c> lets RBAC decide.
/// </summary>
public sealed class WebhookFailurePolicyTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-e2e-failure-policy-").FullName;
    private readonly TestPki _users = new("failure-policy-ca");
    private readonly TestPki _apiServerClients = new("failure-policy-apiserver-webhook-client-ca");

    public void Dispose()
    {
        _users.Dispose();
        _apiServerClients.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private string PathOf(string name) => Path.Combine(_dir, name);

    private void WriteFiles()
    {
        File.WriteAllText(PathOf("ca.crt"), _users.CertificatePem);
        File.WriteAllText(PathOf("apiserver-webhook-client-ca.crt"), _apiServerClients.CertificatePem);
        TestPki.WritePem(_users.IssueServer(), PathOf("webhook.crt"), PathOf("webhook.key"));
        TestPki.WritePem(_apiServerClients.IssueClient("kube-apiserver"), PathOf("apiserver-webhook-client.crt"), PathOf("apiserver-webhook-client.key"));
        TestPki.WritePem(_users.IssueClient("jane", "developers"), PathOf("jane.crt"), PathOf("jane.key"));
        File.WriteAllText(PathOf("tokens.csv"), "token-ci,ci-bot,ci-bot-uid,\"ci\"\n");
        File.WriteAllText(PathOf("deny.yaml"), "apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries:\n- {user: mallory, reason: left}\n");
        Directory.CreateDirectory(PathOf("webhook-rbac"));
        File.WriteAllText(PathOf("webhook.yaml"), """
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            listeners: [{address: 127.0.0.1:0}]
            tls: {certFile: webhook.crt, keyFile: webhook.key, clientCAFile: apiserver-webhook-client-ca.crt}
            authentication: {tokenAuthFile: tokens.csv}
            authorization: {modes: [RBAC], rbac: {manifests: [webhook-rbac]}, denyListFile: deny.yaml}
            admin: {address: 127.0.0.1:0}
            """);
        // The API server's RBAC: developers read pods and configmaps in dev, nothing in prod.
        File.WriteAllText(PathOf("rbac.yaml"), """
            apiVersion: rbac.authorization.k8s.io/v1
            kind: Role
            metadata: {name: developer, namespace: dev}
            rules:
            - apiGroups: [""]
              resources: [pods, configmaps]
              verbs: [get, list]
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: RoleBinding
            metadata: {name: developers, namespace: dev}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: developer}
            subjects:
            - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: developers}
            """);
    }

    /// <summary><c>portcullis webhook kubeconfig --out</c> for <paramref name="webhook"/> with <paramref name="failurePolicy"/>: the wiring a user makes.</summary>
    private async Task<string> WireAsync(Uri webhook, string failurePolicy)
    {
        var folder = PathOf("apiserver-" + failurePolicy);
        var result = await PortcullisCli.RunAsync("webhook", "kubeconfig", "--server", webhook.GetLeftPart(UriPartial.Authority),
            "--ca", PathOf("ca.crt"), "--client-cert", PathOf("apiserver-webhook-client.crt"), "--client-key", PathOf("apiserver-webhook-client.key"),
            "--dir", folder, "--failure-policy", failurePolicy, "--authorized-ttl", "2s", "--unauthorized-ttl", "2s", "--token-cache-ttl", "2s",
            "--out", folder);
        Assert.True(result.ExitCode == 0, result.ToString());
        return folder;
    }

    private Task<SandboxServer> StartApiServerAsync(string wiring) =>
        SandboxServer.StartAsync(new SandboxOptions
        {
            ServerCertificate = _users.IssueServer(),
            ClientCA = [_users.Certificate],
            Seed = true,
            Security = new SandboxSecurityOptions
            {
                TokenWebhookKubeconfig = Path.Combine(wiring, "authentication-webhook.kubeconfig"),
                TokenWebhookCacheTtl = TimeSpan.FromSeconds(2),
                Authorizers = AuthorizationConfigurationFile.Load(Path.Combine(wiring, "authorization-config.yaml")).Authorizers,
                RbacManifests = [PathOf("rbac.yaml")],
            },
        }).WaitAsync(Timeout);

    private string JaneKubeconfig(SandboxServer apiServer, string name)
    {
        var path = PathOf(name + ".kubeconfig");
        File.WriteAllText(path, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: apiserver
              cluster: {"{"}server: "{apiServer.Uri.GetLeftPart(UriPartial.Authority)}", certificate-authority: "{PathOf("ca.crt")}"{"}"}
            users:
            - name: jane
              user: {"{"}client-certificate: "{PathOf("jane.crt")}", client-key: "{PathOf("jane.key")}"{"}"}
            contexts:
            - name: jane
              context: {"{"}cluster: apiserver, user: jane{"}"}
            current-context: jane
            """);
        return path;
    }

    [KubectlFact]
    public async Task Stopping_Portcullis_Refuses_With_Deny_And_Lets_Rbac_Decide_With_NoOpinion()
    {
        WriteFiles();
        await using var webhook = WebhookHost.Create(PathOf("webhook.yaml"));
        await webhook.StartAsync().WaitAsync(Timeout);
        await using var deny = await StartApiServerAsync(await WireAsync(webhook.ListenUris[0], "Deny"));
        await using var noOpinion = await StartApiServerAsync(await WireAsync(webhook.ListenUris[0], "NoOpinion"));
        using var janeDeny = new Kubectl(JaneKubeconfig(deny, "jane-deny"));
        using var janeNoOpinion = new Kubectl(JaneKubeconfig(noOpinion, "jane-noopinion"));

        // While Portcullis runs, both API servers ask it (no opinion) and their RBAC allows jane's pods in dev.
        var before = await janeDeny.RunAsync("get", "--raw", "/api/v1/namespaces/dev/pods");
        Assert.True(before.ExitCode == 0, before.ToString());

        await webhook.StopAsync().WaitAsync(Timeout);
        // Requests whose answers the API servers have not cached: each is a new SubjectAccessReview to a webhook that is gone.
        var denyDev = await janeDeny.RunAsync("get", "--raw", "/api/v1/namespaces/dev/configmaps");
        var noOpinionDev = await janeNoOpinion.RunAsync("get", "--raw", "/api/v1/namespaces/dev/configmaps");
        var noOpinionProd = await janeNoOpinion.RunAsync("get", "--raw", "/api/v1/namespaces/prod/configmaps");

        // Deny: refused although RBAC allows — kube-apiserver's 500 for an authorizer error without an allow.
        Assert.NotEqual(0, denyDev.ExitCode);
        Assert.Contains("InternalError", denyDev.Stderr, StringComparison.Ordinal);
        Assert.Contains("webhook authorizer", denyDev.Stderr, StringComparison.Ordinal);
        // NoOpinion: RBAC decides — allowed in dev; in prod nobody allows and the webhook's error makes it a 500.
        Assert.True(noOpinionDev.ExitCode == 0, noOpinionDev.ToString());
        Assert.Contains("\"ConfigMapList\"", noOpinionDev.Stdout, StringComparison.Ordinal);
        Assert.NotEqual(0, noOpinionProd.ExitCode);
        Assert.Contains("webhook authorizer", noOpinionProd.Stderr, StringComparison.Ordinal);
    }
}
