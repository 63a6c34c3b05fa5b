
namespace Portcullis.Check.Rules;

/// <summary>
/// Every rule <c>check</c> knows, with its CIS Kubernetes Benchmark id (kube-bench cis-1.12) where one exists, else a
/// <c>PC-</c> id. Remediations edit <c>/etc/kubernetes/manifests/kube-apiserver.yaml</c>.
/// </summary>
public static class RuleCatalog
{
    // L1 network
    public static readonly RuleInfo BindAddress = new("PC-L1-BIND", "kube-apiserver is not exposed on every interface", CheckLayer.Network,
        "--bind-address=<control-plane private IP> (and restrict 6443 to known CIDRs with a firewall or Portcullis network.allow)");
    public static readonly RuleInfo InsecurePort = new("PC-L1-INSECURE-PORT", "No plain-HTTP insecure port", CheckLayer.Network,
        "remove --insecure-port (or set --insecure-port=0)");
    public static readonly RuleInfo InsecureBindAddress = new("PC-L1-INSECURE-BIND", "No insecure bind address", CheckLayer.Network,
        "remove --insecure-bind-address");
    public static readonly RuleInfo SecurePort = new("PC-L1-SECURE-PORT", "The secure port is not disabled", CheckLayer.Network,
        "--secure-port=6443");
    public static readonly RuleInfo Profiling = new("1.2.15", "Ensure that the --profiling argument is set to false", CheckLayer.Network,
        "--profiling=false");
    public static readonly RuleInfo ServiceExposure = new("PC-L1-SERVICE", "The default/kubernetes Service is not exposed outside the cluster", CheckLayer.Network,
        "keep the kubernetes Service type ClusterIP; expose the API through a private load balancer or Portcullis");

    // L2 TLS
    public static readonly RuleInfo TlsCertAndKey = new("1.2.24", "Ensure that the --tls-cert-file and --tls-private-key-file arguments are set as appropriate", CheckLayer.Tls,
        "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt --tls-private-key-file=/etc/kubernetes/pki/apiserver.key");
    public static readonly RuleInfo TlsMinVersion = new("PC-L2-TLS-MIN-VERSION", "TLS 1.0 and 1.1 are refused", CheckLayer.Tls,
        "--tls-min-version=VersionTLS12 (or VersionTLS13)");
    public static readonly RuleInfo CipherSuites = new("1.2.29", "Ensure that the API Server only makes use of Strong Cryptographic Ciphers", CheckLayer.Tls,
        "--tls-cipher-suites=TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256");
    public static readonly RuleInfo KubeletClientCert = new("1.2.4", "Ensure that the --kubelet-client-certificate and --kubelet-client-key arguments are set as appropriate", CheckLayer.Tls,
        "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt --kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key");
    public static readonly RuleInfo KubeletCa = new("1.2.5", "Ensure that the --kubelet-certificate-authority argument is set as appropriate", CheckLayer.Tls,
        "--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt (kubelets need serving certificates signed by it)");
    public static readonly RuleInfo KubeletHttps = new("PC-L2-KUBELET-HTTPS", "Connections to kubelets use HTTPS", CheckLayer.Tls,
        "remove --kubelet-https=false");
    public static readonly RuleInfo EtcdCertAndKey = new("1.2.23", "Ensure that the --etcd-certfile and --etcd-keyfile arguments are set as appropriate", CheckLayer.Tls,
        "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt --etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key");
    public static readonly RuleInfo EtcdCa = new("1.2.26", "Ensure that the --etcd-cafile argument is set as appropriate", CheckLayer.Tls,
        "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt");
    public static readonly RuleInfo EtcdServersTls = new("PC-L2-ETCD-HTTPS", "etcd is reached over https", CheckLayer.Tls,
        "--etcd-servers=https://127.0.0.1:2379");
    public static readonly RuleInfo EtcdUniqueCa = new("2.7", "Ensure that a unique Certificate Authority is used for etcd", CheckLayer.Tls,
        "use a CA for etcd (--etcd-cafile) that is not the cluster client CA (--client-ca-file)");
    public static readonly RuleInfo ClientCertificateLifetime = new("PC-L2-CERT-LIFETIME", "Client certificates are short-lived (a stolen one cannot be revoked)", CheckLayer.Tls,
        "issue client certificates for at most 365 days (kubeadm's are; `kubeadm certs renew`), give people OIDC instead, and in front of the API set Portcullis tls.clientCertificates.maxLifetime");
    public static readonly RuleInfo EncryptionConfig = new("1.2.27", "Ensure that the --encryption-provider-config argument is set as appropriate", CheckLayer.Tls,
        "--encryption-provider-config=/etc/kubernetes/enc/encryption-config.yaml");
    public static readonly RuleInfo EncryptionProviders = new("1.2.28", "Ensure that encryption providers are appropriately configured", CheckLayer.Tls,
        "make the first provider for secrets aescbc, kms or secretbox (identity first means stored in plain text)");

    // L3 authentication
    public static readonly RuleInfo AnonymousAuth = new("1.2.1", "Ensure that the --anonymous-auth argument is set to false", CheckLayer.Authentication,
        "--anonymous-auth=false (or, with --authentication-config, anonymous.enabled: true only with conditions for /healthz, /livez, /readyz)");
    public static readonly RuleInfo TokenAuthFile = new("1.2.2", "Ensure that the --token-auth-file parameter is not set", CheckLayer.Authentication,
        "remove --token-auth-file; use client certificates, OIDC or a token webhook");
    public static readonly RuleInfo BasicAuthFile = new("PC-L3-BASIC-AUTH", "No basic-auth password file", CheckLayer.Authentication,
        "remove --basic-auth-file");
    public static readonly RuleInfo ClientCa = new("1.2.25", "Ensure that the --client-ca-file argument is set as appropriate", CheckLayer.Authentication,
        "--client-ca-file=/etc/kubernetes/pki/ca.crt");
    public static readonly RuleInfo ExternalAuthn = new("PC-L3-EXTERNAL-AUTHN", "People authenticate through OIDC or a token webhook", CheckLayer.Authentication,
        "--authentication-config=/etc/kubernetes/authn.yaml with jwt[] (or --oidc-issuer-url/--oidc-client-id, or --authentication-token-webhook-config-file)");
    public static readonly RuleInfo OidcIssuer = new("PC-L3-OIDC-ISSUER", "OIDC issuers are https", CheckLayer.Authentication,
        "use an https issuer URL");
    public static readonly RuleInfo WebhookCacheTtl = new("PC-L3-WEBHOOK-TTL", "Token webhook cache TTL is short", CheckLayer.Authentication,
        "--authentication-token-webhook-cache-ttl=2m (the default) or less (portcullis webhook kubeconfig writes 10s), so a token the webhook starts refusing stops working soon");
    public static readonly RuleInfo AuthenticationWebhook = new("PC-L3-AUTHN-WEBHOOK", "The token authentication webhook is reached over verified https", CheckLayer.Authentication,
        "--authentication-token-webhook-config-file=/etc/kubernetes/portcullis/authentication-webhook.kubeconfig (its cluster: server https://…, certificate-authority; `portcullis webhook kubeconfig` writes one) --authentication-token-webhook-version=v1");
    public static readonly RuleInfo AuthenticationConfig = new("PC-L3-AUTHN-CONFIG", "The AuthenticationConfiguration file parses", CheckLayer.Authentication,
        "fix the file named by --authentication-config (kube-apiserver will not start with it)");
    public static readonly RuleInfo ServiceAccountLookup = new("1.2.21", "Ensure that the --service-account-lookup argument is set to true", CheckLayer.Authentication,
        "remove --service-account-lookup=false (or set --service-account-lookup=true)");
    public static readonly RuleInfo ServiceAccountKeyFile = new("1.2.22", "Ensure that the --service-account-key-file argument is set as appropriate", CheckLayer.Authentication,
        "--service-account-key-file=/etc/kubernetes/pki/sa.pub");
    public static readonly RuleInfo ServiceAccountIssuer = new("PC-L3-SA-ISSUER", "Service-account tokens have an issuer and a signing key", CheckLayer.Authentication,
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local --service-account-signing-key-file=/etc/kubernetes/pki/sa.key");
    public static readonly RuleInfo ExtendTokenExpiration = new("1.2.30", "Ensure that the --service-account-extend-token-expiration parameter is set to false", CheckLayer.Authentication,
        "--service-account-extend-token-expiration=false");

    // L4 authorization
    public static readonly RuleInfo NotAlwaysAllow = new("1.2.6", "Ensure that the --authorization-mode argument is not set to AlwaysAllow", CheckLayer.Authorization,
        "--authorization-mode=Node,RBAC");
    public static readonly RuleInfo ModeNode = new("1.2.7", "Ensure that the --authorization-mode argument includes Node", CheckLayer.Authorization,
        "--authorization-mode=Node,RBAC");
    public static readonly RuleInfo ModeRbac = new("1.2.8", "Ensure that the --authorization-mode argument includes RBAC", CheckLayer.Authorization,
        "--authorization-mode=Node,RBAC");
    public static readonly RuleInfo AuthorizationConfig = new("PC-L4-AUTHZ-CONFIG", "The AuthorizationConfiguration file parses", CheckLayer.Authorization,
        "fix the file named by --authorization-config (kube-apiserver will not start with it)");
    public static readonly RuleInfo AuthorizationWebhook = new("PC-L4-AUTHZ-WEBHOOK", "An authorization webhook (deny list) is asked before RBAC and fails closed", CheckLayer.Authorization,
        "--authorization-config with authorizers Node, then the webhook (failurePolicy: Deny, matchConditions that skip system components, subjectAccessReviewVersion: v1), then RBAC");

    // L5 admission
    public static readonly RuleInfo DenyServiceExternalIps = new("1.2.3", "Ensure that the DenyServiceExternalIPs admission plugin is set", CheckLayer.Admission,
        "--enable-admission-plugins=...,DenyServiceExternalIPs");
    public static readonly RuleInfo EventRateLimitPlugin = new("1.2.9", "Ensure that the admission control plugin EventRateLimit is set", CheckLayer.Admission,
        "--enable-admission-plugins=...,EventRateLimit --admission-control-config-file=/etc/kubernetes/admission.yaml");
    public static readonly RuleInfo EventRateLimitConfig = new("PC-L5-EVENTRATELIMIT-CONFIG", "EventRateLimit has an admission configuration with limits", CheckLayer.Admission,
        "an AdmissionConfiguration with plugins: [{name: EventRateLimit, path: eventconfig.yaml}] and a Configuration with limits such as {type: Namespace, qps: 50, burst: 100}");
    public static readonly RuleInfo AlwaysAdmit = new("1.2.10", "Ensure that the admission control plugin AlwaysAdmit is not set", CheckLayer.Admission,
        "remove AlwaysAdmit from --enable-admission-plugins");
    public static readonly RuleInfo AlwaysPullImages = new("1.2.11", "Ensure that the admission control plugin AlwaysPullImages is set", CheckLayer.Admission,
        "--enable-admission-plugins=...,AlwaysPullImages");
    public static readonly RuleInfo ServiceAccountPlugin = new("1.2.12", "Ensure that the admission control plugin ServiceAccount is set", CheckLayer.Admission,
        "remove ServiceAccount from --disable-admission-plugins");
    public static readonly RuleInfo NamespaceLifecyclePlugin = new("1.2.13", "Ensure that the admission control plugin NamespaceLifecycle is set", CheckLayer.Admission,
        "remove NamespaceLifecycle from --disable-admission-plugins");
    public static readonly RuleInfo NodeRestriction = new("1.2.14", "Ensure that the admission control plugin NodeRestriction is set", CheckLayer.Admission,
        "--enable-admission-plugins=...,NodeRestriction");
    public static readonly RuleInfo PodSecurity = new("PC-L5-POD-SECURITY", "The PodSecurity admission plugin is not disabled", CheckLayer.Admission,
        "remove PodSecurity from --disable-admission-plugins");
    public static readonly RuleInfo PriorityAndFairness = new("PC-L5-APF", "API Priority and Fairness is enabled", CheckLayer.Admission,
        "remove --enable-priority-and-fairness=false");
    public static readonly RuleInfo RequestTimeout = new("1.2.20", "Ensure that the --request-timeout argument is set as appropriate", CheckLayer.Admission,
        "--request-timeout=60s (the default) or up to 300s");

    // L6 audit
    public static readonly RuleInfo AuditLogPath = new("1.2.16", "Ensure that the --audit-log-path argument is set", CheckLayer.Audit,
        "--audit-log-path=/var/log/kubernetes/audit/audit.log");
    public static readonly RuleInfo AuditLogMaxAge = new("1.2.17", "Ensure that the --audit-log-maxage argument is set to 30 or as appropriate", CheckLayer.Audit,
        "--audit-log-maxage=30");
    public static readonly RuleInfo AuditLogMaxBackup = new("1.2.18", "Ensure that the --audit-log-maxbackup argument is set to 10 or as appropriate", CheckLayer.Audit,
        "--audit-log-maxbackup=10");
    public static readonly RuleInfo AuditLogMaxSize = new("1.2.19", "Ensure that the --audit-log-maxsize argument is set to 100 or as appropriate", CheckLayer.Audit,
        "--audit-log-maxsize=100");
    public static readonly RuleInfo AuditPolicyFile = new("3.2.1", "Ensure that a minimal audit policy is created", CheckLayer.Audit,
        "--audit-policy-file=/etc/kubernetes/audit-policy.yaml (mounted into the Pod with a hostPath volume)");
    public static readonly RuleInfo AuditPolicyParses = new("PC-L6-AUDIT-POLICY", "The audit policy file is readable and valid", CheckLayer.Audit,
        "fix the audit.k8s.io/v1 Policy named by --audit-policy-file (kube-apiserver will not start with a broken one)");
    public static readonly RuleInfo AuditPolicyCoverage = new("3.2.2", "Ensure that the audit policy covers key security concerns", CheckLayer.Audit,
        "log Secrets, ConfigMaps and TokenReviews at Metadata; log pod/deployment changes, pods/exec, pods/portforward, pods/proxy, services/proxy and RBAC changes at Metadata or above");
    public static readonly RuleInfo AuditSecrets = new("PC-L6-AUDIT-SECRETS", "Secrets are audited at Metadata, never with bodies", CheckLayer.Audit,
        "- level: Metadata\n  resources: [{group: \"\", resources: [secrets, configmaps]}]  (before any Request/RequestResponse rule)");
    public static readonly RuleInfo AuditConfigMaps = new("PC-L6-AUDIT-CONFIGMAPS", "ConfigMaps are audited at Metadata", CheckLayer.Audit,
        "- level: Metadata\n  resources: [{group: \"\", resources: [configmaps]}]");
    public static readonly RuleInfo AuditTokenReviews = new("PC-L6-AUDIT-TOKENREVIEWS", "TokenReviews (authentication.k8s.io) are audited at Metadata", CheckLayer.Audit,
        "- level: Metadata\n  resources: [{group: authentication.k8s.io, resources: [tokenreviews]}]");
    public static readonly RuleInfo AuditExec = new("PC-L6-AUDIT-EXEC", "pods/exec, attach, portforward and proxy are audited", CheckLayer.Audit,
        "- level: Metadata\n  resources: [{group: \"\", resources: [pods/exec, pods/attach, pods/portforward, pods/proxy, services/proxy]}]");
    public static readonly RuleInfo AuditWorkloads = new("PC-L6-AUDIT-WORKLOADS", "Changes to Pods and Deployments are audited", CheckLayer.Audit,
        "- level: Request\n  verbs: [create, update, patch, delete]\n  resources: [{group: \"\", resources: [pods]}, {group: apps, resources: [deployments]}]");
    public static readonly RuleInfo AuditRbac = new("PC-L6-AUDIT-RBAC", "RBAC changes are audited", CheckLayer.Audit,
        "- level: RequestResponse\n  verbs: [create, update, patch, delete]\n  resources: [{group: rbac.authorization.k8s.io}]");
    public static readonly RuleInfo AuditNotAllNone = new("PC-L6-AUDIT-NOT-NONE", "The audit policy records something", CheckLayer.Audit,
        "end the policy with a catch-all rule: - level: Metadata");

    // input notes
    public static readonly RuleInfo InputNotes = new("PC-INPUT", "How the input was read", CheckLayer.Network, "");
}
