using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Portcullis.Cli.Demo;

/// <summary>
/// The demo folder: PKI, token file, kubeconfigs, RBAC manifests, audit policy and <c>portcullis.yaml</c>.
/// Keys, certificates, the token and the hand-editable files are made once and reused; the kubeconfigs are rewritten
/// on every run because they carry the ports of that run.
/// </summary>
internal sealed class DemoFiles
{
    public const string UserCa = "ca";
    public const string UpstreamCa = "upstream-ca";
    public const string IntruderCa = "intruder-ca";
    public const string WebhookClientCa = "webhook-client-ca";
    public const string WebhookClient = "apiserver-webhook-client";

    /// <summary>
    /// The API server's webhook cache TTLs in webhook mode (token cache, authorizedTTL, unauthorizedTTL): short, so a
    /// deny-list edit shows within seconds (a real cluster uses the generated 10s or more; docs/webhook.md).
    /// </summary>
    public static readonly TimeSpan WebhookCacheTtl = TimeSpan.FromSeconds(2);

    private DemoFiles(string directory) => Directory = directory;

    /// <summary>The absolute demo folder.</summary>
    public string Directory { get; }

    public string Pki => Path.Combine(Directory, "pki");
    public string ConfigPath => Path.Combine(Directory, "portcullis.yaml");
    public string AuditLogPath => Path.Combine(Directory, "audit.log");
    public string Kubeconfig(string user) => Path.Combine(Directory, user + ".kubeconfig");

    /// <summary>Webhook mode: the configuration <c>portcullis webhook</c> runs with.</summary>
    public string WebhookConfigPath => Path.Combine(Directory, "webhook.yaml");

    /// <summary>Webhook mode: the deny list Portcullis answers SubjectAccessReviews with.</summary>
    public string DenyListPath => Path.Combine(Directory, "deny.yaml");

    /// <summary>Webhook mode: the API server's side of the wiring (webhook kubeconfigs, AuthorizationConfiguration, flags).</summary>
    public string ApiServerDirectory => Path.Combine(Directory, "apiserver");

    /// <summary>What the last <see cref="Prepare"/> created (empty when everything was reused).</summary>
    public List<string> Created { get; } = [];

    /// <summary>Creates what is missing in <paramref name="directory"/> and returns the layout.</summary>
    public static DemoFiles Prepare(string directory, int gatewayPort, int adminPort)
    {
        var files = new DemoFiles(Path.GetFullPath(directory));
        System.IO.Directory.CreateDirectory(files.Directory);
        System.IO.Directory.CreateDirectory(files.Pki);
        System.IO.Directory.CreateDirectory(Path.Combine(files.Directory, "rbac"));
        System.IO.Directory.CreateDirectory(Path.Combine(files.Directory, "apf"));
        System.IO.Directory.CreateDirectory(Path.Combine(files.Directory, "admission"));

        using var ca = files.EnsureCa(UserCa, "portcullis-demo-ca");
        using var upstreamCa = files.EnsureCa(UpstreamCa, "portcullis-demo-upstream-ca");
        files.EnsureLeaf("gateway", () => DemoPki.CreateServer(ca, "portcullis-gateway"));
        files.EnsureLeaf("sandbox", () => DemoPki.CreateServer(upstreamCa, "portcullis-sandbox"));
        files.EnsureLeaf("gateway-upstream", () => DemoPki.CreateClient(upstreamCa, "portcullis-gateway"));
        files.EnsureLeaf("admin", () => DemoPki.CreateClient(ca, "admin", "system:masters"));
        files.EnsureLeaf("jane", () => DemoPki.CreateClient(ca, "jane", "developers"));
        files.EnsureLeaf("batch", () => DemoPki.CreateClient(ca, "batch", "jobs"));
        files.EnsureLeaf("intruder", () =>
        {
            // A CA the gateway has never heard of; its key is not kept.
            using var foreign = DemoPki.CreateCa("portcullis-demo-intruder-ca");
            if (!File.Exists(Path.Combine(files.Pki, IntruderCa + ".crt")))
            {
                WriteFile(Path.Combine(files.Pki, IntruderCa + ".crt"), foreign.ExportCertificatePem() + "\n", secret: false);
            }
            return DemoPki.CreateClient(foreign, "intruder", "system:masters");
        });

        // A certificate from the demo CA, "stolen" and revoked: it chains, yet revoked.yaml refuses it at the handshake.
        files.EnsureLeaf("thief", () => DemoPki.CreateClient(ca, "admin-laptop", "system:masters"));
        files.EnsureRevoked("thief", "laptop stolen (demo): the certificate chains to pki/ca.crt but is revoked");
        files.EnsureFile("tokens.csv", secret: true, () =>
            $"{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24))},ci-bot,ci-bot-uid,\"ci\"\n");
        files.EnsureFile(Path.Combine("rbac", "00-bootstrap.yaml"), secret: false, () => DemoManifests.Bootstrap);
        files.EnsureFile(Path.Combine("rbac", "10-developers.yaml"), secret: false, () => DemoManifests.Developers);
        files.EnsureFile(Path.Combine("rbac", "20-ci-bot.yaml"), secret: false, () => DemoManifests.CiBot);
        files.EnsureFile(Path.Combine("rbac", "30-batch.yaml"), secret: false, () => DemoManifests.Batch);
        files.EnsureFile(Path.Combine("apf", "batch-low-priority.yaml"), secret: false, () => DemoManifests.BatchLowPriority);
        files.EnsureFile(Path.Combine("admission", "admission.yaml"), secret: false, () => DemoManifests.AdmissionConfiguration);
        files.EnsureFile(Path.Combine("admission", "eventconfig.yaml"), secret: false, () => DemoManifests.EventRateLimit);
        files.EnsureFile("events.yaml", secret: false, () => DemoManifests.Events);
        files.EnsureFile("audit-policy.yaml", secret: false, () => DemoManifests.AuditPolicy);
        files.EnsureFile("portcullis.yaml", secret: false, () => DemoManifests.GatewayConfiguration(gatewayPort, adminPort));
        return files;
    }

    /// <summary>
    /// Webhook mode's files, made when missing: the API server's webhook client certificate from a CA of its own (the
    /// webhook's <c>tls.clientCAFile</c>), mallory (a deny-listed developer), <c>deny.yaml</c>, Portcullis's own RBAC
    /// folder <c>webhook-rbac/</c> (empty: the API server's RBAC decides) and <c>webhook.yaml</c>.
    /// </summary>
    public void PrepareWebhookMode(int webhookPort, int adminPort)
    {
        System.IO.Directory.CreateDirectory(Path.Combine(Directory, "webhook-rbac"));
        System.IO.Directory.CreateDirectory(ApiServerDirectory);
        using var ca = EnsureCa(UserCa, "portcullis-demo-ca");
        using var webhookClientCa = EnsureCa(WebhookClientCa, "portcullis-demo-webhook-client-ca");
        EnsureLeaf(WebhookClient, () => DemoPki.CreateClient(webhookClientCa, "kube-apiserver"));
        EnsureLeaf("mallory", () => DemoPki.CreateClient(ca, "mallory", "developers"));
        EnsureFile("deny.yaml", secret: false, () => DemoManifests.DenyList);
        EnsureFile("webhook.yaml", secret: false, () => DemoManifests.WebhookConfiguration(webhookPort, adminPort));
    }

    /// <summary>
    /// What <c>portcullis webhook kubeconfig</c> is asked for to wire the sandbox to the webhook on <paramref name="webhook"/>:
    /// the demo CA (it signed the webhook's certificate), the API server's client certificate, failurePolicy Deny and
    /// the demo's short cache TTLs.
    /// </summary>
    public WebhookWiringOptions WebhookWiringOptions(Uri webhook)
    {
        var ttl = ((int)WebhookCacheTtl.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture) + "s";
        return new WebhookWiringOptions
        {
            Server = webhook.GetLeftPart(UriPartial.Authority),
            CertificateAuthority = Path.Combine(Pki, UserCa + ".crt"),
            ClientCertificate = Path.Combine(Pki, WebhookClient + ".crt"),
            ClientKey = Path.Combine(Pki, WebhookClient + ".key"),
            Directory = ApiServerDirectory,
            FailurePolicy = "Deny",
            AuthorizedTtl = ttl,
            UnauthorizedTtl = ttl,
            TokenCacheTtl = ttl,
            Timeout = "3s",
        };
    }

    /// <summary>Writes the client kubeconfigs for the gateway on <paramref name="gateway"/> (rewritten every run).</summary>
    /// <param name="serverCa">The CA of the server's certificate: the demo CA for the gateway, the upstream CA for the sandbox in webhook mode.</param>
    /// <param name="webhookMode">Also writes mallory's kubeconfig (deny-listed by the webhook); otherwise removes a stale one, since the gateway has no deny list for her.</param>
    public void WriteClientKubeconfigs(Uri gateway, string serverCa = UserCa, bool webhookMode = false)
    {
        var server = gateway.GetLeftPart(UriPartial.Authority);
        var caData = Base64File(Path.Combine(Pki, serverCa + ".crt"));
        if (webhookMode)
        {
            WriteKubeconfig(Kubeconfig("mallory"), "portcullis-demo", server, caData, "mallory", CertUser("mallory"), "dev");
        }
        else
        {
            File.Delete(Kubeconfig("mallory"));
        }
        WriteKubeconfig(Kubeconfig("admin"), "portcullis-demo", server, caData, "admin", CertUser("admin"), "default");
        WriteKubeconfig(Kubeconfig("jane"), "portcullis-demo", server, caData, "jane", CertUser("jane"), "dev");
        WriteKubeconfig(Kubeconfig("batch"), "portcullis-demo", server, caData, "batch", CertUser("batch"), "dev");
        WriteKubeconfig(Kubeconfig("intruder"), "portcullis-demo", server, caData, "intruder", CertUser("intruder"), "default");
        WriteKubeconfig(Kubeconfig("thief"), "portcullis-demo", server, caData, "admin-laptop", CertUser("thief"), "default");
        WriteKubeconfig(Kubeconfig("ci-bot"), "portcullis-demo", server, caData, "ci-bot",
            $"    token: {CiBotToken()}\n", "default");
    }

    /// <summary>Writes <c>upstream.kubeconfig</c>: the sandbox on <paramref name="sandbox"/>, as the gateway's own client certificate.</summary>
    public void WriteUpstreamKubeconfig(Uri sandbox) =>
        WriteKubeconfig(Path.Combine(Directory, "upstream.kubeconfig"), "sandbox", sandbox.GetLeftPart(UriPartial.Authority),
            Base64File(Path.Combine(Pki, UpstreamCa + ".crt")), "portcullis-gateway", CertUser("gateway-upstream"), "default");

    public X509Certificate2 Load(string name) => DemoPki.LoadPem(Pki, name);

    public X509Certificate2Collection LoadCaBundle(string name)
    {
        var bundle = new X509Certificate2Collection();
        bundle.ImportFromPemFile(Path.Combine(Pki, name + ".crt"));
        return bundle;
    }

    private string CiBotToken()
    {
        foreach (var line in File.ReadAllLines(Path.Combine(Directory, "tokens.csv")))
        {
            var fields = line.Split(',');
            if (fields.Length >= 3 && fields[1] == "ci-bot" && fields[0].Length > 0)
            {
                return fields[0];
            }
        }
        throw new InvalidDataException($"{Path.Combine(Directory, "tokens.csv")} has no row for ci-bot; delete the file to have a new token made");
    }

    private string CertUser(string name) =>
        $"    client-certificate-data: {Base64File(Path.Combine(Pki, name + ".crt"))}\n" +
        $"    client-key-data: {Base64File(Path.Combine(Pki, name + ".key"))}\n";

    private static string Base64File(string path) => Convert.ToBase64String(File.ReadAllBytes(path));

    private static void WriteKubeconfig(string path, string cluster, string server, string caData, string user, string userFields, string ns)
    {
        var text = $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: {cluster}
              cluster:
                server: {server}
                certificate-authority-data: {caData}
            users:
            - name: {user}
              user:

            """ + userFields + $"""
            contexts:
            - name: {user}@{cluster}
              context:
                cluster: {cluster}
                user: {user}
                namespace: {ns}
            current-context: {user}@{cluster}

            """;
        // The kubeconfigs embed private keys or a token: owner-only.
        WriteFile(path, text, secret: true);
    }

    private X509Certificate2 EnsureCa(string name, string commonName)
    {
        if (File.Exists(Path.Combine(Pki, name + ".crt")) && File.Exists(Path.Combine(Pki, name + ".key")))
        {
            return DemoPki.LoadPem(Pki, name);
        }
        var ca = DemoPki.CreateCa(commonName);
        DemoPki.WritePem(Pki, name, ca);
        Created.Add($"pki/{name}.crt");
        return ca;
    }

    private void EnsureLeaf(string name, Func<X509Certificate2> issue)
    {
        if (File.Exists(Path.Combine(Pki, name + ".crt")) && File.Exists(Path.Combine(Pki, name + ".key")))
        {
            return;
        }
        using var certificate = issue();
        DemoPki.WritePem(Pki, name, certificate);
        Created.Add($"pki/{name}.crt");
    }

    /// <summary>
    /// Puts <c>pki/NAME.crt</c> on <c>revoked.yaml</c>: written when missing, the entry appended (as <c>portcullis
    /// revoke</c> does) when the certificate was made anew this run and the list already exists.
    /// </summary>
    private void EnsureRevoked(string name, string reason)
    {
        var path = Path.Combine(Directory, "revoked.yaml");
        var fresh = Created.Contains($"pki/{name}.crt");
        if (File.Exists(path) && !fresh)
        {
            return;
        }
        using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(Pki, name + ".crt")));
        var entry = RevokeCommand.Entry(certificate, "serial", reason, null);
        var text = File.Exists(path)
            ? RevokeCommand.Insert(File.ReadAllText(path), entry) ?? throw new InvalidDataException($"{path}: 'certificates' is not a block list; delete the file to have it written again")
            : "# Written by `portcullis demo`: client certificates refused at the TLS handshake however well they chain.\n" +
              "# Add one with: portcullis revoke --cert pki/jane.crt --reason \"...\" --file revoked.yaml\n" +
              "apiVersion: portcullis.dev/v1alpha1\nkind: RevocationList\ncertificates:\n" + string.Join('\n', entry) + "\n";
        WriteFile(path, text, secret: false);
        Created.Add("revoked.yaml");
    }

    private void EnsureFile(string relative, bool secret, Func<string> content)
    {
        var path = Path.Combine(Directory, relative);
        if (File.Exists(path))
        {
            return;
        }
        WriteFile(path, content(), secret);
        Created.Add(relative.Replace('\\', '/'));
    }

    /// <summary>Writes a file atomically enough for a demo; secrets are created owner-only (0600) on Unix.</summary>
    internal static void WriteFile(string path, string content, bool secret)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (secret && !OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using (var stream = new FileStream(path, options))
        {
            stream.Write(Encoding.UTF8.GetBytes(content));
        }
        if (secret && !OperatingSystem.IsWindows())
        {
            // UnixCreateMode only applies to new files; an existing file keeps its mode otherwise.
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }
}
