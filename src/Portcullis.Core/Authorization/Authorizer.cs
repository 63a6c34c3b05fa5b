using System.Net;
using Portcullis.Authentication;

namespace Portcullis.Authorization;

/// <summary>What an authorizer is asked: who (after impersonation), what, and from where, plus the credential's
/// fingerprints the deny list can match.</summary>
/// <param name="User">The identity to authorize (the impersonated one when impersonating).</param>
/// <param name="Request">The request's attributes.</param>
/// <param name="SourceAddress">The client's address (after trusted-proxy resolution); null when unknown.</param>
/// <param name="TokenSha256">Lowercase hex SHA-256 of the bearer token, when the request carried one.</param>
/// <param name="CertificateSerial">Client certificate serial, hex without colons (any case), when mTLS was used.</param>
public sealed record AuthorizationAttributes(
    UserInfo User,
    RequestInfo Request,
    IPAddress? SourceAddress = null,
    string? TokenSha256 = null,
    string? CertificateSerial = null);

/// <summary>kube-apiserver's three authorizer outcomes.</summary>
public enum AuthorizationDecision
{
    /// <summary>The authorizer has no opinion; the next one is asked.</summary>
    NoOpinion = 0,
    Allow = 1,
    Deny = 2,
}

/// <summary>The outcome of one authorizer or of the whole chain.</summary>
/// <param name="Decision">Allow, Deny or NoOpinion.</param>
/// <param name="Reason">The reason (goes into the 403 message after ": " and into the audit annotation).</param>
/// <param name="Error">An evaluation error; with no Allow the gateway answers 500.</param>
/// <param name="Authorizer">The layer or mode that decided: system:masters, DenyList, NetworkScope, AlwaysAllow,
/// AlwaysDeny, RBAC, Webhook, or empty when nobody decided.</param>
/// <param name="AnnotationKey">An extra audit annotation key (portcullis.dev/deny-list-entry or portcullis.dev/network-scope).</param>
/// <param name="AnnotationValue">Its value.</param>
public readonly record struct AuthorizationResult(
    AuthorizationDecision Decision,
    string Reason,
    string? Error = null,
    string Authorizer = "",
    string? AnnotationKey = null,
    string? AnnotationValue = null)
{
    public const string DecisionAnnotation = "authorization.k8s.io/decision";
    public const string ReasonAnnotation = "authorization.k8s.io/reason";
    public const string DenyListAnnotation = "portcullis.dev/deny-list-entry";
    public const string NetworkScopeAnnotation = "portcullis.dev/network-scope";
    public const string AuthorizerAnnotation = "portcullis.dev/authorizer";

    public bool IsAllowed => Decision == AuthorizationDecision.Allow;

    /// <summary>No allow and an error: kube-apiserver answers 500 (see <see cref="AuthorizerChain.InternalErrorMessage"/>).</summary>
    public bool IsInternalError => Decision != AuthorizationDecision.Allow && !string.IsNullOrEmpty(Error);

    public static AuthorizationResult NoOpinion(string authorizer, string reason = "") => new(AuthorizationDecision.NoOpinion, reason, null, authorizer);

    public static AuthorizationResult Allowed(string authorizer, string reason = "") => new(AuthorizationDecision.Allow, reason, null, authorizer);

    public static AuthorizationResult Denied(string authorizer, string reason) => new(AuthorizationDecision.Deny, reason, null, authorizer);

    /// <summary>
    /// The audit annotations for this decision: <c>authorization.k8s.io/decision</c> allow|forbid and
    /// <c>authorization.k8s.io/reason</c>, plus the layer and any portcullis.dev annotation.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, string>> AuditAnnotations()
    {
        var list = new List<KeyValuePair<string, string>>(4)
        {
            new(DecisionAnnotation, IsAllowed ? "allow" : "forbid"),
            new(ReasonAnnotation, Reason),
        };
        if (Authorizer.Length > 0)
        {
            list.Add(new(AuthorizerAnnotation, Authorizer));
        }
        if (AnnotationKey is not null && AnnotationValue is not null)
        {
            list.Add(new(AnnotationKey, AnnotationValue));
        }
        return list;
    }
}

/// <summary>One authorizer of the chain. Synchronous authorizers return completed tasks.</summary>
public interface IAuthorizer
{
    /// <summary>The mode or layer name reported in <see cref="AuthorizationResult.Authorizer"/>.</summary>
    string Name { get; }

    ValueTask<AuthorizationResult> AuthorizeAsync(AuthorizationAttributes attributes, CancellationToken cancellationToken);
}

/// <summary>kube-apiserver's privileged-group authorizer: Allow for members of <c>system:masters</c>.</summary>
public sealed class SystemMastersAuthorizer : IAuthorizer
{
    public const string AuthorizerName = "system:masters";

    public string Name => AuthorizerName;

    public ValueTask<AuthorizationResult> AuthorizeAsync(AuthorizationAttributes attributes, CancellationToken cancellationToken) =>
        new(HasGroup(attributes.User, UserInfo.MastersGroup)
            ? AuthorizationResult.Allowed(AuthorizerName)
            : AuthorizationResult.NoOpinion(AuthorizerName));

    // Indexed, because foreach over IReadOnlyList allocates an enumerator on the hot path.
    internal static bool HasGroup(UserInfo user, string group)
    {
        var groups = user.Groups;
        for (var i = 0; i < groups.Count; i++)
        {
            if (string.Equals(groups[i], group, StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }
}

/// <summary><c>--authorization-mode=AlwaysAllow</c>.</summary>
public sealed class AlwaysAllowAuthorizer : IAuthorizer
{
    public string Name => "AlwaysAllow";

    public ValueTask<AuthorizationResult> AuthorizeAsync(AuthorizationAttributes attributes, CancellationToken cancellationToken) =>
        new(AuthorizationResult.Allowed(Name));
}

/// <summary><c>--authorization-mode=AlwaysDeny</c>: NoOpinion with reason "Everything is forbidden." as kube-apiserver.</summary>
public sealed class AlwaysDenyAuthorizer : IAuthorizer
{
    public const string Reason = "Everything is forbidden.";

    public string Name => "AlwaysDeny";

    public ValueTask<AuthorizationResult> AuthorizeAsync(AuthorizationAttributes attributes, CancellationToken cancellationToken) =>
        new(AuthorizationResult.NoOpinion(Name, Reason));
}
