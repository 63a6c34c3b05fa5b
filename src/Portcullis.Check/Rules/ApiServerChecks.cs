using System.Globalization;
using System.Net;
using Portcullis.Authorization;
using Portcullis.Configuration;
using Portcullis.Check.KubeFiles;
using Portcullis.Kubeconfig;
using R = Portcullis.Check.Rules.RuleCatalog;

namespace Portcullis.Check.Rules;

/// <summary>Scores a kube-apiserver configuration (flags plus the files they name) by layer.</summary>
public static class ApiServerChecks
{
    /// <summary>CIS 1.2.29's list of strong suites (kube-bench cis-1.12).</summary>
    public static readonly IReadOnlySet<string> StrongCipherSuites = new HashSet<string>(StringComparer.Ordinal)
    {
        "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    };

    private static readonly string[] PemKeyExtensions = [".pem", ".key", ".pub", ".crt"];

    /// <summary>Runs every rule; the result is ordered by layer, then as the rules ran.</summary>
    public static IReadOnlyList<Finding> Run(ApiServerInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var f = new FindingList();
        var flags = input.Flags;
        foreach (var note in flags.Notes)
        {
            f.Info(R.InputNotes, note, input.Source);
        }
        Network(f, input);
        Tls(f, input);
        Authentication(f, input);
        Authorization(f, input);
        Admission(f, input);
        Audit(f, input);
        return f.Findings.OrderBy(x => x.Layer).ToList();
    }

    private static void Network(FindingList f, ApiServerInput input)
    {
        var flags = input.Flags;
        var bind = flags.Get("bind-address");
        if (bind is null || bind is "0.0.0.0" or "::" or "")
        {
            f.Warn(R.BindAddress, bind is null ? "--bind-address not set: kube-apiserver listens on all interfaces (0.0.0.0)" : $"--bind-address={bind}: all interfaces");
        }
        else if (IPAddress.TryParse(bind, out var address) && IPAddress.IsLoopback(address))
        {
            f.Pass(R.BindAddress, $"--bind-address={bind}: loopback only");
        }
        else
        {
            f.Pass(R.BindAddress, $"--bind-address={bind}: one interface");
        }

        var insecurePort = flags.Get("insecure-port");
        if (insecurePort is not null && insecurePort.Trim() != "0")
        {
            f.Fail(R.InsecurePort, $"--insecure-port={insecurePort}: unauthenticated, unencrypted HTTP (no authentication or authorization at all)");
        }
        else
        {
            f.Pass(R.InsecurePort, insecurePort is null ? "--insecure-port not set" : "--insecure-port=0");
        }
        if (flags.HasValue("insecure-bind-address"))
        {
            f.Fail(R.InsecureBindAddress, flags.Show("insecure-bind-address") + ": the insecure port would listen there");
        }
        else
        {
            f.Pass(R.InsecureBindAddress, "--insecure-bind-address not set");
        }

        var securePort = flags.Get("secure-port");
        if (securePort is not null && securePort.Trim() == "0")
        {
            f.Fail(R.SecurePort, "--secure-port=0: HTTPS serving is disabled");
        }
        else if (flags.GetAll("secure-port").Any(p => p.Trim() == "0"))
        {
            f.Warn(R.SecurePort, $"--secure-port is given {flags.GetAll("secure-port").Count} times ({string.Join(", ", flags.GetAll("secure-port"))}); kube-apiserver uses the last, {securePort}, but the manifest says both");
        }
        else
        {
            f.Pass(R.SecurePort, securePort is null ? "--secure-port not set (6443)" : $"--secure-port={securePort}");
        }

        switch (flags.GetBool("profiling"))
        {
            case false:
                f.Pass(R.Profiling, "--profiling=false");
                break;
            case true:
                f.Fail(R.Profiling, flags.Show("profiling") + ": /debug/pprof is served");
                break;
            default:
                f.Fail(R.Profiling, flags.IsSet("profiling") ? flags.Show("profiling") + ": not a boolean" : "--profiling not set (default true: /debug/pprof is served)");
                break;
        }

        if (input.Live is { } live)
        {
            var type = live.KubernetesServiceType;
            if (type is null)
            {
                f.Info(R.ServiceExposure, "the default/kubernetes Service could not be read");
            }
            else if (type is "LoadBalancer" or "NodePort")
            {
                f.Fail(R.ServiceExposure, $"default/kubernetes is type {type}{(live.ExternalAddresses.Count > 0 ? " at " + string.Join(", ", live.ExternalAddresses) : "")}");
            }
            else if (live.ExternalAddresses.Count > 0)
            {
                f.Warn(R.ServiceExposure, $"default/kubernetes is type {type} with external addresses {string.Join(", ", live.ExternalAddresses)}");
            }
            else
            {
                f.Pass(R.ServiceExposure, $"default/kubernetes is type {type}");
            }
        }
    }

    private static void BothSet(FindingList f, RuleInfo rule, ApiServerFlags flags, string a, string b)
    {
        var missing = new[] { a, b }.Where(n => !flags.HasValue(n)).ToList();
        if (missing.Count == 0)
        {
            f.Pass(rule, $"{flags.Show(a)} {flags.Show(b)}");
        }
        else
        {
            f.Fail(rule, string.Join("; ", missing.Select(n => flags.IsSet(n) ? $"--{n} is empty" : $"--{n} not set")));
        }
    }

    private static void OneSet(FindingList f, RuleInfo rule, ApiServerFlags flags, string name, CheckStatus whenMissing = CheckStatus.Fail)
    {
        if (flags.HasValue(name))
        {
            f.Pass(rule, flags.Show(name));
        }
        else
        {
            f.Add(rule, whenMissing, flags.IsSet(name) ? $"--{name} is empty" : $"--{name} not set");
        }
    }

    private static void Tls(FindingList f, ApiServerInput input)
    {
        var flags = input.Flags;
        BothSet(f, R.TlsCertAndKey, flags, "tls-cert-file", "tls-private-key-file");

        var min = flags.Get("tls-min-version");
        if (min is null)
        {
            f.Pass(R.TlsMinVersion, "--tls-min-version not set (Go's server default: TLS 1.2)");
        }
        else if (min is "VersionTLS12" or "VersionTLS13")
        {
            f.Pass(R.TlsMinVersion, $"--tls-min-version={min}");
        }
        else
        {
            f.Fail(R.TlsMinVersion, $"--tls-min-version={min}: TLS below 1.2 is accepted");
        }

        var suites = flags.GetList("tls-cipher-suites");
        if (suites.Count == 0)
        {
            f.Warn(R.CipherSuites, "--tls-cipher-suites not set: Go's default list applies (includes CBC suites)");
        }
        else
        {
            var weak = suites.Where(s => !StrongCipherSuites.Contains(s)).ToList();
            if (weak.Count == 0)
            {
                f.Pass(R.CipherSuites, $"--tls-cipher-suites: {suites.Count} strong suite(s)");
            }
            else
            {
                f.Fail(R.CipherSuites, $"--tls-cipher-suites includes {string.Join(", ", weak)}");
            }
        }

        BothSet(f, R.KubeletClientCert, flags, "kubelet-client-certificate", "kubelet-client-key");
        OneSet(f, R.KubeletCa, flags, "kubelet-certificate-authority");
        if (flags.GetBool("kubelet-https") == false)
        {
            f.Fail(R.KubeletHttps, "--kubelet-https=false: kubelet API traffic is plain HTTP");
        }
        else
        {
            f.Pass(R.KubeletHttps, flags.IsSet("kubelet-https") ? flags.Show("kubelet-https") : "--kubelet-https not set (https)");
        }

        BothSet(f, R.EtcdCertAndKey, flags, "etcd-certfile", "etcd-keyfile");
        OneSet(f, R.EtcdCa, flags, "etcd-cafile");
        var etcdServers = flags.GetList("etcd-servers");
        var plain = etcdServers.Where(s => s.StartsWith("http://", StringComparison.OrdinalIgnoreCase)).ToList();
        if (plain.Count > 0)
        {
            f.Fail(R.EtcdServersTls, $"--etcd-servers includes {string.Join(", ", plain)}");
        }
        else if (etcdServers.Count > 0)
        {
            f.Pass(R.EtcdServersTls, flags.Show("etcd-servers"));
        }
        var etcdCa = flags.Get("etcd-cafile");
        var clientCa = flags.Get("client-ca-file");
        if (!string.IsNullOrWhiteSpace(etcdCa) && !string.IsNullOrWhiteSpace(clientCa))
        {
            if (etcdCa == clientCa)
            {
                f.Fail(R.EtcdUniqueCa, $"--etcd-cafile and --client-ca-file are both {etcdCa}: any cluster client certificate is trusted by etcd");
            }
            else
            {
                f.Pass(R.EtcdUniqueCa, $"--etcd-cafile={etcdCa} differs from --client-ca-file={clientCa}");
            }
        }

        ClientCertificateLifetimes(f, input);

        var encryption = flags.Get("encryption-provider-config");
        if (string.IsNullOrWhiteSpace(encryption))
        {
            f.Warn(R.EncryptionConfig, "--encryption-provider-config not set: Secrets are stored in etcd unencrypted");
            return;
        }
        f.Pass(R.EncryptionConfig, flags.Show("encryption-provider-config"));
        var file = input.Files.Read(encryption);
        if (!file.WasRead)
        {
            f.Info(R.EncryptionProviders, $"{flags.Show("encryption-provider-config")}: {file.Problem}; providers not checked", encryption);
            return;
        }
        var problems = new List<string>();
        var entries = SafeRead(() => KubeConfigFiles.ReadEncryptionConfiguration(file, problems), problems, file);
        if (entries is null || problems.Count > 0)
        {
            f.Fail(R.EncryptionProviders, string.Join("; ", problems), encryption);
            return;
        }
        var secrets = entries.FirstOrDefault(e => e.Resources.Contains("secrets") || e.Resources.Contains("*.*") || e.Resources.Contains("*."));
        if (secrets.Resources is null)
        {
            f.Fail(R.EncryptionProviders, $"{file.Where}: no resources[] entry covers secrets");
        }
        else if (secrets.FirstProvider is "aescbc" or "kms" or "secretbox")
        {
            f.Pass(R.EncryptionProviders, $"{file.Where}: secrets first provider {secrets.FirstProvider}", encryption);
        }
        else
        {
            f.Fail(R.EncryptionProviders, $"{file.Where}: secrets first provider is {secrets.FirstProvider}", encryption);
        }
    }

    // kube-apiserver's own client certificates (to kubelets, the aggregation layer, etcd) and those of the kubeconfigs its
    // webhooks use: a long-lived one is a long-lived key to the cluster.
    private static void ClientCertificateLifetimes(FindingList f, ApiServerInput input)
    {
        var flags = input.Flags;
        foreach (var name in new[] { "kubelet-client-certificate", "proxy-client-cert-file", "etcd-certfile" })
        {
            if (flags.Get(name) is { Length: > 0 } path)
            {
                CertificateLifetimes.ScoreCertificateFile(f, flags.Show(name), input.Files.Read(path), CertificateLifetimes.DefaultLimit, CertificateLifetimes.DefaultLimitSource);
            }
        }
        foreach (var name in new[] { "authentication-token-webhook-config-file", "authorization-webhook-config-file" })
        {
            if (flags.Get(name) is { Length: > 0 } path)
            {
                CertificateLifetimes.ScoreKubeconfig(f, flags.Show(name), input.Files.Read(path), CertificateLifetimes.DefaultLimit, CertificateLifetimes.DefaultLimitSource);
            }
        }
    }

    private static T? SafeRead<T>(Func<T?> read, List<string> problems, ReferencedFile file) where T : class
    {
        try
        {
            return read();
        }
        catch (Exception ex)
        {
            problems.Add($"{file.Where}: cannot be parsed: {ex.Message}");
            return null;
        }
    }

    private static void Authentication(FindingList f, ApiServerInput input)
    {
        var flags = input.Flags;
        var authnConfig = flags.Get("authentication-config");
        AuthenticationSummary? structured = null;
        if (!string.IsNullOrWhiteSpace(authnConfig))
        {
            var file = input.Files.Read(authnConfig);
            if (!file.WasRead)
            {
                f.Warn(R.AuthenticationConfig, $"{flags.Show("authentication-config")}: {file.Problem}; anonymous and JWT settings in it were not checked", authnConfig);
            }
            else
            {
                var problems = new List<string>();
                structured = SafeRead(() => KubeConfigFiles.ReadAuthenticationConfiguration(file, problems, flags.GetAll("service-account-issuer")), problems, file);
                if (structured is null || problems.Count > 0)
                {
                    f.Fail(R.AuthenticationConfig, string.Join("; ", problems), authnConfig);
                }
                else
                {
                    f.Pass(R.AuthenticationConfig, $"{file.Where}: AuthenticationConfiguration with {structured.JwtIssuers.Count} JWT issuer(s)", authnConfig);
                }
            }
        }

        // kube-apiserver refuses to start when a setting is given both ways.
        if (structured is not null)
        {
            if (structured.AnonymousEnabled is not null && flags.IsSet("anonymous-auth"))
            {
                f.Fail(R.AuthenticationConfig, $"{flags.Show("anonymous-auth")} and an anonymous section in {authnConfig}: kube-apiserver accepts only one of them", authnConfig);
            }
            if (structured.JwtIssuers.Count > 0 && flags.IsSet("oidc-issuer-url"))
            {
                f.Fail(R.AuthenticationConfig, $"{flags.Show("oidc-issuer-url")} and jwt[] in {authnConfig}: kube-apiserver accepts only one of them", authnConfig);
            }
        }

        var anonymous = flags.GetBool("anonymous-auth");
        if (structured is { AnonymousEnabled: { } enabled } s)
        {
            FileScoring.ScoreAnonymousConditions(f, enabled, s.AnonymousPaths, $"{authnConfig} anonymous", authnConfig);
        }
        else if (anonymous == false)
        {
            f.Pass(R.AnonymousAuth, "--anonymous-auth=false");
        }
        else
        {
            f.Fail(R.AnonymousAuth, flags.IsSet("anonymous-auth") ? flags.Show("anonymous-auth") + ": requests without credentials run as system:anonymous"
                : "--anonymous-auth not set (default true: requests without credentials run as system:anonymous)");
        }

        if (flags.IsSet("token-auth-file"))
        {
            f.Fail(R.TokenAuthFile, flags.Show("token-auth-file") + ": static bearer tokens in a CSV, valid until the API server restarts");
        }
        else
        {
            f.Pass(R.TokenAuthFile, "--token-auth-file not set");
        }
        if (flags.IsSet("basic-auth-file"))
        {
            f.Fail(R.BasicAuthFile, flags.Show("basic-auth-file") + ": static passwords");
        }
        else
        {
            f.Pass(R.BasicAuthFile, "--basic-auth-file not set");
        }
        OneSet(f, R.ClientCa, flags, "client-ca-file");

        var oidc = flags.HasValue("oidc-issuer-url") && flags.HasValue("oidc-client-id");
        var webhook = flags.HasValue("authentication-token-webhook-config-file");
        var jwt = structured?.JwtIssuers.Count > 0;
        if (oidc || webhook || jwt)
        {
            var how = new List<string>();
            if (oidc)
            {
                how.Add(flags.Show("oidc-issuer-url"));
            }
            if (jwt)
            {
                how.Add($"{authnConfig}: jwt issuers {string.Join(", ", structured!.JwtIssuers)}");
            }
            if (webhook)
            {
                how.Add(flags.Show("authentication-token-webhook-config-file"));
            }
            f.Pass(R.ExternalAuthn, string.Join("; ", how));
        }
        else
        {
            f.Warn(R.ExternalAuthn, "no OIDC (--oidc-issuer-url, --authentication-config jwt) and no --authentication-token-webhook-config-file: people must use client certificates, which cannot be revoked");
        }
        var issuers = new List<string>();
        if (flags.HasValue("oidc-issuer-url"))
        {
            issuers.Add(flags.Get("oidc-issuer-url")!);
        }
        issuers.AddRange(structured?.JwtIssuers ?? []);
        var insecureIssuers = issuers.Where(i => !i.StartsWith("https://", StringComparison.OrdinalIgnoreCase)).ToList();
        if (insecureIssuers.Count > 0)
        {
            f.Fail(R.OidcIssuer, $"issuer(s) not https: {string.Join(", ", insecureIssuers)}");
        }
        else if (issuers.Count > 0)
        {
            f.Pass(R.OidcIssuer, $"{issuers.Count} issuer(s), all https");
        }
        if (webhook)
        {
            AuthenticationWebhook(f, input);
            var ttlText = flags.Get("authentication-token-webhook-cache-ttl");
            if (ttlText is null)
            {
                f.Pass(R.WebhookCacheTtl, "--authentication-token-webhook-cache-ttl not set (2m0s): a token the webhook starts refusing works for at most 2 more minutes");
            }
            else if (!GoDuration.TryParse(ttlText, out var ttl))
            {
                f.Fail(R.WebhookCacheTtl, $"--authentication-token-webhook-cache-ttl={ttlText}: not a duration (kube-apiserver will not start)");
            }
            else if (ttl > WebhookCacheTtlLimit)
            {
                f.Warn(R.WebhookCacheTtl, $"--authentication-token-webhook-cache-ttl={ttlText}: kube-apiserver reuses a TokenReview answer that long, " +
                    $"so a token the webhook starts refusing (a deny-list entry, a revoked credential) keeps working for up to {ttlText} after the change");
            }
            else
            {
                f.Pass(R.WebhookCacheTtl, $"--authentication-token-webhook-cache-ttl={ttlText}: a token the webhook starts refusing works for at most {ttlText} more");
            }
        }
        else
        {
            var orphans = TokenWebhookSettings.Where(flags.IsSet).Select(flags.Show).ToList();
            if (orphans.Count > 0)
            {
                f.Info(R.AuthenticationWebhook, $"{string.Join(", ", orphans)} set without --authentication-token-webhook-config-file: no token webhook is asked");
            }
        }

        if (flags.GetBool("service-account-lookup") == false)
        {
            f.Fail(R.ServiceAccountLookup, flags.Show("service-account-lookup") + ": deleted service-account tokens keep working");
        }
        else
        {
            f.Pass(R.ServiceAccountLookup, flags.IsSet("service-account-lookup") ? flags.Show("service-account-lookup") : "--service-account-lookup not set (default true)");
        }

        ServiceAccountKey(f, input);
        var issuer = flags.HasValue("service-account-issuer");
        var signing = flags.HasValue("service-account-signing-key-file");
        if (issuer && signing)
        {
            f.Pass(R.ServiceAccountIssuer, $"{flags.Show("service-account-issuer")} {flags.Show("service-account-signing-key-file")}");
        }
        else
        {
            f.Warn(R.ServiceAccountIssuer, string.Join("; ", new[] { issuer ? null : "--service-account-issuer not set", signing ? null : "--service-account-signing-key-file not set" }.Where(x => x is not null)));
        }

        switch (flags.GetBool("service-account-extend-token-expiration"))
        {
            case false:
                f.Pass(R.ExtendTokenExpiration, "--service-account-extend-token-expiration=false");
                break;
            default:
                f.Fail(R.ExtendTokenExpiration, flags.IsSet("service-account-extend-token-expiration")
                    ? flags.Show("service-account-extend-token-expiration") + ": projected tokens live up to a year"
                    : "--service-account-extend-token-expiration not set (default true: projected tokens live up to a year)");
                break;
        }
    }

    private static void ServiceAccountKey(FindingList f, ApiServerInput input)
    {
        var flags = input.Flags;
        var keys = flags.GetAll("service-account-key-file").Where(k => !string.IsNullOrWhiteSpace(k)).ToList();
        if (keys.Count == 0)
        {
            f.Fail(R.ServiceAccountKeyFile, flags.IsSet("service-account-key-file") ? "--service-account-key-file is empty" : "--service-account-key-file not set");
            return;
        }
        foreach (var key in keys)
        {
            var file = input.Files.Read(key);
            if (file.WasRead)
            {
                if (!file.Text!.Contains("-----BEGIN ", StringComparison.Ordinal))
                {
                    f.Fail(R.ServiceAccountKeyFile, $"--service-account-key-file={key}: {file.Where} holds no PEM block", key);
                    return;
                }
            }
            else if (key.Contains('\\', StringComparison.Ordinal) || !PemKeyExtensions.Any(e => key.EndsWith(e, StringComparison.OrdinalIgnoreCase)))
            {
                // Without the file, the name is all there is: kube-apiserver wants PEM keys, named as such by every installer.
                f.Fail(R.ServiceAccountKeyFile, $"--service-account-key-file={key}: does not name a PEM key file (.pem, .key, .pub or .crt) and was not found to check");
                return;
            }
        }
        f.Pass(R.ServiceAccountKeyFile, string.Join(" ", keys.Select(k => "--service-account-key-file=" + k)));
    }

    private static void Authorization(FindingList f, ApiServerInput input)
    {
        var flags = input.Flags;
        IReadOnlyList<string> modes;
        string source;
        var authzConfig = flags.Get("authorization-config");
        if (!string.IsNullOrWhiteSpace(authzConfig))
        {
            var file = input.Files.Read(authzConfig);
            if (file.WasRead)
            {
                AuthorizationWebhookConfig(f, file, authzConfig);
            }
            else
            {
                f.Info(R.AuthorizationWebhook, $"--authorization-config={authzConfig}: authorizers could not be read");
            }
            source = $"--authorization-config={authzConfig}";
            if (!file.WasRead)
            {
                f.Warn(R.AuthorizationConfig, $"{source}: {file.Problem}; authorizers not checked", authzConfig);
                foreach (var rule in new[] { R.NotAlwaysAllow, R.ModeNode, R.ModeRbac })
                {
                    f.Info(rule, $"{source}: authorizers could not be read");
                }
                return;
            }
            var problems = new List<string>();
            var types = SafeRead(() => KubeConfigFiles.ReadAuthorizationConfiguration(file, problems), problems, file);
            if (types is null || problems.Count > 0)
            {
                f.Fail(R.AuthorizationConfig, string.Join("; ", problems), authzConfig);
                if (types is null)
                {
                    return;
                }
            }
            else
            {
                f.Pass(R.AuthorizationConfig, $"{file.Where}: authorizers {string.Join(",", types)}", authzConfig);
            }
            modes = types;
            source = $"{file.Where} authorizers [{string.Join(",", types)}]";
        }
        else
        {
            modes = flags.GetList("authorization-mode");
            source = flags.IsSet("authorization-mode") ? flags.Show("authorization-mode") : "--authorization-mode not set (default AlwaysAllow)";
            if (modes.Count == 0)
            {
                modes = ["AlwaysAllow"];
            }
            AuthorizationWebhookFlags(f, flags, modes, source);
        }
        if (modes.Contains("AlwaysAllow", StringComparer.OrdinalIgnoreCase))
        {
            f.Fail(R.NotAlwaysAllow, source + ": every authenticated request is allowed");
        }
        else
        {
            f.Pass(R.NotAlwaysAllow, source);
        }
        if (modes.Contains("Node"))
        {
            f.Pass(R.ModeNode, source);
        }
        else
        {
            f.Fail(R.ModeNode, source + ": kubelets are not limited to their own node's objects");
        }
        if (modes.Contains("RBAC"))
        {
            f.Pass(R.ModeRbac, source);
        }
        else
        {
            f.Fail(R.ModeRbac, source + ": RBAC is not evaluated");
        }
    }

    /// <summary>
    /// Above kube-apiserver's default (2m) a token refused by the webhook — a deny-list entry — keeps working too long.
    /// </summary>
    internal static readonly TimeSpan WebhookCacheTtlLimit = TimeSpan.FromMinutes(2);

    private static readonly string[] TokenWebhookSettings = ["authentication-token-webhook-cache-ttl", "authentication-token-webhook-version"];

    /// <summary>
    /// PC-L3-AUTHN-WEBHOOK: the kubeconfig of --authentication-token-webhook-config-file (the cluster kube-apiserver's
    /// webhook loader takes: current-context's, or the first with no contexts) names an https server whose certificate is
    /// checked against a CA it gives, and --authentication-token-webhook-version is one kube-apiserver accepts.
    /// Every bearer token of every request is sent to that server.
    /// </summary>
    private static void AuthenticationWebhook(FindingList f, ApiServerInput input)
    {
        var flags = input.Flags;
        var named = flags.Get("authentication-token-webhook-config-file")!;
        var shown = flags.Show("authentication-token-webhook-config-file");
        var version = flags.Get("authentication-token-webhook-version");
        if (version is not null and not ("v1" or "v1beta1"))
        {
            f.Fail(R.AuthenticationWebhook, $"{flags.Show("authentication-token-webhook-version")}: must be v1 or v1beta1 (kube-apiserver will not start)", named);
            return;
        }
        var versionNote = version is null
            ? "TokenReview v1beta1 (--authentication-token-webhook-version not set; v1 is current)"
            : $"TokenReview {version}";
        var file = input.Files.Read(named);
        if (!file.WasRead)
        {
            f.Warn(R.AuthenticationWebhook, $"{shown}: {file.Problem}; its server and CA were not checked", named);
            return;
        }
        var errors = new List<ConfigError>();
        var kubeconfig = KubeconfigFile.Parse(file.Text!, file.Where, errors);
        if (kubeconfig is null)
        {
            f.Fail(R.AuthenticationWebhook, $"{shown}: not a kubeconfig: {string.Join("; ", errors)} (kube-apiserver will not start)", named);
            return;
        }
        KubeconfigCluster? cluster;
        if (kubeconfig.CurrentContext.Length == 0 && kubeconfig.Contexts.Count == 0)
        {
            cluster = kubeconfig.Clusters.Count > 0 ? kubeconfig.Clusters[0] : null;
        }
        else
        {
            var context = kubeconfig.Contexts.FirstOrDefault(c => c.Name == kubeconfig.CurrentContext);
            cluster = context is null ? null : kubeconfig.Clusters.FirstOrDefault(c => c.Name == context.Cluster);
        }
        if (cluster is null)
        {
            f.Fail(R.AuthenticationWebhook, $"{file.Where}: no cluster for current-context \"{kubeconfig.CurrentContext}\" (kube-apiserver will not start)", named);
            return;
        }
        var at = cluster.Line <= 0 ? file.Where
            : file.HostPath is null || file.HostPath == file.Named ? $"{file.Named}:{cluster.Line}" : $"{file.Named}:{cluster.Line} (read at {file.HostPath})";
        if (!Uri.TryCreate(cluster.Server, UriKind.Absolute, out var server) || server.Scheme != Uri.UriSchemeHttps)
        {
            f.Fail(R.AuthenticationWebhook, $"{at}: server \"{cluster.Server}\" is not https: every bearer token would cross the network readable", named);
            return;
        }
        if (cluster.InsecureSkipTlsVerify)
        {
            f.Fail(R.AuthenticationWebhook, $"{at}: insecure-skip-tls-verify: true: any server that answers at {server.Authority} receives every bearer token and decides who it is", named);
            return;
        }
        if (cluster.CertificateAuthority.Length == 0 && cluster.CertificateAuthorityData.Length == 0)
        {
            f.Warn(R.AuthenticationWebhook, $"{at}: {cluster.Server} without certificate-authority: its certificate is checked against the system's public roots, " +
                $"so any public CA can vouch for a server that would receive every bearer token; {versionNote}", named);
            return;
        }
        var ca = "certificate-authority-data";
        if (cluster.CertificateAuthorityData.Length == 0)
        {
            var caFile = input.Files.ReadRelative(file, cluster.CertificateAuthority);
            if (!caFile.WasRead && caFile.HostPath is not null)
            {
                f.Fail(R.AuthenticationWebhook, $"{at}: certificate-authority {cluster.CertificateAuthority}: {caFile.Problem} (kube-apiserver will not start)", named);
                return;
            }
            if (caFile.WasRead && !caFile.Text!.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal))
            {
                f.Fail(R.AuthenticationWebhook, $"{at}: certificate-authority {caFile.Where} holds no PEM certificate (kube-apiserver will not start)", named);
                return;
            }
            ca = $"certificate-authority {cluster.CertificateAuthority}";
        }
        f.Pass(R.AuthenticationWebhook, $"{at}: {cluster.Server} verified with {ca}; {versionNote}", named);
    }

    private const string AfterRbac =
        "the union of authorizers stops at the first allow, so a webhook after RBAC is asked only when RBAC has no allow: " +
        "a deny list there never refuses what RBAC grants (a stolen certificate of a bound user keeps its rights)";

    /// <summary>PC-L4-AUTHZ-WEBHOOK from the legacy flags: Webhook in --authorization-mode with its kubeconfig, before RBAC.</summary>
    private static void AuthorizationWebhookFlags(FindingList f, ApiServerFlags flags, IReadOnlyList<string> modes, string source)
    {
        var webhook = modes.ToList().IndexOf("Webhook");
        var rbac = modes.ToList().IndexOf("RBAC");
        var file = flags.Get("authorization-webhook-config-file");
        if (webhook < 0)
        {
            if (!string.IsNullOrWhiteSpace(file))
            {
                f.Warn(R.AuthorizationWebhook, $"{flags.Show("authorization-webhook-config-file")} is set but {source} has no Webhook: the webhook is never asked");
            }
            else
            {
                f.Info(R.AuthorizationWebhook, $"{source}: no authorization webhook");
            }
            return;
        }
        if (string.IsNullOrWhiteSpace(file))
        {
            f.Fail(R.AuthorizationWebhook, $"{source} includes Webhook but --authorization-webhook-config-file is not set (kube-apiserver will not start)");
            return;
        }
        if (rbac >= 0 && webhook > rbac)
        {
            f.Fail(R.AuthorizationWebhook, $"{source}: Webhook comes after RBAC; {AfterRbac}");
            return;
        }
        var ttl = flags.IsSet("authorization-webhook-cache-authorized-ttl") ? flags.Show("authorization-webhook-cache-authorized-ttl") : "authorized answers cached 5m (default)";
        f.Warn(R.AuthorizationWebhook, $"{source} with {flags.Show("authorization-webhook-config-file")}: the legacy flags give the webhook failurePolicy NoOpinion, " +
            $"so when it cannot be reached RBAC decides alone (a deny list fails open); {ttl}");
    }

    /// <summary>PC-L4-AUTHZ-WEBHOOK from an AuthorizationConfiguration: each Webhook authorizer's place and failurePolicy.</summary>
    private static void AuthorizationWebhookConfig(FindingList f, ReferencedFile file, string named)
    {
        // Validation problems are PC-L4-AUTHZ-CONFIG's; here only the order and policies of what could be bound.
        var parsed = AuthorizationConfigurationFile.TryParse(file.Text!, file.Where, []);
        if (parsed is null)
        {
            f.Info(R.AuthorizationWebhook, $"{file.Where}: not readable as one YAML document");
            return;
        }
        var authorizers = parsed.Authorizers;
        var rbac = authorizers.FindIndex(a => a.Type == "RBAC");
        var notes = new List<string>();
        var worst = CheckStatus.Pass;
        for (var i = 0; i < authorizers.Count; i++)
        {
            var a = authorizers[i];
            if (a.Type != "Webhook")
            {
                continue;
            }
            var line = i < parsed.Lines.Count && parsed.Lines[i] > 0 ? $"{file.Where}:{parsed.Lines[i]}" : file.Where;
            var policy = a.Webhook?.FailurePolicy ?? "";
            var conditions = a.Webhook?.MatchConditions.Count ?? 0;
            var ttl = a.Webhook is { } w ? $"authorizedTTL {GoDuration.Format(w.EffectiveAuthorizedTtl)}, unauthorizedTTL {GoDuration.Format(w.EffectiveUnauthorizedTtl)}" : "";
            if (rbac >= 0 && i > rbac)
            {
                worst = CheckStatus.Fail;
                notes.Add($"{line}: webhook \"{a.Name}\" comes after RBAC; {AfterRbac}");
            }
            else if (policy != "Deny")
            {
                worst = worst == CheckStatus.Fail ? worst : CheckStatus.Warn;
                notes.Add($"{line}: webhook \"{a.Name}\" has failurePolicy {(policy.Length == 0 ? "(not set)" : policy)}: when it cannot be reached the next authorizers decide alone (a deny list fails open); {ttl}");
            }
            else
            {
                notes.Add($"{line}: webhook \"{a.Name}\" before RBAC with failurePolicy Deny, {conditions} matchCondition(s); {ttl}");
            }
        }
        if (notes.Count == 0)
        {
            f.Info(R.AuthorizationWebhook, $"--authorization-config={named}: no Webhook authorizer");
            return;
        }
        f.Add(R.AuthorizationWebhook, worst, string.Join("; ", notes), named);
    }

    private static void Admission(FindingList f, ApiServerInput input)
    {
        var flags = input.Flags;
        var enabled = flags.GetList("enable-admission-plugins").Concat(flags.GetList("admission-control")).ToList();
        var disabled = flags.GetList("disable-admission-plugins");
        var enabledText = flags.IsSet("enable-admission-plugins") ? flags.Show("enable-admission-plugins") : "--enable-admission-plugins not set";

        if (enabled.Contains("DenyServiceExternalIPs"))
        {
            f.Pass(R.DenyServiceExternalIps, enabledText);
        }
        else
        {
            f.Warn(R.DenyServiceExternalIps, enabledText + ": Services may claim arbitrary externalIPs");
        }

        var erl = enabled.Contains("EventRateLimit");
        if (erl)
        {
            f.Pass(R.EventRateLimitPlugin, enabledText);
        }
        else
        {
            f.Warn(R.EventRateLimitPlugin, enabledText + ": Event floods are not limited");
        }
        var admissionConfig = flags.Get("admission-control-config-file");
        if (!string.IsNullOrWhiteSpace(admissionConfig))
        {
            FileScoring.ScoreAdmissionConfig(f, input.Files.Read(admissionConfig), input.Files, flags.Show("admission-control-config-file"), erl);
        }
        else if (erl)
        {
            f.Fail(R.EventRateLimitConfig, "EventRateLimit is enabled but --admission-control-config-file is not set (kube-apiserver will not start)");
        }

        if (enabled.Contains("AlwaysAdmit"))
        {
            f.Fail(R.AlwaysAdmit, enabledText + ": AlwaysAdmit lets every request through admission");
        }
        else
        {
            f.Pass(R.AlwaysAdmit, enabledText);
        }
        if (enabled.Contains("AlwaysPullImages"))
        {
            f.Pass(R.AlwaysPullImages, enabledText);
        }
        else
        {
            f.Warn(R.AlwaysPullImages, enabledText + ": cached private images can be used by any Pod on the node");
        }
        var disabledText = flags.IsSet("disable-admission-plugins") ? flags.Show("disable-admission-plugins") : "--disable-admission-plugins not set";
        NotDisabled(f, R.ServiceAccountPlugin, "ServiceAccount", disabled, disabledText);
        NotDisabled(f, R.NamespaceLifecyclePlugin, "NamespaceLifecycle", disabled, disabledText);
        NotDisabled(f, R.PodSecurity, "PodSecurity", disabled, disabledText);
        if (enabled.Contains("NodeRestriction"))
        {
            f.Pass(R.NodeRestriction, enabledText);
        }
        else
        {
            f.Fail(R.NodeRestriction, enabledText + ": kubelets may modify other nodes' objects");
        }

        if (flags.GetBool("enable-priority-and-fairness") == false)
        {
            f.Fail(R.PriorityAndFairness, "--enable-priority-and-fairness=false: only max-in-flight limits protect the server");
        }
        else if (input.Live is { } live)
        {
            if (live.FlowSchemas is null)
            {
                f.Info(R.PriorityAndFairness, "APF flag not disabled; FlowSchemas could not be listed");
            }
            else if (live.FlowSchemas.Count == 0)
            {
                f.Warn(R.PriorityAndFairness, "no FlowSchemas exist in the cluster");
            }
            else
            {
                f.Pass(R.PriorityAndFairness, $"{live.FlowSchemas.Count} FlowSchema(s), {live.PriorityLevels?.Count ?? 0} PriorityLevelConfiguration(s)");
            }
        }
        else
        {
            f.Pass(R.PriorityAndFairness, flags.IsSet("enable-priority-and-fairness") ? flags.Show("enable-priority-and-fairness") : "--enable-priority-and-fairness not set (default true)");
        }

        var timeout = flags.Get("request-timeout");
        if (timeout is null)
        {
            f.Pass(R.RequestTimeout, "--request-timeout not set (60s)");
        }
        else if (!GoDuration.TryParse(timeout, out var value) || value <= TimeSpan.Zero)
        {
            f.Fail(R.RequestTimeout, $"--request-timeout={timeout}: not a positive Go duration (e.g. 60s, 5m)");
        }
        else if (value > TimeSpan.FromHours(1))
        {
            f.Warn(R.RequestTimeout, $"--request-timeout={timeout} ({value}): slow requests may hold server resources that long");
        }
        else
        {
            f.Pass(R.RequestTimeout, $"--request-timeout={timeout}");
        }
    }

    private static void NotDisabled(FindingList f, RuleInfo rule, string plugin, IReadOnlyList<string> disabled, string disabledText)
    {
        if (disabled.Contains(plugin))
        {
            f.Fail(rule, $"{disabledText}: {plugin} is disabled");
        }
        else
        {
            f.Pass(rule, $"{disabledText} ({plugin} is on by default)");
        }
    }

    private static void Audit(FindingList f, ApiServerInput input)
    {
        var flags = input.Flags;
        OneSet(f, R.AuditLogPath, flags, "audit-log-path");
        AtLeast(f, R.AuditLogMaxAge, flags, "audit-log-maxage", 30);
        AtLeast(f, R.AuditLogMaxBackup, flags, "audit-log-maxbackup", 10);
        AtLeast(f, R.AuditLogMaxSize, flags, "audit-log-maxsize", 100);

        var policy = flags.Get("audit-policy-file");
        if (string.IsNullOrWhiteSpace(policy))
        {
            f.Fail(R.AuditPolicyFile, flags.IsSet("audit-policy-file") ? "--audit-policy-file is empty" : "--audit-policy-file not set: audit is off");
            return;
        }
        f.Pass(R.AuditPolicyFile, flags.Show("audit-policy-file"));
        FileScoring.ScoreAuditPolicy(f, input.Files.Read(policy), flags.Show("audit-policy-file"));
    }

    private static void AtLeast(FindingList f, RuleInfo rule, ApiServerFlags flags, string name, int minimum)
    {
        var text = flags.Get(name);
        if (text is null)
        {
            f.Fail(rule, $"--{name} not set");
        }
        else if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
        {
            f.Fail(rule, $"--{name}={text}: not a number");
        }
        else if (value < minimum)
        {
            f.Fail(rule, $"--{name}={value}: below {minimum}");
        }
        else
        {
            f.Pass(rule, $"--{name}={value}");
        }
    }
}
