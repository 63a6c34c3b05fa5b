namespace Portcullis.Audit;

/// <summary>Annotation keys written on audit events: kube-apiserver's own, and Portcullis's for refusals by a gateway layer.</summary>
public static class AuditAnnotations
{
    /// <summary><c>allow</c> or <c>forbid</c>, as kube-apiserver's authorization filter writes it.</summary>
    public const string AuthorizationDecision = "authorization.k8s.io/decision";

    /// <summary>The authorizer's reason, e.g. <c>RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to User "z"</c>.</summary>
    public const string AuthorizationReason = "authorization.k8s.io/reason";

    /// <summary>
    /// Set to <c>true</c> when a request or response object was too large to record (kube-apiserver's truncate backend
    /// sets the same annotation when it drops an object).
    /// </summary>
    public const string Truncated = "audit.k8s.io/truncated";

    /// <summary>
    /// The gateway layer that refused the request: <c>http</c> (the request itself: a malformed or ambiguous path, too
    /// many header lines, a body over <c>limits.maxRequestBodyBytes</c>), <c>network</c>, <c>denylist</c>,
    /// <c>impersonation</c>, <c>apf</c>, <c>ratelimit</c> or <c>audit</c> (a blocking backend could not store RequestReceived).
    /// </summary>
    public const string RejectedBy = "portcullis.dev/rejected-by";

    /// <summary>Why that layer refused it, in words an operator can act on (never a credential).</summary>
    public const string RejectReason = "portcullis.dev/reason";

    /// <summary>Prefix of every Portcullis annotation.</summary>
    public const string PortcullisPrefix = "portcullis.dev/";
}
