namespace Portcullis.Check.Tests;

/// <summary>Hand-made kube-apiserver configurations: a hardened baseline that passes every rule, and files it names.</summary>
internal static class HandMade
{
    /// <summary>A kubeadm-style command line hardened for every rule (paths under /etc/kubernetes).</summary>
    public static readonly string[] SecureFlags =
    [
        "--advertise-address=10.0.0.10",
        "--bind-address=10.0.0.10",
        "--secure-port=6443",
        "--profiling=false",
        // anonymous is configured in the AuthenticationConfiguration (health paths only); --anonymous-auth may not also be set.
        "--authorization-mode=Node,RBAC",
        "--client-ca-file=/etc/kubernetes/pki/ca.crt",
        "--authentication-config=/etc/kubernetes/authn.yaml",
        "--enable-admission-plugins=NodeRestriction,EventRateLimit,AlwaysPullImages,DenyServiceExternalIPs",
        "--admission-control-config-file=/etc/kubernetes/admission.yaml",
        "--encryption-provider-config=/etc/kubernetes/enc.yaml",
        "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
        "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
        "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
        "--etcd-servers=https://127.0.0.1:2379",
        "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
        "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
        "--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
        "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
        "--service-account-lookup=true",
        "--service-account-extend-token-expiration=false",
        "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
        "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
        "--tls-min-version=VersionTLS12",
        "--tls-cipher-suites=TLS_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "--request-timeout=60s",
        "--audit-policy-file=/etc/kubernetes/audit-policy.yaml",
        "--audit-log-path=/var/log/kubernetes/audit/audit.log",
        "--audit-log-maxage=30",
        "--audit-log-maxbackup=10",
        "--audit-log-maxsize=100",
    ];

    public const string AuditPolicy = """
        apiVersion: audit.k8s.io/v1
        kind: Policy
        omitStages: [RequestReceived]
        rules:
        - level: Metadata
          resources:
          - group: ""
            resources: [secrets, configmaps]
          - group: authentication.k8s.io
            resources: [tokenreviews]
        - level: Metadata
          resources:
          - group: ""
            resources: [pods/exec, pods/attach, pods/portforward, pods/proxy, services/proxy]
        - level: RequestResponse
          verbs: [create, update, patch, delete]
          resources:
          - group: rbac.authorization.k8s.io
        - level: Request
          verbs: [create, update, patch, delete]
          resources:
          - group: ""
            resources: [pods]
          - group: apps
            resources: [deployments]
        - level: Metadata
        """;

    public const string AdmissionConfiguration = """
        apiVersion: apiserver.config.k8s.io/v1
        kind: AdmissionConfiguration
        plugins:
        - name: EventRateLimit
          path: eventconfig.yaml
        """;

    public const string EventConfig = """
        apiVersion: eventratelimit.admission.k8s.io/v1alpha1
        kind: Configuration
        limits:
        - type: Namespace
          qps: 50
          burst: 100
          cacheSize: 2000
        - type: User
          qps: 10
          burst: 50
        """;

    public const string AuthenticationConfiguration = """
        apiVersion: apiserver.config.k8s.io/v1
        kind: AuthenticationConfiguration
        jwt:
        - issuer:
            url: https://issuer.example.com
            audiences: [kubernetes]
          claimMappings:
            username:
              claim: sub
              prefix: "oidc:"
        anonymous:
          enabled: true
          conditions:
          - path: /livez
          - path: /readyz
          - path: /healthz
        """;

    public const string EncryptionConfiguration = """
        apiVersion: apiserver.config.k8s.io/v1
        kind: EncryptionConfiguration
        resources:
        - resources: [secrets]
          providers:
          - aescbc:
              keys:
              - name: key1
                secret: c2VjcmV0IGlzIHNlY3VyZQ==
          - identity: {}
        """;

    /// <summary>A node filesystem under <paramref name="root"/> holding every file the secure flags name.</summary>
    public static void WriteNodeFiles(string root, string? auditPolicy = AuditPolicy, string? admission = AdmissionConfiguration,
        string? eventConfig = EventConfig, string? authn = AuthenticationConfiguration, string? encryption = EncryptionConfiguration)
    {
        void Put(string path, string? text)
        {
            if (text is not null)
            {
                TestFiles.Write(root, path, text);
            }
        }
        Put("/etc/kubernetes/audit-policy.yaml", auditPolicy);
        Put("/etc/kubernetes/admission.yaml", admission);
        Put("/etc/kubernetes/eventconfig.yaml", eventConfig);
        Put("/etc/kubernetes/authn.yaml", authn);
        Put("/etc/kubernetes/enc.yaml", encryption);
        Put("/etc/kubernetes/pki/sa.pub", "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n");
        // kube-apiserver's own client certificates, one year as kubeadm issues them (PC-L2-CERT-LIFETIME reads them).
        using var pki = new TestPki("kubernetes");
        using var kubelet = pki.IssueClient(TimeSpan.FromDays(365), "kube-apiserver-kubelet-client", "kubeadm:cluster-admins");
        using var etcd = pki.IssueClient(TimeSpan.FromDays(365), "kube-apiserver-etcd-client");
        Put("/etc/kubernetes/pki/apiserver-kubelet-client.crt", kubelet.ExportCertificatePem());
        Put("/etc/kubernetes/pki/apiserver-etcd-client.crt", etcd.ExportCertificatePem());
    }

    /// <summary>A static pod manifest running kube-apiserver with <paramref name="flags"/>, /etc/kubernetes mounted from <paramref name="hostDir"/>.</summary>
    public static string Manifest(IEnumerable<string> flags, string hostDir = "/etc/kubernetes") =>
        $$"""
        apiVersion: v1
        kind: Pod
        metadata:
          name: kube-apiserver
          namespace: kube-system
          labels: {component: kube-apiserver, tier: control-plane}
        spec:
          hostNetwork: true
          containers:
          - name: kube-apiserver
            image: registry.k8s.io/kube-apiserver:v1.34.0
            command:
            - kube-apiserver
        {{string.Join("\n", flags.Select(f => "    - \"" + f + "\""))}}
            volumeMounts:
            - {name: k8s, mountPath: /etc/kubernetes, readOnly: true}
            - {name: audit-log, mountPath: /var/log/kubernetes/audit}
          volumes:
          - name: k8s
            hostPath: {path: {{hostDir}}, type: DirectoryOrCreate}
          - name: audit-log
            hostPath: {path: /var/log/kubernetes/audit, type: DirectoryOrCreate}
        """;

    /// <summary>The secure flags with some replaced (same name) or removed (value null) or added.</summary>
    public static string[] With(params (string Name, string? Value)[] changes)
    {
        var flags = SecureFlags.ToList();
        foreach (var (name, value) in changes)
        {
            var index = flags.FindIndex(f => f.StartsWith("--" + name + "=", StringComparison.Ordinal));
            if (index >= 0)
            {
                flags.RemoveAt(index);
            }
            if (value is not null)
            {
                flags.Insert(Math.Max(index, 0), value.Length == 0 ? "--" + name : $"--{name}={value}");
            }
        }
        return [.. flags];
    }
}
