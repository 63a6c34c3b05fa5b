using Portcullis.Authorization;

namespace Portcullis.Sandbox.Security;

/// <summary>
/// Webhook mode: the sandbox authenticates and authorizes every request itself, as kube-apiserver does — client
/// certificates and TokenReview webhook tokens, then the authorizers in order (webhooks, RBAC, ...). Impersonate-*
/// headers are authorized (verb impersonate), X-Remote-* headers are ignored.
/// </summary>
public sealed record SandboxSecurityOptions
{
    /// <summary>Webhook token authentication kubeconfig (kube-apiserver's <c>--authentication-token-webhook-config-file</c>); null: certificates only.</summary>
    public string? TokenWebhookKubeconfig { get; init; }

    /// <summary><c>v1</c> (default) or <c>v1beta1</c> TokenReview.</summary>
    public string TokenWebhookVersion { get; init; } = "v1";

    /// <summary>How long a TokenReview answer is reused, for authenticated and unauthenticated answers alike (kube-apiserver's default: 2m).</summary>
    public TimeSpan TokenWebhookCacheTtl { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Sent as <c>spec.audiences</c> of every TokenReview (kube-apiserver's <c>--api-audiences</c>); empty: omitted.</summary>
    public IReadOnlyList<string> ApiAudiences { get; init; } = [];

    /// <summary>The authorizers in the order they are asked, after <c>system:masters</c>; empty means RBAC alone.</summary>
    public IReadOnlyList<AuthorizationConfigurationFile.AuthorizerConfiguration> Authorizers { get; init; } = [];

    /// <summary>Role, ClusterRole, RoleBinding and ClusterRoleBinding manifests (files or folders) the RBAC authorizer evaluates.</summary>
    public IReadOnlyList<string> RbacManifests { get; init; } = [];

    /// <summary>
    /// The authorizers kube-apiserver's legacy flags give: <c>--authorization-webhook-config-file</c> with
    /// <c>--authorization-mode=Webhook,RBAC</c>: failurePolicy NoOpinion, timeout 30s, a zero TTL turns that cache off.
    /// </summary>
    public static IReadOnlyList<AuthorizationConfigurationFile.AuthorizerConfiguration> LegacyWebhook(string kubeconfig, string version,
        TimeSpan authorizedTtl, TimeSpan unauthorizedTtl) =>
    [
        new()
        {
            Type = "Webhook",
            Name = "webhook",
            Webhook = new AuthorizationConfigurationFile.WebhookConfiguration
            {
                Timeout = TimeSpan.FromSeconds(30),
                AuthorizedTTL = authorizedTtl,
                UnauthorizedTTL = unauthorizedTtl,
                CacheAuthorizedRequests = authorizedTtl > TimeSpan.Zero,
                CacheUnauthorizedRequests = unauthorizedTtl > TimeSpan.Zero,
                SubjectAccessReviewVersion = version,
                FailurePolicy = "NoOpinion",
                ConnectionInfo = new() { Type = "KubeConfigFile", KubeConfigFile = kubeconfig },
            },
        },
        new() { Type = "RBAC", Name = "rbac" },
    ];
}
