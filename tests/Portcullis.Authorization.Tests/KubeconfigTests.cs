using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Portcullis.Kubeconfig;

namespace Portcullis.Authorization.Tests;

public class KubeconfigTests
{
    [Fact]
    public void Client_certificate_from_data_and_relative_files()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var cert = new CertificateRequest("CN=gateway,O=system:masters", key, HashAlgorithmName.SHA256)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(1));
        var certPem = cert.ExportCertificatePem();
        var keyPem = key.ExportPkcs8PrivateKeyPem();
        static string B64(string s) => Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(s));
        var dir = Directory.CreateTempSubdirectory("portcullis-kubeconfig-");
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "client.crt"), certPem);
            File.WriteAllText(Path.Combine(dir.FullName, "client.key"), keyPem);
            File.WriteAllText(Path.Combine(dir.FullName, "ca.crt"), certPem);
            File.WriteAllText(Path.Combine(dir.FullName, "config"), $$"""
                apiVersion: v1
                kind: Config
                clusters:
                - name: a
                  cluster: {server: "https://127.0.0.1:1/authorize", certificate-authority: ca.crt}
                - name: b
                  cluster: {server: "https://127.0.0.1:2/", certificate-authority-data: {{B64(certPem)}}, tls-server-name: authz.local}
                users:
                - name: files
                  user: {client-certificate: client.crt, client-key: client.key}
                - name: data
                  user: {client-certificate-data: {{B64(certPem)}}, client-key-data: {{B64(keyPem)}}}
                contexts:
                - name: one
                  context: {cluster: a, user: files}
                - name: two
                  context: {cluster: b, user: data}
                current-context: one
                """);
            var (file, errors) = KubeconfigFile.Load(Path.Combine(dir.FullName, "config"));
            Assert.Empty(errors);
            var one = file!.Resolve();
            Assert.Equal(new Uri("https://127.0.0.1:1/authorize"), one.Server);
            Assert.True(one.ClientCertificate!.HasPrivateKey);
            Assert.Equal(cert.Thumbprint, Assert.Single(one.CertificateAuthorities!).Thumbprint);
            var two = file.Resolve("two");
            Assert.True(two.ClientCertificate!.HasPrivateKey);
            Assert.Equal("authz.local", two.TlsServerName);
            using var handler = two.CreateHandler();
            Assert.False(handler.AllowAutoRedirect);
            Assert.Throws<InvalidOperationException>(() => file.Resolve("three"));
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Fact]
    public void Missing_server_is_an_error_with_a_line()
    {
        var errors = new List<Portcullis.Configuration.ConfigError>();
        KubeconfigFile.Parse("apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster:\n    certificate-authority: ca.pem\n", "k.yaml", errors);
        Assert.Contains(errors, e => e.Field == "clusters.cluster.server" && e.Line == 6);
    }

    [Fact]
    public void A_credential_plugin_is_refused_with_its_line_rather_than_sending_no_credentials()
    {
        var (file, errors) = Parse("""
            apiVersion: v1
            kind: Config
            clusters:
            - name: c
              cluster: {server: "https://127.0.0.1:1/"}
            users:
            - name: eks
              user:
                exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: aws}
            contexts:
            - name: x
              context: {cluster: c, user: eks}
            current-context: x
            """);
        Assert.Empty(errors);
        var error = Assert.Single(ResolveErrors(file));
        Assert.Equal("users.user.exec", error.Field);
        Assert.Equal(9, error.Line);
        Assert.Throws<InvalidOperationException>(() => file.Resolve());
    }

    [Fact]
    public void The_authorization_webhook_refuses_a_credential_plugin_at_load_naming_the_kubeconfig_line()
    {
        var dir = Directory.CreateTempSubdirectory("portcullis-kubeconfig-");
        try
        {
            var path = Path.Combine(dir.FullName, "authz.kubeconfig");
            File.WriteAllText(path, """
                apiVersion: v1
                kind: Config
                clusters: [{name: c, cluster: {server: "https://127.0.0.1:1/authorize"}}]
                users:
                - name: gke
                  user:
                    auth-provider: {name: gcp}
                """);

            var ex = Assert.Throws<Portcullis.Configuration.ConfigurationException>(
                () => Portcullis.Authorization.Webhook.WebhookAuthorizer.Create(path, new Portcullis.Authorization.Webhook.WebhookAuthorizerOptions()));

            var error = Assert.Single(ex.Errors);
            Assert.Equal(path, error.File);
            Assert.Equal(7, error.Line);
            Assert.Equal("users.user.auth-provider", error.Field);
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Fact]
    public void A_token_file_takes_precedence_over_a_token_as_in_client_go()
    {
        var dir = Directory.CreateTempSubdirectory("portcullis-kubeconfig-");
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "token"), "from-the-file\n");
            var (file, errors) = Parse("""
                apiVersion: v1
                kind: Config
                clusters: [{name: c, cluster: {server: "https://127.0.0.1:1/"}}]
                users: [{name: u, user: {token: inline-token, tokenFile: token}}]
                """, Path.Combine(dir.FullName, "config"));
            Assert.Empty(errors);
            Assert.Equal("from-the-file", file.Resolve().Token);
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Fact]
    public void Resolve_errors_name_the_field_and_line_and_never_the_token()
    {
        var (file, errors) = Parse("""
            apiVersion: v1
            kind: Config
            clusters:
            - name: c
              cluster:
                server: "https://127.0.0.1:1/"
                certificate-authority: /nonexistent/ca.pem
            users:
            - name: u
              user:
                token: secret-bearer-token-value
                client-certificate-data: "%%%"
            contexts:
            - name: x
              context: {cluster: c, user: u}
            - name: y
              context: {cluster: c, user: nobody}
            current-context: x
            """);
        Assert.Empty(errors);
        var resolveErrors = ResolveErrors(file);
        Assert.Contains(resolveErrors, e => e.Field == "clusters.cluster.certificate-authority" && e.Line == 6 && e.Message.Contains("/nonexistent/ca.pem", StringComparison.Ordinal));
        Assert.Contains(resolveErrors, e => e.Field == "users.user.client-certificate-data" && e.Line == 11);
        Assert.DoesNotContain(resolveErrors, e => e.ToString().Contains("secret-bearer-token-value", StringComparison.Ordinal));

        var missing = Assert.Single(ResolveErrors(file, "y"));
        Assert.Equal("contexts.context.user", missing.Field);
        Assert.Equal(17, missing.Line);
    }

    /// <summary>The problems <see cref="KubeconfigFile.TryResolve"/> reports; it must then return no endpoint.</summary>
    private static List<Portcullis.Configuration.ConfigError> ResolveErrors(KubeconfigFile file, string? context = null)
    {
        var errors = new List<Portcullis.Configuration.ConfigError>();
        Assert.Null(file.TryResolve(errors, context));
        return errors;
    }

    private static (KubeconfigFile File, List<Portcullis.Configuration.ConfigError> Errors) Parse(string text, string path = "/tmp/k.yaml")
    {
        var errors = new List<Portcullis.Configuration.ConfigError>();
        var file = KubeconfigFile.Parse(text, path, errors);
        return (file!, errors);
    }
}
