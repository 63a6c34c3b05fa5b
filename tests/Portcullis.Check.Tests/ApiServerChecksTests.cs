using Portcullis.Check.Rules;

namespace Portcullis.Check.Tests;

public sealed class ApiServerChecksTests
{
    private static CheckReport CheckManifest(string[] flags, Action<string>? prepareRoot = null)
    {
        var root = TestFiles.NewDirectory();
        if (prepareRoot is null)
        {
            HandMade.WriteNodeFiles(root);
        }
        else
        {
            prepareRoot(root);
        }
        var manifest = TestFiles.Write(TestFiles.NewDirectory(), "kube-apiserver.yaml", HandMade.Manifest(flags));
        var report = ConfigurationCheck.FromManifest(manifest, root);
        Assert.Null(report.InputError);
        return report;
    }

    private static Finding Single(CheckReport report, string id) => Assert.Single(report.Findings, f => f.Id == id);

    private static string Describe(IEnumerable<Finding> findings) => string.Join("\n", findings.Select(f => $"{f.Status} {f.Id} {f.Evidence}"));

    [Fact]
    public void Hardened_manifest_passes_every_rule()
    {
        var report = CheckManifest(HandMade.SecureFlags);
        var bad = report.Findings.Where(f => f.Status is CheckStatus.Fail or CheckStatus.Warn).ToList();
        Assert.True(bad.Count == 0, Describe(bad));
        Assert.Equal(ExitCodes.Ok, report.ExitCode);
        // Every rule that applies without a live cluster or a webhook ran and passed.
        var expected = typeof(RuleCatalog).GetFields().Select(f => (RuleInfo)f.GetValue(null)!)
            .Where(r => r.Id is not ("PC-L1-SERVICE" or "PC-L3-WEBHOOK-TTL" or "PC-L3-AUTHN-WEBHOOK" or "PC-L4-AUTHZ-CONFIG" or "PC-L4-AUTHZ-WEBHOOK" or "PC-INPUT"))
            .Select(r => r.Id).ToHashSet();
        var seen = report.Findings.Where(f => f.Status == CheckStatus.Pass).Select(f => f.Id).ToHashSet();
        Assert.True(expected.IsSubsetOf(seen), "never passed: " + string.Join(", ", expected.Except(seen)));
    }

    [Theory]
    [InlineData("-profiling", "1.2.15", CheckStatus.Fail)]
    [InlineData("profiling=true", "1.2.15", CheckStatus.Fail)]
    [InlineData("-anonymous-auth|-authentication-config", "1.2.1", CheckStatus.Fail)]
    [InlineData("anonymous-auth=true|-authentication-config", "1.2.1", CheckStatus.Fail)]
    [InlineData("token-auth-file=/etc/kubernetes/tokens.csv", "1.2.2", CheckStatus.Fail)]
    [InlineData("enable-admission-plugins=NodeRestriction,EventRateLimit,AlwaysPullImages", "1.2.3", CheckStatus.Warn)]
    [InlineData("-kubelet-client-key", "1.2.4", CheckStatus.Fail)]
    [InlineData("-kubelet-certificate-authority", "1.2.5", CheckStatus.Fail)]
    [InlineData("authorization-mode=Node,RBAC,AlwaysAllow", "1.2.6", CheckStatus.Fail)]
    [InlineData("-authorization-mode", "1.2.6", CheckStatus.Fail)]
    [InlineData("authorization-mode=RBAC", "1.2.7", CheckStatus.Fail)]
    [InlineData("authorization-mode=Node,Webhook", "1.2.8", CheckStatus.Fail)]
    [InlineData("enable-admission-plugins=NodeRestriction,AlwaysPullImages,DenyServiceExternalIPs|-admission-control-config-file", "1.2.9", CheckStatus.Warn)]
    [InlineData("enable-admission-plugins=NodeRestriction,EventRateLimit,AlwaysPullImages,DenyServiceExternalIPs,AlwaysAdmit", "1.2.10", CheckStatus.Fail)]
    [InlineData("enable-admission-plugins=NodeRestriction,EventRateLimit,DenyServiceExternalIPs", "1.2.11", CheckStatus.Warn)]
    [InlineData("disable-admission-plugins=ServiceAccount", "1.2.12", CheckStatus.Fail)]
    [InlineData("disable-admission-plugins=NamespaceLifecycle", "1.2.13", CheckStatus.Fail)]
    [InlineData("enable-admission-plugins=EventRateLimit,AlwaysPullImages,DenyServiceExternalIPs", "1.2.14", CheckStatus.Fail)]
    [InlineData("-audit-log-path", "1.2.16", CheckStatus.Fail)]
    [InlineData("audit-log-maxage=7", "1.2.17", CheckStatus.Fail)]
    [InlineData("-audit-log-maxage", "1.2.17", CheckStatus.Fail)]
    [InlineData("audit-log-maxbackup=3", "1.2.18", CheckStatus.Fail)]
    [InlineData("-audit-log-maxbackup", "1.2.18", CheckStatus.Fail)]
    [InlineData("audit-log-maxsize=10", "1.2.19", CheckStatus.Fail)]
    [InlineData("-audit-log-maxsize", "1.2.19", CheckStatus.Fail)]
    [InlineData("request-timeout=2", "1.2.20", CheckStatus.Fail)]
    [InlineData("request-timeout=3h", "1.2.20", CheckStatus.Warn)]
    [InlineData("service-account-lookup=false", "1.2.21", CheckStatus.Fail)]
    [InlineData("-service-account-key-file", "1.2.22", CheckStatus.Fail)]
    [InlineData("-etcd-keyfile", "1.2.23", CheckStatus.Fail)]
    [InlineData("-tls-private-key-file", "1.2.24", CheckStatus.Fail)]
    [InlineData("-client-ca-file", "1.2.25", CheckStatus.Fail)]
    [InlineData("-etcd-cafile", "1.2.26", CheckStatus.Fail)]
    [InlineData("-encryption-provider-config", "1.2.27", CheckStatus.Warn)]
    [InlineData("tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_128_CBC_SHA", "1.2.29", CheckStatus.Fail)]
    [InlineData("-tls-cipher-suites", "1.2.29", CheckStatus.Warn)]
    [InlineData("service-account-extend-token-expiration=true", "1.2.30", CheckStatus.Fail)]
    [InlineData("-service-account-extend-token-expiration", "1.2.30", CheckStatus.Fail)]
    [InlineData("etcd-cafile=/etc/kubernetes/pki/ca.crt", "2.7", CheckStatus.Fail)]
    [InlineData("-audit-policy-file", "3.2.1", CheckStatus.Fail)]
    [InlineData("bind-address=0.0.0.0", "PC-L1-BIND", CheckStatus.Warn)]
    [InlineData("-bind-address", "PC-L1-BIND", CheckStatus.Warn)]
    [InlineData("insecure-port=8080", "PC-L1-INSECURE-PORT", CheckStatus.Fail)]
    [InlineData("insecure-bind-address=0.0.0.0", "PC-L1-INSECURE-BIND", CheckStatus.Fail)]
    [InlineData("secure-port=0", "PC-L1-SECURE-PORT", CheckStatus.Fail)]
    [InlineData("tls-min-version=VersionTLS10", "PC-L2-TLS-MIN-VERSION", CheckStatus.Fail)]
    [InlineData("kubelet-https=false", "PC-L2-KUBELET-HTTPS", CheckStatus.Fail)]
    [InlineData("etcd-servers=http://10.0.0.5:2379", "PC-L2-ETCD-HTTPS", CheckStatus.Fail)]
    [InlineData("basic-auth-file=/etc/kubernetes/basic.csv", "PC-L3-BASIC-AUTH", CheckStatus.Fail)]
    [InlineData("-authentication-config", "PC-L3-EXTERNAL-AUTHN", CheckStatus.Warn)]
    [InlineData("-authentication-config|oidc-issuer-url=http://dex.example.com|oidc-client-id=kubernetes", "PC-L3-OIDC-ISSUER", CheckStatus.Fail)]
    [InlineData("authentication-token-webhook-config-file=/etc/kubernetes/authn-webhook.yaml|authentication-token-webhook-cache-ttl=1h", "PC-L3-WEBHOOK-TTL", CheckStatus.Warn)]
    [InlineData("authentication-token-webhook-config-file=/etc/kubernetes/authn-webhook.yaml|authentication-token-webhook-cache-ttl=30s", "PC-L3-WEBHOOK-TTL", CheckStatus.Pass)]
    [InlineData("authentication-token-webhook-config-file=/etc/kubernetes/authn-webhook.yaml|authentication-token-webhook-cache-ttl=3m", "PC-L3-WEBHOOK-TTL", CheckStatus.Warn)]
    [InlineData("authentication-token-webhook-config-file=/etc/kubernetes/authn-webhook.yaml|authentication-token-webhook-cache-ttl=2m", "PC-L3-WEBHOOK-TTL", CheckStatus.Pass)]
    [InlineData("-service-account-issuer", "PC-L3-SA-ISSUER", CheckStatus.Warn)]
    [InlineData("disable-admission-plugins=PodSecurity", "PC-L5-POD-SECURITY", CheckStatus.Fail)]
    [InlineData("enable-priority-and-fairness=false", "PC-L5-APF", CheckStatus.Fail)]
    [InlineData("-admission-control-config-file", "PC-L5-EVENTRATELIMIT-CONFIG", CheckStatus.Fail)]
    public void One_change_from_the_hardened_manifest_is_reported(string changes, string id, CheckStatus expected)
    {
        var parsed = changes.Split('|').Select(c => c.StartsWith('-') ? (c[1..], (string?)null) : (c[..c.IndexOf('=')], c[(c.IndexOf('=') + 1)..])).ToArray();
        var report = CheckManifest(HandMade.With(parsed));
        var finding = Single(report, id);
        Assert.True(expected == finding.Status, $"{id}: expected {expected}, got {finding.Status}: {finding.Evidence}");
        if (expected != CheckStatus.Pass)
        {
            Assert.NotEmpty(finding.Remediation);
            Assert.NotEmpty(finding.Evidence);
        }
        Assert.Equal(report.Findings.Any(f => f.Status == CheckStatus.Fail) ? ExitCodes.Failures : ExitCodes.Ok, report.ExitCode);
    }

    [Fact]
    public void Files_are_followed_through_the_hostPath_volume_mount()
    {
        var root = TestFiles.NewDirectory();
        var config = Path.Combine(root, "srv", "k8s-config");
        HandMade.WriteNodeFiles(root);
        // Move the files to where the manifest's hostPath says they are on the node.
        Directory.CreateDirectory(Path.GetDirectoryName(config)!);
        Directory.Move(Path.Combine(root, "etc", "kubernetes"), config);
        var manifest = TestFiles.Write(TestFiles.NewDirectory(), "kube-apiserver.yaml", HandMade.Manifest(HandMade.SecureFlags, "/srv/k8s-config"));

        var report = ConfigurationCheck.FromManifest(manifest, root);

        var policy = Single(report, "PC-L6-AUDIT-POLICY");
        Assert.Equal(CheckStatus.Pass, policy.Status);
        Assert.Contains(Path.Combine(config, "audit-policy.yaml"), policy.Evidence, StringComparison.Ordinal);
        Assert.Equal(CheckStatus.Pass, Single(report, "PC-L5-EVENTRATELIMIT-CONFIG").Status);
        Assert.Contains("Namespace qps=50 burst=100", Single(report, "PC-L5-EVENTRATELIMIT-CONFIG").Evidence, StringComparison.Ordinal);
        Assert.Equal(CheckStatus.Pass, Single(report, "1.2.28").Status);
    }

    [Fact]
    public void Missing_audit_policy_file_is_a_warning_that_says_where_it_looked()
    {
        var report = CheckManifest(HandMade.SecureFlags, root => HandMade.WriteNodeFiles(root, auditPolicy: null));
        Assert.Equal(CheckStatus.Pass, Single(report, "3.2.1").Status);
        var finding = Single(report, "PC-L6-AUDIT-POLICY");
        Assert.Equal(CheckStatus.Warn, finding.Status);
        Assert.Contains("not found at", finding.Evidence, StringComparison.Ordinal);
        Assert.DoesNotContain(report.Findings, f => f.Id == "3.2.2");
    }

    [Theory]
    // The texts are the gateway's own (AuditPolicyLoader): check, validate and serve say the same about a policy.
    [InlineData("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  resources: [\n", "(yaml): ")]
    [InlineData("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: Metadata\n", "\"audit.k8s.io/v1beta1\" is not supported; must be audit.k8s.io/v1")]
    [InlineData("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n", "0 rules")]
    [InlineData("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Everything\n", "unsupported value \"Everything\"; must be None, Metadata, Request or RequestResponse")]
    [InlineData("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  nonResourceURLs: [healthz]\n", "\"healthz\" must start with \"/\"")]
    [InlineData("{\"apiVersion\": \"audit.k8s.io/v1\", \"kind\": \"Policy\", \"rules\": [", "(yaml): ")]
    [InlineData("- just\n- a list\n", "must be an audit.k8s.io/v1 Policy object")]
    public void Broken_audit_policy_is_a_failure_not_a_crash(string policy, string expected)
    {
        var report = CheckManifest(HandMade.SecureFlags, root => HandMade.WriteNodeFiles(root, auditPolicy: policy));
        var finding = Single(report, "PC-L6-AUDIT-POLICY");
        Assert.Equal(CheckStatus.Fail, finding.Status);
        Assert.Contains(expected, finding.Evidence, StringComparison.Ordinal);
        Assert.Contains("audit-policy.yaml", finding.Evidence, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.Failures, report.ExitCode);
    }

    [Theory]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins: [\n", null, "not valid YAML")]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: ResourceQuota\n  path: rq.yaml\n", null, "no EventRateLimit entry")]
    [InlineData(null, "apiVersion: eventratelimit.admission.k8s.io/v1alpha1\nkind: Configuration\nlimits: []\n", "must not be empty")]
    [InlineData(null, "apiVersion: eventratelimit.admission.k8s.io/v1alpha1\nkind: Configuration\nlimits:\n- type: Namespace\n  qps: 0\n  burst: 10\n", "qps \"0\" must be a positive integer")]
    [InlineData(null, "apiVersion: eventratelimit.admission.k8s.io/v1alpha1\nkind: Configuration\nlimits:\n- type: Cluster\n  qps: 5\n  burst: 10\n", "must be Server, Namespace, User or SourceAndObject")]
    [InlineData(null, "limits: {", "not valid YAML")]
    public void Broken_EventRateLimit_configuration_is_a_failure(string? admission, string? eventConfig, string expected)
    {
        var report = CheckManifest(HandMade.SecureFlags, root => HandMade.WriteNodeFiles(root,
            admission: admission ?? HandMade.AdmissionConfiguration, eventConfig: eventConfig ?? HandMade.EventConfig));
        var finding = Single(report, "PC-L5-EVENTRATELIMIT-CONFIG");
        Assert.Equal(CheckStatus.Fail, finding.Status);
        Assert.Contains(expected, finding.Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public void Inline_EventRateLimit_configuration_is_read()
    {
        const string admission = """
            apiVersion: apiserver.config.k8s.io/v1
            kind: AdmissionConfiguration
            plugins:
            - name: EventRateLimit
              configuration:
                apiVersion: eventratelimit.admission.k8s.io/v1alpha1
                kind: Configuration
                limits:
                - {type: Server, qps: 5000, burst: 20000}
            """;
        var report = CheckManifest(HandMade.SecureFlags, root => HandMade.WriteNodeFiles(root, admission: admission, eventConfig: null));
        var finding = Single(report, "PC-L5-EVENTRATELIMIT-CONFIG");
        Assert.Equal(CheckStatus.Pass, finding.Status);
        Assert.Contains("Server qps=5000 burst=20000", finding.Evidence, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\nanonymous:\n  enabled: true\n", "1.2.1", CheckStatus.Fail)]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\nanonymous:\n  enabled: true\n  conditions:\n  - path: /api\n", "1.2.1", CheckStatus.Warn)]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\nanonymous:\n  enabled: false\n", "1.2.1", CheckStatus.Pass)]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt:\n- issuer: {url: 'http://plain.example.com', audiences: [k]}\n", "PC-L3-OIDC-ISSUER", CheckStatus.Fail)]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt: [\n", "PC-L3-AUTHN-CONFIG", CheckStatus.Fail)]
    [InlineData("apiVersion: v1\nkind: Config\n", "PC-L3-AUTHN-CONFIG", CheckStatus.Fail)]
    public void AuthenticationConfiguration_is_scored(string authn, string id, CheckStatus expected)
    {
        var report = CheckManifest(HandMade.SecureFlags, root => HandMade.WriteNodeFiles(root, authn: authn));
        var finding = Single(report, id);
        Assert.True(expected == finding.Status, $"{id}: {finding.Status} {finding.Evidence}");
    }

    [Fact]
    public void AuthenticationConfiguration_problems_have_the_texts_validate_and_serve_give()
    {
        // check reads the file with Core's AuthenticationConfigurationFile, as the gateway does; before, it had its own
        // reader that saw neither a missing audience nor an issuer that is also the service-account issuer.
        const string text = "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt:\n- issuer:\n    url: https://kubernetes.default.svc.cluster.local\n";
        var expected = Assert.Throws<Portcullis.Configuration.ConfigurationException>(() =>
            Portcullis.Authentication.Oidc.AuthenticationConfigurationFile.Parse(text, "authn.yaml", ["https://kubernetes.default.svc.cluster.local"])).Errors;

        var report = CheckManifest(HandMade.SecureFlags, root => HandMade.WriteNodeFiles(root, authn: text));

        var finding = Single(report, "PC-L3-AUTHN-CONFIG");
        Assert.Equal(CheckStatus.Fail, finding.Status);
        Assert.Contains(expected, e => e.Message.Contains("conflicts with a service-account issuer", StringComparison.Ordinal));
        Assert.Contains(expected, e => e.Field == "jwt[0].issuer.audiences");
        foreach (var error in expected)
        {
            // The same line, field and message; only the file's name differs (check names it as the flag does).
            Assert.Contains($":{error.Line}: {error.Field}: {error.Message}", finding.Evidence, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Anonymous_given_both_as_flag_and_in_the_AuthenticationConfiguration_fails()
    {
        // The hand-made AuthenticationConfiguration has an anonymous section.
        var report = CheckManifest([.. HandMade.SecureFlags, "--anonymous-auth=false"]);
        Assert.Contains(report.Findings, f => f.Id == "PC-L3-AUTHN-CONFIG" && f.Status == CheckStatus.Fail && f.Evidence.Contains("only one of them", StringComparison.Ordinal));
    }

    [Fact]
    public void Kubernetes_docs_anonymous_example_limited_to_health_paths_passes()
    {
        var text = File.ReadAllText(TestFiles.Fixture("oidc/k8s-website-authentication-config-anonymous.yaml"));
        var report = CheckManifest(HandMade.SecureFlags, root => HandMade.WriteNodeFiles(root, authn: text));
        Assert.Equal(CheckStatus.Pass, Single(report, "1.2.1").Status);
        Assert.Equal(CheckStatus.Pass, Single(report, "PC-L3-AUTHN-CONFIG").Status);
    }

    [Theory]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers:\n- {type: Node, name: node}\n- {type: RBAC, name: rbac}\n", "1.2.6", CheckStatus.Pass)]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers:\n- {type: Node, name: node}\n- {type: AlwaysAllow, name: all}\n", "1.2.6", CheckStatus.Fail)]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers:\n- {type: Webhook, name: w}\n", "1.2.8", CheckStatus.Fail)]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers: [\n", "PC-L4-AUTHZ-CONFIG", CheckStatus.Fail)]
    public void AuthorizationConfiguration_replaces_the_mode_flag(string authz, string id, CheckStatus expected)
    {
        var flags = HandMade.With(("authorization-mode", null), ("authorization-config", "/etc/kubernetes/authz.yaml"));
        var report = CheckManifest(flags, root =>
        {
            HandMade.WriteNodeFiles(root);
            TestFiles.Write(root, "etc/kubernetes/authz.yaml", authz);
        });
        var finding = Single(report, id);
        Assert.True(expected == finding.Status, $"{id}: {finding.Status} {finding.Evidence}");
    }

    [Theory]
    [InlineData("authorization-mode=Node,Webhook,RBAC|authorization-webhook-config-file=/etc/kubernetes/authz-webhook.yaml", CheckStatus.Warn, "failurePolicy NoOpinion")]
    [InlineData("authorization-mode=Node,RBAC,Webhook|authorization-webhook-config-file=/etc/kubernetes/authz-webhook.yaml", CheckStatus.Fail, "Webhook comes after RBAC")]
    [InlineData("authorization-mode=Node,Webhook,RBAC", CheckStatus.Fail, "--authorization-webhook-config-file is not set")]
    [InlineData("authorization-webhook-config-file=/etc/kubernetes/authz-webhook.yaml", CheckStatus.Warn, "the webhook is never asked")]
    [InlineData("authorization-mode=Node,RBAC", CheckStatus.Info, "no authorization webhook")]
    public void Authorization_webhook_flags_are_scored_by_order_and_failure_policy(string flags, CheckStatus expected, string evidence)
    {
        var report = CheckManifest(HandMade.With([.. flags.Split('|').Select(Flag)]));
        var finding = Single(report, "PC-L4-AUTHZ-WEBHOOK");
        Assert.True(expected == finding.Status, $"{finding.Status} {finding.Evidence}");
        Assert.Contains(evidence, finding.Evidence, StringComparison.Ordinal);

        static (string, string?) Flag(string f) => (f.Split('=')[0], f.Split('=')[1]);
    }

    [Theory]
    // As `portcullis webhook kubeconfig` writes it: https, the webhook's CA, TokenReview v1.
    [InlineData("server: https://portcullis.kube-system.svc:8443\n    certificate-authority: ca.crt", "v1", CheckStatus.Pass, "https://portcullis.kube-system.svc:8443 verified with certificate-authority ca.crt; TokenReview v1")]
    [InlineData("server: https://10.0.0.9:8443\n    certificate-authority-data: LS0tLS1CRUdJTg==", null, CheckStatus.Pass, "verified with certificate-authority-data; TokenReview v1beta1 (--authentication-token-webhook-version not set")]
    [InlineData("server: http://portcullis:8080", "v1", CheckStatus.Fail, "server \"http://portcullis:8080\" is not https: every bearer token would cross the network readable")]
    [InlineData("server: https://portcullis:8443\n    insecure-skip-tls-verify: true", "v1", CheckStatus.Fail, "insecure-skip-tls-verify: true: any server that answers at portcullis:8443 receives every bearer token")]
    [InlineData("server: https://portcullis:8443", "v1", CheckStatus.Warn, "without certificate-authority: its certificate is checked against the system's public roots")]
    [InlineData("server: https://portcullis:8443\n    certificate-authority: missing-ca.crt", "v1", CheckStatus.Fail, "certificate-authority missing-ca.crt: not found at")]
    [InlineData("server: https://portcullis:8443\n    certificate-authority: ca.crt", "v2", CheckStatus.Fail, "--authentication-token-webhook-version=v2: must be v1 or v1beta1")]
    [InlineData(null, "v1", CheckStatus.Warn, "not found at")]
    public void Authentication_webhook_kubeconfig_is_scored_by_server_and_ca(string? cluster, string? version, CheckStatus expected, string evidence)
    {
        var flags = HandMade.With(("authentication-token-webhook-config-file", "/etc/kubernetes/portcullis/authentication-webhook.kubeconfig"),
            ("authentication-token-webhook-version", version), ("authentication-token-webhook-cache-ttl", "10s"));
        var report = CheckManifest(flags, root =>
        {
            HandMade.WriteNodeFiles(root);
            using var pki = new TestPki("portcullis-webhook");
            TestFiles.Write(root, "etc/kubernetes/portcullis/ca.crt", pki.CertificatePem);
            if (cluster is not null)
            {
                TestFiles.Write(root, "etc/kubernetes/portcullis/authentication-webhook.kubeconfig", $"""
                    apiVersion: v1
                    kind: Config
                    clusters:
                    - name: portcullis
                      cluster:
                        {cluster}
                    users:
                    - name: kube-apiserver
                      user: {"{"}tokenFile: /etc/kubernetes/portcullis/token{"}"}
                    contexts:
                    - name: webhook
                      context: {"{"}cluster: portcullis, user: kube-apiserver{"}"}
                    current-context: webhook
                    """);
            }
        });
        var finding = Single(report, "PC-L3-AUTHN-WEBHOOK");
        Assert.True(expected == finding.Status, $"{finding.Status} {finding.Evidence}");
        Assert.Contains(evidence, finding.Evidence, StringComparison.Ordinal);
        Assert.Equal(CheckStatus.Pass, Single(report, "PC-L3-WEBHOOK-TTL").Status);
        Assert.Equal(CheckStatus.Pass, Single(report, "PC-L3-EXTERNAL-AUTHN").Status);
    }

    [Fact]
    public void Token_webhook_flags_without_its_kubeconfig_are_noted()
    {
        var report = CheckManifest(HandMade.With(("authentication-token-webhook-cache-ttl", "10s")));
        var finding = Single(report, "PC-L3-AUTHN-WEBHOOK");
        Assert.Equal(CheckStatus.Info, finding.Status);
        Assert.Contains("--authentication-token-webhook-cache-ttl=10s set without --authentication-token-webhook-config-file", finding.Evidence, StringComparison.Ordinal);
    }

    [Theory]
    // kubernetes.io's example: a Deny webhook before Node and RBAC, and a second webhook after RBAC.
    [InlineData("webhook/k8s-website-authorization-config-example.yaml", CheckStatus.Fail, "webhook \"in-cluster-authorizer\" comes after RBAC")]
    [InlineData("webhook/k8s-website-authorization-config-conditional.yaml", CheckStatus.Pass, "webhook \"storage-policy-webhook\" before RBAC with failurePolicy Deny")]
    [InlineData(null, CheckStatus.Warn, "webhook \"portcullis\" has failurePolicy NoOpinion")]
    public void Authorization_configuration_webhooks_are_scored_by_order_and_failure_policy(string? fixture, CheckStatus expected, string evidence)
    {
        var text = fixture is null
            ? "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers:\n- {type: Node, name: node}\n"
              + "- type: Webhook\n  name: portcullis\n  webhook: {timeout: 3s, subjectAccessReviewVersion: v1, failurePolicy: NoOpinion, connectionInfo: {type: KubeConfigFile, kubeConfigFile: /etc/kubernetes/portcullis.kubeconfig}}\n"
              + "- {type: RBAC, name: rbac}\n"
            : File.ReadAllText(Path.Combine(TestFiles.Fixtures, fixture));
        var flags = HandMade.With(("authorization-mode", null), ("authorization-config", "/etc/kubernetes/authz.yaml"));
        var report = CheckManifest(flags, root =>
        {
            HandMade.WriteNodeFiles(root);
            TestFiles.Write(root, "etc/kubernetes/authz.yaml", text);
        });
        var finding = Single(report, "PC-L4-AUTHZ-WEBHOOK");
        Assert.True(expected == finding.Status, $"{finding.Status} {finding.Evidence}");
        Assert.Contains(evidence, finding.Evidence, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - identity: {}\n  - aescbc: {keys: [{name: k, secret: c2VjcmV0}]}\n", CheckStatus.Fail, "first provider is identity")]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - kms: {apiVersion: v2, name: vault, endpoint: 'unix:///kms.sock'}\n", CheckStatus.Pass, "kms")]
    [InlineData("kind: EncryptionConfiguration\nresources: [\n", CheckStatus.Fail, "not valid YAML")]
    public void Encryption_providers_are_scored(string encryption, CheckStatus expected, string evidence)
    {
        var report = CheckManifest(HandMade.SecureFlags, root => HandMade.WriteNodeFiles(root, encryption: encryption));
        var finding = Single(report, "1.2.28");
        Assert.Equal(expected, finding.Status);
        Assert.Contains(evidence, finding.Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public void Service_account_key_that_is_not_PEM_fails()
    {
        var report = CheckManifest(HandMade.SecureFlags, root =>
        {
            HandMade.WriteNodeFiles(root);
            TestFiles.Write(root, "etc/kubernetes/pki/sa.pub", "not a key");
        });
        Assert.Equal(CheckStatus.Fail, Single(report, "1.2.22").Status);
    }

    [Fact]
    public void Unreadable_inputs_exit_2_with_a_reason()
    {
        var dir = TestFiles.NewDirectory();
        Assert.Equal(ExitCodes.InputUnreadable, ConfigurationCheck.FromManifest(Path.Combine(dir, "absent.yaml"), null).ExitCode);
        var notApiServer = TestFiles.Write(dir, "pod.yaml", "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: nginx\n    image: nginx\n");
        var report = ConfigurationCheck.FromManifest(notApiServer, null);
        Assert.Equal(ExitCodes.InputUnreadable, report.ExitCode);
        Assert.Contains("no kube-apiserver container", report.InputError, StringComparison.Ordinal);
        var broken = TestFiles.Write(dir, "broken.yaml", "apiVersion: v1\nkind: Pod\nspec: [\n");
        Assert.Contains("not valid YAML", ConfigurationCheck.FromManifest(broken, null).InputError, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.InputUnreadable, ConfigurationCheck.FromFlags("kube-apiserver", null).ExitCode);
        Assert.Equal(ExitCodes.InputUnreadable, ConfigurationCheck.FromFlagsFile(Path.Combine(dir, "absent.txt"), null).ExitCode);
    }

    [Fact]
    public void Flags_from_ps_are_read_after_the_binary()
    {
        var line = "root  1234  1  3 10:00 ?  00:10:00 /usr/local/bin/kube-apiserver --anonymous-auth=false --audit-log-path /var/log/audit.log --profiling --authorization-mode='Node,RBAC'";
        var flags = ApiServerFlags.FromCommandLine(line);
        Assert.False(flags.GetBool("anonymous-auth"));
        Assert.Equal("/var/log/audit.log", flags.Get("audit-log-path"));
        Assert.True(flags.GetBool("profiling"));
        Assert.Equal(["Node", "RBAC"], flags.GetList("authorization-mode"));
        Assert.False(flags.IsSet("token-auth-file"));
        Assert.Null(flags.Get("token-auth-file"));
    }

    [Fact]
    public void Absent_is_not_the_same_as_set_to_the_default()
    {
        var absent = ApiServerFlags.FromArguments(["kube-apiserver"]);
        var explicitDefault = ApiServerFlags.FromArguments(["kube-apiserver", "--audit-log-maxage=0", "--profiling=true"]);
        Assert.False(absent.IsSet("audit-log-maxage"));
        Assert.True(explicitDefault.IsSet("audit-log-maxage"));
        Assert.Null(absent.GetBool("profiling"));
        Assert.True(explicitDefault.GetBool("profiling"));
    }

    [Fact]
    public void Two_flags_in_one_manifest_argument_are_read_as_two_and_noted()
    {
        var flags = ApiServerFlags.FromArguments(["kube-apiserver", "--tls-private-key-file=/k.key --token-auth-file=/t.csv"]);
        Assert.Equal("/k.key", flags.Get("tls-private-key-file"));
        Assert.Equal("/t.csv", flags.Get("token-auth-file"));
        Assert.Contains(flags.Notes, n => n.Contains("2 space-separated flags", StringComparison.Ordinal));
    }

    [Fact]
    public void Flags_of_a_shell_wrapped_command_are_read()
    {
        var flags = ApiServerFlags.FromArguments(["/bin/sh", "-c", "exec /usr/local/bin/kube-apiserver --anonymous-auth=false --audit-log-path='/var/log/audit.log' 2>&1 | tee /var/log/apiserver.log"]);
        Assert.False(flags.GetBool("anonymous-auth"));
        Assert.Equal("/var/log/audit.log", flags.Get("audit-log-path"));
        Assert.Contains(flags.Notes, n => n.Contains("shell script", StringComparison.Ordinal));
    }

    [Fact]
    public void Flags_file_is_read()
    {
        var path = TestFiles.Write(TestFiles.NewDirectory(), "flags.txt", "kube-apiserver \\\n  --anonymous-auth=true \\\n  --authorization-mode=AlwaysAllow\n");
        var report = ConfigurationCheck.FromFlagsFile(path, null);
        Assert.Equal(CheckStatus.Fail, Single(report, "1.2.1").Status);
        Assert.Equal(CheckStatus.Fail, Single(report, "1.2.6").Status);
        Assert.Equal(ExitCodes.Failures, report.ExitCode);
    }

    [Fact]
    public void Live_cluster_facts_score_service_exposure_and_APF()
    {
        var flags = ApiServerFlags.FromArguments(HandMade.SecureFlags);
        var exposed = new LiveClusterFacts(["exempt", "catch-all"], ["exempt"], "LoadBalancer", ["203.0.113.7"], []);
        var report = ConfigurationCheck.Run(new ApiServerInput("live", InputKind.LiveCluster, flags, ReferencedFiles.None, exposed));
        Assert.Equal(CheckStatus.Fail, Single(report, "PC-L1-SERVICE").Status);
        Assert.Equal(CheckStatus.Pass, Single(report, "PC-L5-APF").Status);
        Assert.Equal(CheckStatus.Warn, Single(report, "PC-L6-AUDIT-POLICY").Status); // files live on the node

        var noApf = new LiveClusterFacts([], [], "ClusterIP", [], []);
        report = ConfigurationCheck.Run(new ApiServerInput("live", InputKind.LiveCluster, flags, ReferencedFiles.None, noApf));
        Assert.Equal(CheckStatus.Pass, Single(report, "PC-L1-SERVICE").Status);
        Assert.Equal(CheckStatus.Warn, Single(report, "PC-L5-APF").Status);
    }
}
