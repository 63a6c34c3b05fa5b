using Portcullis.Authentication;
using Portcullis.Configuration;

namespace Portcullis.Authorization.Tests;

/// <summary>One expected decision of the bootstrap policy (plus fixtures/rbac-local): reusable by the gateway's HTTP tests.</summary>
/// <param name="User">User name.</param>
/// <param name="Groups">Groups, comma-separated ("" for none).</param>
/// <param name="Method">HTTP method.</param>
/// <param name="Target">Path and query as sent.</param>
/// <param name="Allowed">Expected decision.</param>
/// <param name="Reason">Expected audit reason when allowed (exact), or a substring of the denial reason ("" for none).</param>
public sealed record BootstrapDecision(string User, string Groups, string Method, string Target, bool Allowed, string Reason)
{
    public UserInfo UserInfo => UserInfo.Create(User, Groups.Length == 0 ? [] : Groups.Split(','));

    public RequestInfo Request
    {
        get
        {
            var q = Target.IndexOf('?', StringComparison.Ordinal);
            return RequestInfoParser.Parse(Method, q < 0 ? Target : Target[..q], q < 0 ? "" : Target[(q + 1)..]);
        }
    }

    public override string ToString() => $"{User}[{Groups}] {Method} {Target} => {(Allowed ? "allow" : "deny")}";
}

/// <summary>
/// The decision table over the real bootstrap RBAC policy in fixtures/rbac plus fixtures/rbac-local (view/edit/admin
/// bound in team-a). <see cref="Configuration"/> builds a GatewayConfiguration with modes [RBAC] over those files.
/// </summary>
public static class BootstrapDecisionTable
{
    private const string Authn = "system:authenticated";
    private const string Unauthn = "system:unauthenticated";
    private const string Masters = "system:masters";

    public static string FixturesDirectory => Path.Combine(AppContext.BaseDirectory, "fixtures");

    /// <summary>authorization.modes [RBAC] with rbac.manifests = fixtures/rbac and fixtures/rbac-local.</summary>
    public static GatewayConfiguration Configuration(params string[] modes)
    {
        var config = new GatewayConfiguration { BaseDirectory = FixturesDirectory, SourcePath = Path.Combine(FixturesDirectory, "portcullis.yaml") };
        config.Authorization.Modes = modes.Length == 0 ? ["RBAC"] : [.. modes];
        config.Authorization.Rbac.Manifests = ["rbac", "rbac-local"];
        return config;
    }

    private static string Crb(string binding, string role, string subject) => $"RBAC: allowed by ClusterRoleBinding \"{binding}\" of ClusterRole \"{role}\" to {subject}";

    private static string Rb(string binding, string ns, string kind, string role, string subject) => $"RBAC: allowed by RoleBinding \"{binding}/{ns}\" of {kind} \"{role}\" to {subject}";

    public static IReadOnlyList<BootstrapDecision> All { get; } =
    [
        // system:public-info-viewer (authenticated and unauthenticated)
        new("system:anonymous", Unauthn, "GET", "/healthz", true, Crb("system:public-info-viewer", "system:public-info-viewer", "Group \"system:unauthenticated\"")),
        new("system:anonymous", Unauthn, "GET", "/version", true, Crb("system:public-info-viewer", "system:public-info-viewer", "Group \"system:unauthenticated\"")),
        new("system:anonymous", Unauthn, "GET", "/livez", true, Crb("system:public-info-viewer", "system:public-info-viewer", "Group \"system:unauthenticated\"")),
        new("system:anonymous", Unauthn, "GET", "/readyz", true, Crb("system:public-info-viewer", "system:public-info-viewer", "Group \"system:unauthenticated\"")),
        new("system:anonymous", Unauthn, "GET", "/version/", true, Crb("system:public-info-viewer", "system:public-info-viewer", "Group \"system:unauthenticated\"")),
        new("system:anonymous", Unauthn, "GET", "/healthz/etcd", false, ""),
        new("system:anonymous", Unauthn, "POST", "/healthz", false, ""),
        new("system:anonymous", Unauthn, "GET", "/metrics", false, ""),
        new("system:anonymous", Unauthn, "GET", "/api", false, ""),
        new("system:anonymous", Unauthn, "GET", "/api/v1/namespaces/default/pods", false, ""),
        new("jane", Authn, "GET", "/healthz", true, ""),
        new("jane", Authn, "GET", "/readyz", true, ""),
        // system:discovery and system:basic-user (authenticated only)
        new("jane", Authn, "GET", "/api", true, Crb("system:discovery", "system:discovery", "Group \"system:authenticated\"")),
        new("jane", Authn, "GET", "/api/v1", true, Crb("system:discovery", "system:discovery", "Group \"system:authenticated\"")),
        new("jane", Authn, "GET", "/apis", true, Crb("system:discovery", "system:discovery", "Group \"system:authenticated\"")),
        new("jane", Authn, "GET", "/apis/apps/v1", true, ""),
        new("jane", Authn, "GET", "/openapi/v3", true, ""),
        new("jane", Authn, "GET", "/openapi/v2", true, ""),
        new("jane", Authn, "GET", "/metrics", false, ""),
        new("jane", Authn, "GET", "/debug/pprof/heap", false, ""),
        new("jane", Authn, "POST", "/api", false, ""),
        new("jane", Authn, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", true, Crb("system:basic-user", "system:basic-user", "Group \"system:authenticated\"")),
        new("jane", Authn, "POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", true, ""),
        new("jane", Authn, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", false, ""),
        new("jane", Authn, "GET", "/api/v1/namespaces/default/pods", false, ""),
        new("jane", Authn, "GET", "/api/v1/nodes", false, ""),
        // cluster-admin via system:masters binding (RBAC alone, through the masters group binding)
        new("root", "system:masters," + Authn, "DELETE", "/api/v1/namespaces/kube-system/secrets/x", true, ""),
        new("root", Masters, "GET", "/metrics", true, ""),
        new("root", Masters, "GET", "/api/v1/nodes/n1/proxy/metrics", true, ""),
        // view bound in team-a (aggregated from system:aggregate-to-view)
        new("vera", Authn, "GET", "/api/v1/namespaces/team-a/pods", true, Rb("viewers", "team-a", "ClusterRole", "view", "User \"vera\"")),
        new("vera", Authn, "GET", "/api/v1/namespaces/team-a/pods?watch=true", true, ""),
        new("vera", Authn, "GET", "/api/v1/namespaces/team-a/pods/p1/log", true, ""),
        new("vera", Authn, "GET", "/apis/apps/v1/namespaces/team-a/deployments/d1", true, ""),
        new("vera", Authn, "GET", "/api/v1/namespaces/team-a", true, ""),
        new("vera", Authn, "GET", "/api/v1/namespaces/team-a/secrets", false, ""),
        new("vera", Authn, "GET", "/api/v1/namespaces/team-a/secrets/s1", false, ""),
        new("vera", Authn, "POST", "/api/v1/namespaces/team-a/pods", false, ""),
        new("vera", Authn, "POST", "/api/v1/namespaces/team-a/pods/p1/exec", false, ""),
        new("vera", Authn, "GET", "/api/v1/namespaces/team-b/pods", false, ""),
        new("vera", Authn, "GET", "/api/v1/pods", false, ""),
        new("vera", Authn, "GET", "/api/v1/namespaces", false, ""),
        // edit bound to a group in team-a
        new("dev1", "team-a-devs," + Authn, "POST", "/api/v1/namespaces/team-a/pods", true, Rb("editors", "team-a", "ClusterRole", "edit", "Group \"team-a-devs\"")),
        new("dev1", "team-a-devs," + Authn, "GET", "/api/v1/namespaces/team-a/secrets/s1", true, ""),
        new("dev1", "team-a-devs," + Authn, "POST", "/api/v1/namespaces/team-a/pods/p1/exec", true, ""),
        new("dev1", "team-a-devs," + Authn, "PATCH", "/apis/apps/v1/namespaces/team-a/deployments/d1/scale", true, ""),
        new("dev1", "team-a-devs," + Authn, "DELETE", "/apis/apps/v1/namespaces/team-a/deployments", true, ""),
        new("dev1", "team-a-devs," + Authn, "GET", "/api/v1/namespaces/team-a/pods/p1/log", true, ""),
        new("dev1", "team-a-devs," + Authn, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings", false, ""),
        new("dev1", "team-a-devs," + Authn, "PUT", "/api/v1/namespaces/team-a/resourcequotas/q", false, ""),
        new("dev1", "team-a-devs," + Authn, "POST", "/api/v1/namespaces/team-b/pods", false, ""),
        // ServiceAccount subject without namespace: defaults to the RoleBinding's
        new("system:serviceaccount:team-a:ci", "system:serviceaccounts,system:serviceaccounts:team-a," + Authn, "POST", "/apis/apps/v1/namespaces/team-a/deployments", true, Rb("editors", "team-a", "ClusterRole", "edit", "ServiceAccount \"ci/team-a\"")),
        new("system:serviceaccount:team-b:ci", "system:serviceaccounts," + Authn, "POST", "/apis/apps/v1/namespaces/team-a/deployments", false, ""),
        // in a ClusterRoleBinding an SA without namespace matches nobody
        new("system:serviceaccount:default:nobody", Authn, "GET", "/api/v1/secrets", false, ""),
        new("system:serviceaccount::nobody", Authn, "GET", "/api/v1/secrets", false, ""),
        // admin bound in team-a
        new("ada", Authn, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings", true, Rb("admins", "team-a", "ClusterRole", "admin", "User \"ada\"")),
        new("ada", Authn, "POST", "/apis/authorization.k8s.io/v1/namespaces/team-a/localsubjectaccessreviews", true, ""),
        new("ada", Authn, "DELETE", "/api/v1/namespaces/team-a/secrets/s1", true, ""),
        new("ada", Authn, "DELETE", "/api/v1/namespaces/team-a", false, ""),
        new("ada", Authn, "PUT", "/api/v1/namespaces/team-a/resourcequotas/q", false, ""),
        new("ada", Authn, "GET", "/api/v1/namespaces/kube-system/secrets", false, ""),
        // namespaced Role with subresource and resourceNames
        new("lou", Authn, "GET", "/api/v1/namespaces/team-a/pods/p1/log", true, Rb("log-readers", "team-a", "Role", "log-reader", "User \"lou\"")),
        new("lou", Authn, "GET", "/api/v1/namespaces/team-a/pods/p1", false, ""),
        new("lou", Authn, "GET", "/api/v1/namespaces/team-a/configmaps/app-config", true, ""),
        new("lou", Authn, "GET", "/api/v1/namespaces/team-a/configmaps/other", false, ""),
        new("lou", Authn, "GET", "/api/v1/namespaces/team-a/configmaps", false, ""),
        new("lou", Authn, "GET", "/api/v1/namespaces/team-a/configmaps?fieldSelector=metadata.name%3Dapp-config", false, ""),
        new("lou", Authn, "PUT", "/api/v1/namespaces/team-a/configmaps/app-config", true, ""),
        // a missing role: error in the reason, never a denial by itself
        new("ghost", Authn, "GET", "/api/v1/namespaces/team-a/pods", false, "RBAC: role.rbac.authorization.k8s.io \"does-not-exist\" not found"),
        new("ghost", Authn, "GET", "/healthz", true, ""),
        // controller roles bound to kube-system service accounts
        new("system:serviceaccount:kube-system:deployment-controller", Authn, "PUT", "/apis/apps/v1/namespaces/x/deployments/d1/status", true, Crb("system:controller:deployment-controller", "system:controller:deployment-controller", "ServiceAccount \"deployment-controller/kube-system\"")),
        new("system:serviceaccount:kube-system:deployment-controller", Authn, "POST", "/apis/apps/v1/namespaces/x/replicasets", true, ""),
        new("system:serviceaccount:kube-system:deployment-controller", Authn, "DELETE", "/apis/apps/v1/namespaces/x/deployments/d1", false, ""),
        new("system:serviceaccount:kube-system:deployment-controller", Authn, "GET", "/api/v1/namespaces/x/secrets", false, ""),
        new("system:serviceaccount:kube-system:namespace-controller", Authn, "PUT", "/api/v1/namespaces/x/finalize", true, ""),
        new("system:serviceaccount:kube-system:job-controller", Authn, "POST", "/api/v1/namespaces/x/pods", true, ""),
        new("system:serviceaccount:kube-system:job-controller", Authn, "POST", "/api/v1/namespaces/x/pods/p1/exec", false, ""),
        // scheduler and kube-proxy users
        new("system:kube-scheduler", Authn, "POST", "/api/v1/namespaces/x/pods/p1/binding", true, ""),
        new("system:kube-scheduler", Authn, "DELETE", "/api/v1/namespaces/x/pods/p1", true, ""),
        new("system:kube-proxy", Authn, "LIST", "/api/v1/services", false, ""),
        new("system:kube-proxy", Authn, "GET", "/api/v1/services", true, ""),
        new("system:kube-proxy", Authn, "DELETE", "/api/v1/services/s1", false, ""),
    ];
}
