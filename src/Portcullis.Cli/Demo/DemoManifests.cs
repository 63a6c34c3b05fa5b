using System.Globalization;

namespace Portcullis.Cli.Demo;

/// <summary>The text of the demo's Kubernetes-format files and of its <c>portcullis.yaml</c>.</summary>
internal static class DemoManifests
{
    /// <summary>kube-apiserver's bootstrap roles that every authenticated user needs for discovery (as in a real cluster).</summary>
    public const string Bootstrap = """
        # The bootstrap policy of a real cluster, reduced to what kubectl needs: discovery and "who am I".
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata:
          name: system:discovery
        rules:
        - nonResourceURLs: [/api, /api/*, /apis, /apis/*, /healthz, /livez, /openapi, /openapi/*, /readyz, /version, /version/]
          verbs: [get]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata:
          name: system:basic-user
        rules:
        - apiGroups: [authorization.k8s.io]
          resources: [selfsubjectaccessreviews, selfsubjectrulesreviews]
          verbs: [create]
        - apiGroups: [authentication.k8s.io]
          resources: [selfsubjectreviews]
          verbs: [create]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata:
          name: system:public-info-viewer
        rules:
        - nonResourceURLs: [/healthz, /livez, /readyz, /version, /version/]
          verbs: [get]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata:
          name: system:discovery
        roleRef:
          apiGroup: rbac.authorization.k8s.io
          kind: ClusterRole
          name: system:discovery
        subjects:
        - apiGroup: rbac.authorization.k8s.io
          kind: Group
          name: system:authenticated
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata:
          name: system:basic-user
        roleRef:
          apiGroup: rbac.authorization.k8s.io
          kind: ClusterRole
          name: system:basic-user
        subjects:
        - apiGroup: rbac.authorization.k8s.io
          kind: Group
          name: system:authenticated
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata:
          name: system:public-info-viewer
        roleRef:
          apiGroup: rbac.authorization.k8s.io
          kind: ClusterRole
          name: system:public-info-viewer
        subjects:
        - apiGroup: rbac.authorization.k8s.io
          kind: Group
          name: system:authenticated

        """;

    /// <summary>Group developers (jane) works with pods and configmaps in namespace dev, and nowhere else.</summary>
    public const string Developers = """
        # Group "developers" (jane's O=developers) may work with pods and configmaps in namespace dev only.
        apiVersion: rbac.authorization.k8s.io/v1
        kind: Role
        metadata:
          name: developer
          namespace: dev
        rules:
        - apiGroups: [""]
          resources: [pods, pods/log, pods/exec, configmaps]
          verbs: [get, list, watch, create, update, patch, delete]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata:
          name: developers
          namespace: dev
        roleRef:
          apiGroup: rbac.authorization.k8s.io
          kind: Role
          name: developer
        subjects:
        - apiGroup: rbac.authorization.k8s.io
          kind: Group
          name: developers

        """;

    /// <summary>The token user ci-bot reads pods in every namespace.</summary>
    public const string CiBot = """
        # The token user ci-bot (tokens.csv) may read pods in every namespace.
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata:
          name: pod-reader
        rules:
        - apiGroups: [""]
          resources: [pods]
          verbs: [get, list, watch]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata:
          name: ci-bot-pod-reader
        roleRef:
          apiGroup: rbac.authorization.k8s.io
          kind: ClusterRole
          name: pod-reader
        subjects:
        - apiGroup: rbac.authorization.k8s.io
          kind: User
          name: ci-bot

        """;

    /// <summary>An audit.k8s.io/v1 Policy in the usual shape: quiet health checks, metadata for secrets, bodies for pod writes.</summary>
    public const string AuditPolicy = """
        # kube-apiserver's audit policy format (audit.k8s.io/v1); the first matching rule wins.
        apiVersion: audit.k8s.io/v1
        kind: Policy
        omitStages: [RequestReceived]
        rules:
        # Health and version checks are noise.
        - level: None
          nonResourceURLs: [/healthz*, /livez*, /readyz*, /version]
        # Never record the contents of secrets, configmaps or token reviews.
        - level: Metadata
          resources:
          - group: ""
            resources: [secrets, configmaps]
          - group: authentication.k8s.io
            resources: [tokenreviews]
        # Who changed which pod, with what.
        - level: RequestResponse
          verbs: [create, update, patch, delete, deletecollection]
          resources:
          - group: ""
            resources: [pods]
        # Everything else: who did what, when, from where.
        - level: Metadata

        """;

    /// <summary>The gateway configuration with every layer that exists turned on.</summary>
    public static string GatewayConfiguration(int port, int adminPort) => string.Format(CultureInfo.InvariantCulture, """
        # Written by `portcullis demo`. Paths are relative to this file. Check it with:
        #   portcullis validate --config portcullis.yaml
        apiVersion: portcullis.dev/v1alpha1
        kind: GatewayConfiguration
        listeners:
        - address: 127.0.0.1:{0}           # `demo --port` overrides it
        network:
          allow: [127.0.0.0/8]             # L1: refused at accept otherwise, before any TLS byte
          autoBan:                         # L1: 20 failed logins within 60s ban the source address for 5m (doubling)
            enabled: true
            failures: 20
            window: 60s
            duration: 5m
            neverBan: [127.0.0.1/32]       # your own terminal is never banned, whatever you mistype
        tls:                               # L2: TLS 1.2+, and client certificates must chain to pki/ca.crt
          certFile: pki/gateway.crt
          keyFile: pki/gateway.key
          clientCAFile: pki/ca.crt
          revocationFile: revoked.yaml     # certificates refused however well they chain (pki/thief.crt is on it)
        authentication:                    # L3: client certificates (CN user, O groups) and a token file; no anonymous
          anonymous:
            enabled: false
          tokenAuthFile: tokens.csv
        authorization:                     # L4: system:masters, then RBAC from the manifests in rbac/
          modes: [RBAC]
          rbac:
            manifests: [rbac]
        audit:                             # L6: kube-apiserver's audit policy and event format
          policyFile: audit-policy.yaml
          log:
            path: audit.log
        upstream:                          # the sandbox API server, as the gateway's own client certificate
          kubeconfig: upstream.kubeconfig
          identity: Impersonate
        admin:                             # plain HTTP: /healthz /livez /readyz /metrics; `demo --admin-port` overrides it
          address: 127.0.0.1:{1}

        """, port, adminPort);
}
