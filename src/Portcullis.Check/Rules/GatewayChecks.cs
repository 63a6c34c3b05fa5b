using System.Net;
using Portcullis.Audit;
using Portcullis.Configuration;
using R = Portcullis.Check.Rules.RuleCatalog;

namespace Portcullis.Check.Rules;

/// <summary>Scores Portcullis's own GatewayConfiguration with the same rules, where a rule has a gateway equivalent.</summary>
public static class GatewayChecks
{
    /// <summary>
    /// Scores <paramref name="config"/> as loaded by the gateway's configuration pipeline; <paramref name="auditPolicy"/>
    /// is the audit policy that load parsed (null when <c>audit.policyFile</c> is not set), scored as it is, not read again.
    /// </summary>
    public static IReadOnlyList<Finding> Run(GatewayConfiguration config, AuditPolicy? auditPolicy)
    {
        ArgumentNullException.ThrowIfNull(config);
        var f = new FindingList();
        var where = config.SourcePath;

        // L1
        foreach (var listener in config.Listeners.Count == 0 ? [new ListenerConfiguration()] : config.Listeners)
        {
            var host = listener.Address.Contains(']', StringComparison.Ordinal) ? listener.Address[..(listener.Address.LastIndexOf(']') + 1)].Trim('[', ']')
                : listener.Address[..Math.Max(0, listener.Address.LastIndexOf(':'))];
            if (host is "0.0.0.0" or "::" or "" or "*")
            {
                f.Add(R.BindAddress, config.Network.Allow.Count > 0 ? CheckStatus.Pass : CheckStatus.Warn,
                    $"listeners[].address={listener.Address}: all interfaces" + (config.Network.Allow.Count > 0 ? $", limited by network.allow ({config.Network.Allow.Count} CIDR(s))" : " and network.allow is empty"), where);
            }
            else
            {
                f.Pass(R.BindAddress, $"listeners[].address={listener.Address}" + (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip) ? ": loopback only" : ""), where);
            }
        }

        // L2
        if (config.Tls is null || string.IsNullOrEmpty(config.Tls.CertFile) || string.IsNullOrEmpty(config.Tls.KeyFile))
        {
            f.Fail(R.TlsCertAndKey, "tls.certFile/tls.keyFile not set: the gateway would serve plain HTTP", where);
        }
        else
        {
            f.Pass(R.TlsCertAndKey, $"tls.certFile={config.Tls.CertFile} tls.keyFile={config.Tls.KeyFile}", where);
            if (config.Tls.MinVersion is "VersionTLS12" or "VersionTLS13")
            {
                f.Pass(R.TlsMinVersion, $"tls.minVersion={config.Tls.MinVersion}", where);
            }
            else
            {
                f.Fail(R.TlsMinVersion, $"tls.minVersion={config.Tls.MinVersion}", where);
            }
            var weak = config.Tls.CipherSuites.Where(s => !ApiServerChecks.StrongCipherSuites.Contains(s)).ToList();
            if (config.Tls.CipherSuites.Count == 0)
            {
                f.Pass(R.CipherSuites, "tls.cipherSuites not set: the gateway's defaults are the strong AEAD suites", where);
            }
            else if (weak.Count == 0)
            {
                f.Pass(R.CipherSuites, $"tls.cipherSuites: {config.Tls.CipherSuites.Count} strong suite(s)", where);
            }
            else
            {
                f.Fail(R.CipherSuites, $"tls.cipherSuites includes {string.Join(", ", weak)}", where);
            }
        }

        // L2: the client certificates the gateway itself presents (upstream, webhooks), against the limit it sets its clients
        var (limit, limitSource) = Portcullis.Tls.CertificateLifetimePolicy.FromConfiguration(config.Tls) is { } policy
            ? (policy.MaxLifetime, "tls.clientCertificates.maxLifetime")
            : (CertificateLifetimes.DefaultLimit, CertificateLifetimes.DefaultLimitSource);
        var files = ReferencedFiles.OnThisMachine(null);
        foreach (var (field, path) in new[]
                 {
                     ("upstream.kubeconfig", config.Upstream?.Kubeconfig ?? ""),
                     ("authentication.webhook.configFile", config.Authentication.Webhook.ConfigFile),
                     ("authorization.webhook.configFile", config.Authorization.Webhook.ConfigFile),
                 })
        {
            if (path.Length > 0)
            {
                CertificateLifetimes.ScoreKubeconfig(f, $"{field}={path}", files.Read(config.Resolve(path)), limit, limitSource);
            }
        }

        // L3
        var authn = config.Authentication;
        if (config.Tls is not null && !string.IsNullOrEmpty(config.Tls.ClientCAFile))
        {
            f.Pass(R.ClientCa, $"tls.clientCAFile={config.Tls.ClientCAFile}", where);
        }
        else
        {
            f.Warn(R.ClientCa, "tls.clientCAFile not set: no client-certificate authentication", where);
        }
        FileScoring.ScoreAnonymousConditions(f, authn.Anonymous.Enabled, authn.Anonymous.Paths, "authentication.anonymous", where);
        if (!string.IsNullOrEmpty(authn.TokenAuthFile))
        {
            f.Fail(R.TokenAuthFile, $"authentication.tokenAuthFile={authn.TokenAuthFile}: static bearer tokens", where);
        }
        else
        {
            f.Pass(R.TokenAuthFile, "authentication.tokenAuthFile not set", where);
        }
        var external = !string.IsNullOrEmpty(authn.Oidc.IssuerURL) || !string.IsNullOrEmpty(authn.AuthenticationConfigFile) || !string.IsNullOrEmpty(authn.Webhook.ConfigFile);
        if (external)
        {
            f.Pass(R.ExternalAuthn, string.Join("; ", new[]
            {
                authn.Oidc.IssuerURL.Length > 0 ? "authentication.oidc.issuerURL=" + authn.Oidc.IssuerURL : null,
                authn.AuthenticationConfigFile.Length > 0 ? "authentication.authenticationConfigFile=" + authn.AuthenticationConfigFile : null,
                authn.Webhook.ConfigFile.Length > 0 ? "authentication.webhook.configFile=" + authn.Webhook.ConfigFile : null,
            }.Where(x => x is not null)), where);
        }
        else
        {
            f.Warn(R.ExternalAuthn, "no authentication.oidc, authenticationConfigFile or webhook", where);
        }
        if (authn.Oidc.IssuerURL.Length > 0)
        {
            f.Add(R.OidcIssuer, authn.Oidc.IssuerURL.StartsWith("https://", StringComparison.OrdinalIgnoreCase) ? CheckStatus.Pass : CheckStatus.Fail, "authentication.oidc.issuerURL=" + authn.Oidc.IssuerURL, where);
        }
        if (authn.Webhook.ConfigFile.Length > 0)
        {
            f.Add(R.WebhookCacheTtl, authn.Webhook.CacheTTL > TimeSpan.FromMinutes(5) ? CheckStatus.Warn : CheckStatus.Pass, $"authentication.webhook.cacheTTL={authn.Webhook.CacheTTL}", where);
        }

        // L4
        var modes = config.Authorization.Modes;
        var modeText = $"authorization.modes=[{string.Join(",", modes)}]";
        f.Add(R.NotAlwaysAllow, modes.Contains(AuthorizationModes.AlwaysAllow) ? CheckStatus.Fail : CheckStatus.Pass, modeText, where);
        f.Add(R.ModeRbac, modes.Contains(AuthorizationModes.Rbac) || modes.Contains(AuthorizationModes.Webhook) ? CheckStatus.Pass : CheckStatus.Fail, modeText, where);

        // L5: API Priority and Fairness is enforced when admission.priorityAndFairness.enabled (the default); EventRateLimit
        // when admission.admissionControlConfigFile names a valid EventRateLimit configuration (read as the gateway reads it).
        var apf = config.Admission.PriorityAndFairness;
        if (apf.Enabled)
        {
            f.Add(R.PriorityAndFairness, CheckStatus.Pass,
                $"admission.priorityAndFairness.enabled=true: the gateway classifies and queues every request ({apf.MaxRequestsInflight + apf.MaxMutatingRequestsInflight} seats, {apf.ConfigFiles.Count} configFiles, suggested objects {(apf.SuggestedObjects ? "on" : "off")})", where);
        }
        else
        {
            f.Fail(R.PriorityAndFairness, "admission.priorityAndFairness.enabled=false: not enforced by the gateway; only the upstream kube-apiserver's own APF applies", where);
        }
        var admissionFile = config.Admission.AdmissionControlConfigFile;
        if (admissionFile.Length == 0)
        {
            f.Fail(R.EventRateLimitPlugin, "admission.admissionControlConfigFile not set: the gateway does not limit Event writes", where);
        }
        else
        {
            var errors = new List<Portcullis.Configuration.ConfigError>();
            var limits = Portcullis.Admission.RateLimiting.EventRateLimitFile.Load(config.Resolve(admissionFile), errors, []);
            if (limits is null)
            {
                f.Fail(R.EventRateLimitPlugin, $"admission.admissionControlConfigFile={admissionFile} is not a valid EventRateLimit configuration, the gateway will not load it: {string.Join("; ", errors.Select(e => e.ToString()))}", where);
            }
            else
            {
                f.Pass(R.EventRateLimitPlugin, $"admission.admissionControlConfigFile={admissionFile}: the gateway enforces EventRateLimit ({string.Join(", ", limits.Select(l => $"{l.Type} qps {l.Qps} burst {l.Burst}"))})", where);
            }
        }

        // L6
        var audit = config.Audit;
        if (audit.PolicyFile.Length == 0)
        {
            f.Fail(R.AuditPolicyFile, "audit.policyFile not set: audit is off", where);
        }
        else
        {
            f.Pass(R.AuditPolicyFile, "audit.policyFile=" + audit.PolicyFile, where);
            var policyPath = config.Resolve(audit.PolicyFile);
            if (auditPolicy is null)
            {
                // Only a caller that did not load the configuration through the pipeline gets here.
                f.Fail(R.AuditPolicyParses, $"{policyPath}: the audit policy was not loaded with the configuration, so it was not scored", policyPath);
            }
            else
            {
                FileScoring.ScoreLoadedAuditPolicy(f, auditPolicy, policyPath, policyPath);
            }
        }
        if (audit.Log.Path.Length == 0 && audit.Webhook.ConfigFile.Length == 0)
        {
            f.Fail(R.AuditLogPath, "neither audit.log.path nor audit.webhook.configFile is set", where);
        }
        else
        {
            f.Pass(R.AuditLogPath, audit.Log.Path.Length > 0 ? "audit.log.path=" + audit.Log.Path : "audit.webhook.configFile=" + audit.Webhook.ConfigFile, where);
            if (audit.Log.Path.Length > 0 && audit.Log.Path != "-")
            {
                f.Add(R.AuditLogMaxAge, audit.Log.MaxAge >= 30 ? CheckStatus.Pass : CheckStatus.Fail, $"audit.log.maxAge={audit.Log.MaxAge}", where);
                f.Add(R.AuditLogMaxBackup, audit.Log.MaxBackup >= 10 ? CheckStatus.Pass : CheckStatus.Fail, $"audit.log.maxBackup={audit.Log.MaxBackup}", where);
                f.Add(R.AuditLogMaxSize, audit.Log.MaxSize >= 100 ? CheckStatus.Pass : CheckStatus.Fail, $"audit.log.maxSize={audit.Log.MaxSize}", where);
            }
        }
        return f.Findings.OrderBy(x => x.Layer).ToList();
    }
}
