using System.Security.Cryptography.X509Certificates;

namespace Portcullis.Gateway.Tests.Infrastructure;

/// <summary>
/// A temp folder with a valid configuration that names one file of every kind the snapshot reads: server
/// certificate and key, client CA bundle, token file, AuthenticationConfiguration (CEL), deny list, RBAC manifest,
/// audit policy, upstream kubeconfig with the gateway's client certificate.
/// </summary>
internal sealed class ConfigFolder : IDisposable
{
    public const string DefaultAudit = "policyFile: audit-policy.yaml\n  log: {path: audit.log}";

    public const string DenyList = """
        apiVersion: portcullis.dev/v1alpha1
        kind: DenyList
        entries:
        - user: mallory
          reason: laptop stolen

        """;

    public const string AuthenticationConfiguration = """
        apiVersion: apiserver.config.k8s.io/v1
        kind: AuthenticationConfiguration
        jwt:
        - issuer:
            url: https://127.0.0.1:9/issuer
            audiences: [kubernetes]
          claimMappings:
            username:
              expression: "claims.sub"

        """;

    public ConfigFolder()
    {
        TestPki.WritePem(Pki.IssueServer(), Path("server.crt"), Path("server.key"));
        TestPki.WritePem(Pki.IssueClient("portcullis-gateway", "portcullis:gateways"), Path("gateway.crt"), Path("gateway.key"));
        Write("clients-ca.crt", Pki.CertificatePem);
        Write("upstream-ca.crt", Pki.CertificatePem);
        Write("upstream.kubeconfig", Kubeconfig());
        Write("tokens.csv", "token-root,root,u-0,system:masters\n");
        Write("authn.yaml", AuthenticationConfiguration);
        Write("deny.yaml", DenyList);
        Write("rbac.yaml", GatewayTestHost.RbacYaml);
        Write("audit-policy.yaml", "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n");
        WriteConfig();
    }

    public string Dir { get; } = Directory.CreateTempSubdirectory("portcullis-pipeline-").FullName;
    public TestPki Pki { get; } = new("pipeline-test-ca");
    public string ConfigPath => Path("portcullis.yaml");
    private Uri Upstream { get; set; } = new("https://127.0.0.1:9");

    public string Path(string name) => System.IO.Path.Combine(Dir, name);

    public void Write(string name, string text) => File.WriteAllText(Path(name), text);

    /// <summary>The 1-based line of the first line of <paramref name="file"/> that contains <paramref name="text"/>.</summary>
    public int LineOf(string file, string text)
    {
        var lines = File.ReadAllLines(Path(file));
        var index = Array.FindIndex(lines, l => l.Contains(text, StringComparison.Ordinal));
        Assert.True(index >= 0, $"{text} is not in {file}");
        return index + 1;
    }

    public void WriteConfig(string extra = "", string tls = "", string authentication = "", string authorization = "", string modes = "[RBAC]", string audit = DefaultAudit, string admin = "drainTimeout: 2s", string upstream = "")
    {
        var rbac = modes.Contains("RBAC", StringComparison.Ordinal) || authorization.Length == 0 ? "rbac: {manifests: [rbac.yaml]}" : "";
        Write("portcullis.yaml", $"""
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            tls:
              certFile: server.crt
              keyFile: server.key
              clientCAFile: clients-ca.crt
              {tls}
            authentication:
              tokenAuthFile: tokens.csv
              authenticationConfigFile: authn.yaml
              {authentication}
            authorization:
              modes: {modes}
              denyListFile: deny.yaml
              {rbac}
              {authorization}
            audit:
              {audit}
            upstream:
              kubeconfig: upstream.kubeconfig
              requestTimeout: 10s
              {upstream}
            admin:
              {admin}

            """ + extra);
    }

    /// <summary>The upstream kubeconfig; <paramref name="user"/> replaces the gateway's client certificate.</summary>
    public string Kubeconfig(string? user = null, Uri? server = null)
    {
        if (server is not null)
        {
            Upstream = server;
        }
        return $$"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: upstream
              cluster:
                server: {{Upstream}}
                certificate-authority: upstream-ca.crt
            users:
            - name: gateway
              user:
                {{user ?? "client-certificate: gateway.crt\n    client-key: gateway.key"}}
            contexts:
            - name: upstream
              context: {cluster: upstream, user: gateway}
            current-context: upstream

            """;
    }

    public bool Trusts(X509Certificate cert)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Pki.Certificate);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var presented = X509CertificateLoader.LoadCertificate(cert.GetRawCertData());
        return chain.Build(presented);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }
}
