using System.Security.Cryptography.X509Certificates;

namespace Portcullis.Sandbox.Tests;

/// <summary>
/// The certificates the sandbox tests share, made once from Portcullis.Testing's <see cref="TestPki"/> (creating keys is
/// the slow part): a CA, a server certificate for 127.0.0.1/localhost and alice's client certificate.
/// </summary>
public sealed class SandboxPki
{
    private static readonly Lazy<SandboxPki> SharedInstance = new(() => new SandboxPki("sandbox-test-ca"));
    private static readonly Lazy<SandboxPki> OtherInstance = new(() => new SandboxPki("intruder-ca"));

    private SandboxPki(string caName)
    {
        var pki = new TestPki(caName, TimeSpan.FromDays(2));
        Ca = pki.Certificate;
        Server = pki.IssueServer("localhost");
        Client = pki.IssueClient("alice", "system:masters", "dev-team");
        Bob = pki.IssueClient("bob", "dev");
    }

    /// <summary>The PKI shared by the tests.</summary>
    public static SandboxPki Shared => SharedInstance.Value;

    /// <summary>An unrelated PKI whose client certificates the sandbox must refuse.</summary>
    public static SandboxPki Other => OtherInstance.Value;

    public X509Certificate2 Ca { get; }

    public X509Certificate2 Server { get; }

    /// <summary>CN=alice, O=system:masters, O=dev-team.</summary>
    public X509Certificate2 Client { get; }

    /// <summary>CN=bob, O=dev: no privileged group, for webhook mode's authorization tests.</summary>
    public X509Certificate2 Bob { get; }

    /// <summary>Writes a kubeconfig for alice (namespace dev) against <paramref name="server"/> into <paramref name="directory"/>; returns its path.</summary>
    public static string WriteKubeconfig(string directory, SandboxServer server)
    {
        ArgumentNullException.ThrowIfNull(server);
        var ca = Path.Combine(directory, "ca.crt");
        var cert = Path.Combine(directory, "client.crt");
        var key = Path.Combine(directory, "client.key");
        File.WriteAllText(ca, Shared.Ca.ExportCertificatePem());
        TestPki.WritePem(Shared.Client, cert, key);
        var kubeconfig = Path.Combine(directory, "kubeconfig");
        File.WriteAllText(kubeconfig, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: sandbox
              cluster:
                server: {server.Uri.ToString().TrimEnd('/')}
                certificate-authority: {ca}
            users:
            - name: alice
              user:
                client-certificate: {cert}
                client-key: {key}
            contexts:
            - name: sandbox
              context:
                cluster: sandbox
                user: alice
                namespace: dev
            current-context: sandbox
            """);
        return kubeconfig;
    }
}
