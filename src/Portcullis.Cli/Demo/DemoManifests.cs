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
        admission:                         # L5: kube-apiserver's API Priority and Fairness and EventRateLimit, and rate limits
          priorityAndFairness:             # the seats (400 + 200) are divided among the priority levels by their shares
            maxRequestsInflight: 400
            maxMutatingRequestsInflight: 200
            configFiles: [apf]             # batch-jobs-low-priority: user batch in the small level batch-low (12 seats, rejects)
          admissionControlConfigFile: admission/admission.yaml   # EventRateLimit: 5 Event writes per user, then 1 a second
          rateLimits:                      # every request of one authenticated user: 100 at once, then 20 a second
          - {{type: User, qps: 20, burst: 100}}
        admin:                             # plain HTTP: /healthz /livez /readyz /metrics; `demo --admin-port` overrides it
          address: 127.0.0.1:{1}

        """, port, adminPort);

    /// <summary>
    /// Webhook mode: <c>portcullis webhook</c>'s configuration — the demo's token file, a deny list, Portcullis's own RBAC
    /// (an empty folder: its answer is no opinion, so the API server's RBAC decides) and the audit policy. Only the API
    /// server's webhook client certificate (pki/webhook-client-ca.crt) gets in.
    /// </summary>
    public static string WebhookConfiguration(int port, int adminPort) => string.Format(CultureInfo.InvariantCulture, """
        # Written by `portcullis demo --mode webhook`: portcullis webhook, which the sandbox (the API server) asks.
        # Paths are relative to this file. Check it with:
        #   portcullis validate --config webhook.yaml --webhook
        apiVersion: portcullis.dev/v1alpha1
        kind: GatewayConfiguration
        listeners:
        - address: 127.0.0.1:{0}           # `demo --webhook-port` overrides it
        network:
          allow: [127.0.0.0/8]
        tls:
          certFile: pki/gateway.crt        # the API server trusts it through pki/ca.crt (apiserver/*.kubeconfig)
          keyFile: pki/gateway.key
          clientCAFile: pki/webhook-client-ca.crt   # only the API server's webhook client certificate gets in
        authentication:                    # TokenReview: the bearer tokens of tokens.csv
          tokenAuthFile: tokens.csv
        authorization:                     # SubjectAccessReview: the deny list, then Portcullis's own grants
          denyListFile: deny.yaml          # edit it: applied at the next reload, seen by the API server after authorizedTTL
          modes: [RBAC]
          rbac:
            manifests: [webhook-rbac]      # empty: Portcullis has no opinion, the API server's RBAC (rbac/) decides
        audit:                             # every review, with its decision in annotations
          policyFile: audit-policy.yaml
          log:
            path: webhook-audit.log
        admin:                             # /healthz /readyz /metrics; `demo --admin-port` overrides it
          address: 127.0.0.1:{1}

        """, port, adminPort);

    /// <summary>Webhook mode's deny list: mallory, a developer RBAC still grants, refused by Portcullis.</summary>
    public const string DenyList = """
        # Portcullis's deny list (portcullis webhook): a match answers the API server's SubjectAccessReview with denied: true,
        # before its RBAC is asked. Add a line such as "- {user: jane, reason: test}" and watch jane get 403 within seconds.
        apiVersion: portcullis.dev/v1alpha1
        kind: DenyList
        entries:
        - user: mallory
          reason: left the team (demo); RBAC still grants group developers

        """;

    /// <summary>
    /// docs/traffic.md's worked example: the user <c>batch</c> (a nightly job) in a small priority level that refuses
    /// rather than queues, so its bursts never take the seats of people.
    /// </summary>
    public const string BatchLowPriority = """
        # API Priority and Fairness objects (flowcontrol.apiserver.k8s.io/v1), as kube-apiserver reads them.
        # With 600 seats and kube-apiserver's suggested levels (245 shares) + 5: batch-low gets ceil(600 × 5 / 250) = 12.
        apiVersion: flowcontrol.apiserver.k8s.io/v1
        kind: PriorityLevelConfiguration
        metadata:
          name: batch-low
        spec:
          type: Limited
          limited:
            nominalConcurrencyShares: 5
            lendablePercent: 0
            borrowingLimitPercent: 0       # never more than its own 12 seats, even when other levels are idle
            limitResponse:
              type: Reject
        ---
        apiVersion: flowcontrol.apiserver.k8s.io/v1
        kind: FlowSchema
        metadata:
          name: batch-jobs-low-priority
        spec:
          matchingPrecedence: 400            # before the suggested service-accounts (9000) and global-default (9900)
          priorityLevelConfiguration:
            name: batch-low
          distinguisherMethod:
            type: ByUser
          rules:
          - subjects:
            - kind: User
              user: {name: batch}
            resourceRules:
            - verbs: ["*"]
              apiGroups: ["*"]
              resources: ["*"]
              namespaces: ["*"]
              clusterScope: true
            nonResourceRules:
            - verbs: ["*"]
              nonResourceURLs: ["*"]

        """;

    /// <summary>kube-apiserver's <c>--admission-control-config-file</c>, with the EventRateLimit plugin only.</summary>
    public const string AdmissionConfiguration = """
        # kube-apiserver's --admission-control-config-file; the gateway runs its EventRateLimit plugin.
        apiVersion: apiserver.config.k8s.io/v1
        kind: AdmissionConfiguration
        plugins:
        - name: EventRateLimit
          path: eventconfig.yaml

        """;

    /// <summary>EventRateLimit's limits: generous per namespace, 5 Event writes at once per user.</summary>
    public const string EventRateLimit = """
        # EventRateLimit (eventratelimit.admission.k8s.io/v1alpha1): token buckets on creates and updates of core Events.
        apiVersion: eventratelimit.admission.k8s.io/v1alpha1
        kind: Configuration
        limits:
        - type: Namespace
          qps: 10
          burst: 50
        - type: User
          qps: 1
          burst: 5

        """;

    /// <summary>The batch user works in namespace dev: reads pods, writes Events.</summary>
    public const string Batch = """
        # User "batch" (a nightly job, pki/batch.crt) reads pods and records Events in namespace dev.
        apiVersion: rbac.authorization.k8s.io/v1
        kind: Role
        metadata:
          name: batch-job
          namespace: dev
        rules:
        - apiGroups: [""]
          resources: [pods]
          verbs: [get, list, watch]
        - apiGroups: [""]
          resources: [events]
          verbs: [get, list, watch, create, update, patch]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata:
          name: batch-job
          namespace: dev
        roleRef:
          apiGroup: rbac.authorization.k8s.io
          kind: Role
          name: batch-job
        subjects:
        - apiGroup: rbac.authorization.k8s.io
          kind: User
          name: batch

        """;

    /// <summary>How many Events <see cref="Events"/> holds: over the User limit's burst of 5.</summary>
    public const int EventCount = 10;

    /// <summary>The banner's 429: core Events with <c>generateName</c>, so the command can be run again.</summary>
    public static string Events
    {
        get
        {
            var text = new System.Text.StringBuilder("# `kubectl create -f` of these Events goes over EventRateLimit's User limit (burst 5): the 6th gets a 429.\n");
            for (var i = 1; i <= EventCount; i++)
            {
                text.Append(CultureInfo.InvariantCulture, $$"""
                    ---
                    apiVersion: v1
                    kind: Event
                    metadata:
                      generateName: nightly-
                      namespace: dev
                    involvedObject: {kind: Pod, namespace: dev, name: web-1, apiVersion: v1}
                    reason: NightlyJob
                    message: nightly job step {{i}}
                    source: {component: batch}
                    type: Normal

                    """);
            }
            return text.ToString();
        }
    }
}
