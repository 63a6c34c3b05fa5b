using System.CommandLine;
using System.Globalization;
using System.Text;
using Portcullis.Configuration;
using Portcullis.Gateway.Hosting;

namespace Portcullis.Cli;

/// <summary>
/// <c>portcullis webhook --config FILE</c>: the TokenReview and SubjectAccessReview webhooks a kube-apiserver calls;
/// <c>portcullis webhook kubeconfig --server URL</c>: the files and flags that wire a kube-apiserver to them.
/// </summary>
internal static class WebhookCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "The GatewayConfiguration file (upstream not used; tls.clientCAFile = the API server's webhook client CA)" };
        var listen = new Option<string?>("--listen") { Description = "Override every listener address (host:port)" };
        var admin = new Option<string?>("--admin") { Description = "Override admin.address (host:port)" };
        var command = new Command("webhook", "Serve TokenReview (/authenticate) and SubjectAccessReview (/authorize) webhooks to a kube-apiserver.")
        {
            config, listen, admin, KubeconfigCommand(),
        };
        command.SetAction((parse, cancellationToken) =>
        {
            if (parse.GetValue(config) is not { } file)
            {
                Console.Error.WriteLine("portcullis: webhook needs --config FILE (or the subcommand kubeconfig)");
                return Task.FromResult(2);
            }
            return RunAsync(file.FullName, new GatewayHostOptions { ListenOverride = parse.GetValue(listen), AdminOverride = parse.GetValue(admin) }, cancellationToken);
        });
        return command;
    }

    internal static Task<int> RunAsync(string configPath, GatewayHostOptions options, CancellationToken cancellationToken) =>
        ServeCommand.RunHostAsync(configPath, () => WebhookHost.Create(configPath, options), (h, ct) => h.StartAsync(ct),
            h => h.StopAsync(CancellationToken.None), cancellationToken);

    private static Command KubeconfigCommand()
    {
        var server = new Option<string>("--server") { Description = "The webhook's base URL as the API server reaches it (https://host:port)", Required = true };
        var ca = new Option<string?>("--ca") { Description = "The CA file that signed the webhook's serving certificate, as a path on the API server's host (required unless --system-roots)" };
        var systemRoots = new Option<bool>("--system-roots")
        {
            Description = "The webhook's serving certificate is from a public CA: write no certificate-authority, so the API server verifies it against its host's system roots (instead of --ca)",
        };
        var cert = new Option<string?>("--client-cert") { Description = "The API server's webhook client certificate (signed by tls.clientCAFile), a path on its host" };
        var key = new Option<string?>("--client-key") { Description = "Its private key, a path on the API server's host" };
        var dir = new Option<string>("--dir") { Description = "Where the API server will read the generated files", DefaultValueFactory = _ => "/etc/kubernetes/portcullis" };
        var failure = new Option<string>("--failure-policy") { Description = "Deny (fail closed when Portcullis is down) or NoOpinion (fall through to RBAC)", DefaultValueFactory = _ => "Deny" };
        failure.AcceptOnlyFromAmong("Deny", "NoOpinion");
        var authorized = new Option<string>("--authorized-ttl") { Description = "How long the API server caches an allow (bounds how fast a deny-list entry applies)", DefaultValueFactory = _ => "10s" };
        var unauthorized = new Option<string>("--unauthorized-ttl") { Description = "How long the API server caches a deny or no opinion", DefaultValueFactory = _ => "10s" };
        var cacheTtl = new Option<string>("--token-cache-ttl") { Description = "How long the API server caches a TokenReview answer", DefaultValueFactory = _ => "10s" };
        var timeout = new Option<string>("--timeout") { Description = "The authorization webhook's timeout (at most 30s)", DefaultValueFactory = _ => "3s" };
        var output = new Option<DirectoryInfo?>("--out") { Description = "Write the files (and kube-apiserver-flags.txt) into this folder instead of printing them" };
        var command = new Command("kubeconfig", "Print the webhook kubeconfig files, the AuthorizationConfiguration and the kube-apiserver flags that wire an API server to portcullis webhook.")
        {
            server, ca, systemRoots, cert, key, dir, failure, authorized, unauthorized, cacheTtl, timeout, output,
        };
        command.SetAction(parse =>
        {
            var options = new WebhookWiringOptions
            {
                Server = parse.GetValue(server)!,
                CertificateAuthority = parse.GetValue(ca),
                SystemRoots = parse.GetValue(systemRoots),
                ClientCertificate = parse.GetValue(cert),
                ClientKey = parse.GetValue(key),
                Directory = parse.GetValue(dir)!,
                FailurePolicy = parse.GetValue(failure)!,
                AuthorizedTtl = parse.GetValue(authorized)!,
                UnauthorizedTtl = parse.GetValue(unauthorized)!,
                TokenCacheTtl = parse.GetValue(cacheTtl)!,
                Timeout = parse.GetValue(timeout)!,
            };
            if (WebhookWiring.Validate(options) is { } problem)
            {
                Console.Error.WriteLine($"portcullis: {problem}");
                return 2;
            }
            if (parse.GetValue(output) is { } folder)
            {
                foreach (var path in WebhookWiring.Write(options, folder.FullName))
                {
                    Console.WriteLine(path);
                }
                if (options.SystemRoots)
                {
                    Console.Error.WriteLine($"portcullis: {WebhookWiring.SystemRootsNote}");
                }
                return 0;
            }
            Console.Write(WebhookWiring.Print(options, WebhookWiring.Files(options)));
            return 0;
        });
        return command;
    }
}

/// <summary>What <c>portcullis webhook kubeconfig</c> was asked for.</summary>
internal sealed record WebhookWiringOptions
{
    public required string Server { get; init; }
    public string? CertificateAuthority { get; init; }

    /// <summary>No <c>certificate-authority</c> on purpose: the serving certificate is from a public CA (<c>--system-roots</c>).</summary>
    public bool SystemRoots { get; init; }
    public string? ClientCertificate { get; init; }
    public string? ClientKey { get; init; }
    public string Directory { get; init; } = "/etc/kubernetes/portcullis";
    public string FailurePolicy { get; init; } = "Deny";
    public string AuthorizedTtl { get; init; } = "10s";
    public string UnauthorizedTtl { get; init; } = "10s";
    public string TokenCacheTtl { get; init; } = "10s";
    public string Timeout { get; init; } = "3s";
}

/// <summary>The generated wiring: two webhook kubeconfigs, an AuthorizationConfiguration and the kube-apiserver flags.</summary>
internal static class WebhookWiring
{
    public const string AuthenticationKubeconfig = "authentication-webhook.kubeconfig";
    public const string AuthorizationKubeconfig = "authorization-webhook.kubeconfig";
    public const string AuthorizationConfig = "authorization-config.yaml";
    public const string FlagsFile = "kube-apiserver-flags.txt";

    /// <summary>
    /// The matchConditions (CEL over the v1 SubjectAccessReview as <c>request</c>) that keep the control plane's own
    /// identities away from the webhook, so that they never depend on Portcullis being up: the Node and RBAC authorizers
    /// decide them.
    /// </summary>
    public static readonly string[] MatchConditions =
    [
        "!('system:masters' in request.groups)",
        "!('system:nodes' in request.groups)",
        "!request.user.startsWith('system:node:')",
        "!request.user.startsWith('system:kube-')",
        "!('system:serviceaccounts:kube-system' in request.groups)",
    ];

    public static string? Validate(WebhookWiringOptions o)
    {
        if (!Uri.TryCreate(o.Server, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps || uri.AbsolutePath != "/" || uri.Query.Length > 0)
        {
            return $"--server \"{o.Server}\" must be the webhook's https://host:port (the paths /authenticate and /authorize are added)";
        }
        // Without a certificate-authority the API server verifies the webhook against its host's system roots: a private
        // serving CA then fails every review, and with failurePolicy Deny that locks the cluster. So no CA is a choice.
        if (o.CertificateAuthority is null && !o.SystemRoots)
        {
            return "--ca FILE is required: the CA that signed the webhook's serving certificate, as a path on the API server's host "
                + "(without it the API server checks the webhook against its system roots, every review fails with a private CA, and with "
                + "failurePolicy Deny every request the webhook decides is refused); give --system-roots instead only if the serving certificate is from a public CA";
        }
        if (o.CertificateAuthority is not null && o.SystemRoots)
        {
            return "--ca and --system-roots exclude each other: --ca names the serving certificate's CA, --system-roots trusts the API server host's public roots instead";
        }
        if ((o.ClientCertificate is null) != (o.ClientKey is null))
        {
            return "--client-cert and --client-key go together";
        }
        foreach (var (flag, value) in new[] { ("--authorized-ttl", o.AuthorizedTtl), ("--unauthorized-ttl", o.UnauthorizedTtl), ("--token-cache-ttl", o.TokenCacheTtl), ("--timeout", o.Timeout) })
        {
            if (!IsGoDuration(value))
            {
                return $"{flag} \"{value}\" is not a duration (10s, 2m, 1m30s)";
            }
        }
        return null;
    }

    private static bool IsGoDuration(string value) =>
        System.Text.RegularExpressions.Regex.IsMatch(value, "^([0-9]+(ms|s|m|h))+$", System.Text.RegularExpressions.RegexOptions.None, TimeSpan.FromSeconds(1));

    /// <summary>What <c>--system-roots</c> means, written where the certificate-authority would be and printed with the flags.</summary>
    public const string SystemRootsNote =
        "no certificate-authority (--system-roots): the API server verifies the webhook's serving certificate against its host's system roots";

    public static IReadOnlyList<(string Name, string Text)> Files(WebhookWiringOptions o) =>
    [
        (AuthenticationKubeconfig, Kubeconfig(o, "authenticate")),
        (AuthorizationKubeconfig, Kubeconfig(o, "authorize")),
        (AuthorizationConfig, AuthorizationConfiguration(o)),
    ];

    /// <summary>
    /// Writes the files and <see cref="FlagsFile"/> into <paramref name="folder"/> (made when missing) and returns their
    /// paths: <c>portcullis webhook kubeconfig --out</c> and <c>portcullis demo --mode webhook</c> write the same files.
    /// </summary>
    public static IReadOnlyList<string> Write(WebhookWiringOptions o, string folder)
    {
        System.IO.Directory.CreateDirectory(folder);
        var written = new List<string>();
        foreach (var (name, text) in Files(o))
        {
            var path = System.IO.Path.Combine(folder, name);
            File.WriteAllText(path, text);
            written.Add(path);
        }
        var flags = System.IO.Path.Combine(folder, FlagsFile);
        File.WriteAllText(flags, string.Join("\n", Flags(o)) + "\n");
        written.Add(flags);
        return written;
    }

    private static string Path(WebhookWiringOptions o, string name) => o.Directory.TrimEnd('/') + "/" + name;

    public static IReadOnlyList<string> Flags(WebhookWiringOptions o) =>
    [
        $"--authentication-token-webhook-config-file={Path(o, AuthenticationKubeconfig)}",
        $"--authentication-token-webhook-cache-ttl={o.TokenCacheTtl}",
        "--authentication-token-webhook-version=v1",
        $"--authorization-config={Path(o, AuthorizationConfig)}",
    ];

    private static string Kubeconfig(WebhookWiringOptions o, string path)
    {
        var b = new StringBuilder();
        b.Append("apiVersion: v1\nkind: Config\nclusters:\n- name: portcullis\n  cluster:\n");
        b.Append("    server: ").Append(Quote(o.Server.TrimEnd('/') + "/" + path)).Append('\n');
        if (o.CertificateAuthority is { } ca)
        {
            b.Append("    certificate-authority: ").Append(Quote(ca)).Append('\n');
        }
        else
        {
            b.Append("    # ").Append(SystemRootsNote).Append('\n');
        }
        b.Append("users:\n- name: kube-apiserver\n  user:");
        if (o.ClientCertificate is { } cert && o.ClientKey is { } key)
        {
            b.Append("\n    client-certificate: ").Append(Quote(cert)).Append("\n    client-key: ").Append(Quote(key)).Append('\n');
        }
        else
        {
            b.Append(" {}\n");
        }
        b.Append("contexts:\n- name: webhook\n  context:\n    cluster: portcullis\n    user: kube-apiserver\ncurrent-context: webhook\n");
        return b.ToString();
    }

    private static string AuthorizationConfiguration(WebhookWiringOptions o)
    {
        var b = new StringBuilder();
        b.Append("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers:\n");
        b.Append("- type: Node\n  name: node\n");
        b.Append("- type: Webhook\n  name: portcullis\n  webhook:\n");
        b.Append(CultureInfo.InvariantCulture, $"    timeout: {o.Timeout}\n    authorizedTTL: {o.AuthorizedTtl}\n    unauthorizedTTL: {o.UnauthorizedTtl}\n");
        b.Append("    subjectAccessReviewVersion: v1\n    matchConditionSubjectAccessReviewVersion: v1\n");
        b.Append(CultureInfo.InvariantCulture, $"    failurePolicy: {o.FailurePolicy}\n");
        b.Append("    connectionInfo:\n      type: KubeConfigFile\n      kubeConfigFile: ").Append(Quote(Path(o, AuthorizationKubeconfig))).Append('\n');
        b.Append("    matchConditions:\n");
        foreach (var condition in MatchConditions)
        {
            b.Append("    - expression: ").Append(Quote(condition)).Append('\n');
        }
        b.Append("- type: RBAC\n  name: rbac\n");
        return b.ToString();
    }

    /// <summary>Every file as one YAML stream (a comment names each), then the flags as comments.</summary>
    public static string Print(WebhookWiringOptions o, IReadOnlyList<(string Name, string Text)> files)
    {
        var b = new StringBuilder();
        foreach (var (name, text) in files)
        {
            b.Append("---\n# ").Append(Path(o, name)).Append('\n').Append(text);
        }
        b.Append("# kube-apiserver flags (--authorization-config replaces --authorization-mode and the --authorization-webhook-* flags):\n");
        if (o.CertificateAuthority is null)
        {
            b.Append("# ").Append(SystemRootsNote).Append('\n');
        }
        foreach (var flag in Flags(o))
        {
            b.Append("#   ").Append(flag).Append('\n');
        }
        return b.ToString();
    }

    // A double-quoted YAML scalar (JSON string syntax is valid YAML).
    // A JSON string is a YAML double-quoted scalar; the relaxed encoder keeps ' and non-ASCII literal (CEL reads better).
    private static readonly System.Text.Json.JsonSerializerOptions YamlQuoting = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string Quote(string value) => System.Text.Json.JsonSerializer.Serialize(value, YamlQuoting);
}
