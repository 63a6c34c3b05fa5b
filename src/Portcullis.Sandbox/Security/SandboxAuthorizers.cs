using Portcullis.Authentication.Oidc;
using Portcullis.Authorization;
using Portcullis.Authorization.Rbac;

namespace Portcullis.Sandbox.Security;

/// <summary>
/// A Webhook authorizer with <c>matchConditions</c>, as kube-apiserver evaluates them before calling the webhook: CEL over
/// <c>request</c>, the SubjectAccessReview v1 spec. One false ⇒ the webhook is skipped (no opinion); an evaluation error
/// (none false) ⇒ the failure policy's decision with the error; all true ⇒ the webhook is asked.
/// </summary>
internal sealed class MatchConditionAuthorizer(IAuthorizer webhook, IReadOnlyList<CelExpression> conditions, bool denyOnError) : IAuthorizer, IDisposable
{
    public string Name => webhook.Name;

    /// <summary>How many requests skipped the webhook because a condition was false (for tests).</summary>
    public long Skipped => Interlocked.Read(ref _skipped);
    private long _skipped;

    public ValueTask<AuthorizationResult> AuthorizeAsync(AuthorizationAttributes attributes, CancellationToken cancellationToken)
    {
        var variables = new Dictionary<string, object?>(StringComparer.Ordinal) { ["request"] = Spec(attributes) };
        string? error = null;
        foreach (var condition in conditions)
        {
            try
            {
                if (!condition.EvaluateBool(variables))
                {
                    Interlocked.Increment(ref _skipped);
                    return new(AuthorizationResult.NoOpinion(Name));
                }
            }
            catch (CelEvaluationException ex)
            {
                error ??= ex.Message;
            }
        }
        if (error is not null)
        {
            var message = "webhook authorizer: matchConditions: " + error;
            return new(new AuthorizationResult(denyOnError ? AuthorizationDecision.Deny : AuthorizationDecision.NoOpinion, "", message, Name));
        }
        return webhook.AuthorizeAsync(attributes, cancellationToken);
    }

    /// <summary>The SubjectAccessReview v1 spec as CEL sees it: every string field present (empty when unset), as Go's typed object reads.</summary>
    internal static Dictionary<string, object?> Spec(AuthorizationAttributes attributes)
    {
        var r = attributes.Request;
        var u = attributes.User;
        var spec = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["user"] = u.Name,
            ["uid"] = u.Uid,
            ["groups"] = u.Groups.Cast<object?>().ToList(),
            ["extra"] = u.Extra.ToDictionary(kv => kv.Key, kv => (object?)kv.Value.Cast<object?>().ToList(), StringComparer.Ordinal),
        };
        if (r.IsResourceRequest)
        {
            spec["resourceAttributes"] = new Dictionary<string, object?>(StringComparer.Ordinal)
            {
                ["namespace"] = r.Namespace,
                ["verb"] = r.Verb,
                ["group"] = r.ApiGroup,
                ["version"] = r.ApiVersion,
                ["resource"] = r.Resource,
                ["subresource"] = r.Subresource,
                ["name"] = r.Name,
            };
        }
        else
        {
            spec["nonResourceAttributes"] = new Dictionary<string, object?>(StringComparer.Ordinal) { ["path"] = r.Path, ["verb"] = r.Verb };
        }
        return spec;
    }

    public void Dispose() => (webhook as IDisposable)?.Dispose();
}

/// <summary>
/// The <c>Node</c> entry of an authorizer list. kube-apiserver's Node authorizer grants kubelets (group
/// <c>system:nodes</c>) access to their own node's objects from a graph of pods and nodes; the sandbox runs no nodes, so
/// it has nothing to grant and never has an opinion. It keeps its place in the order, so a list copied from a real
/// control plane means the same thing.
/// </summary>
internal sealed class NodeAuthorizer : IAuthorizer
{
    public string Name => "Node";

    public ValueTask<AuthorizationResult> AuthorizeAsync(AuthorizationAttributes attributes, CancellationToken cancellationToken) =>
        new(AuthorizationResult.NoOpinion(Name));
}

/// <summary>
/// The part of kube-apiserver's bootstrap RBAC policy a client needs before any manifest grants it anything:
/// <c>cluster-admin</c>, and discovery, health and self-review for every authenticated user (<c>system:discovery</c>,
/// <c>system:basic-user</c>, <c>system:public-info-viewer</c>, the last also for unauthenticated users).
/// </summary>
internal static class BootstrapRbac
{
    private const string Source = "(sandbox bootstrap policy)";

    public static IReadOnlyList<RbacRole> Roles { get; } =
    [
        ClusterRole("cluster-admin", new PolicyRule(["*"], ["*"], ["*"], [], []), new PolicyRule(["*"], [], [], [], ["*"])),
        ClusterRole("system:discovery", new PolicyRule(["get"], [], [], [],
            ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"])),
        ClusterRole("system:public-info-viewer", new PolicyRule(["get"], [], [], [], ["/healthz", "/livez", "/readyz", "/version", "/version/"])),
        ClusterRole("system:basic-user", new PolicyRule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], [], []),
            new PolicyRule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"], [], [])),
    ];

    public static IReadOnlyList<RbacBinding> Bindings { get; } =
    [
        Binding("cluster-admin", "cluster-admin", new RbacSubject("Group", "system:masters")),
        Binding("system:discovery", "system:discovery", new RbacSubject("Group", "system:authenticated")),
        Binding("system:basic-user", "system:basic-user", new RbacSubject("Group", "system:authenticated")),
        Binding("system:public-info-viewer", "system:public-info-viewer", new RbacSubject("Group", "system:authenticated"),
            new RbacSubject("Group", "system:unauthenticated")),
    ];

    private static RbacRole ClusterRole(string name, params PolicyRule[] rules) =>
        new() { Kind = "ClusterRole", Name = name, Rules = rules, Source = Source };

    private static RbacBinding Binding(string name, string role, params RbacSubject[] subjects) =>
        new() { Kind = "ClusterRoleBinding", Name = name, RoleRefKind = "ClusterRole", RoleRefName = role, Subjects = subjects, Source = Source };
}
