namespace Portcullis.Authentication;

/// <summary>
/// The outcome of <see cref="AuthenticatorChain.AuthenticateAsync"/>: either a user (authenticated or anonymous) or a
/// 401 with a reason for the audit event. Nothing here contains a credential.
/// </summary>
public sealed class ChainResult
{
    public const string AnonymousAuthenticator = "anonymous";

    /// <summary>True when the request may proceed with <see cref="User"/> (authenticated or anonymous).</summary>
    public bool Authenticated { get; init; }

    /// <summary>The user, with <c>system:authenticated</c> added (never to anonymous).</summary>
    public UserInfo? User { get; init; }

    /// <summary>The authenticator that succeeded (<c>x509</c>, <c>token-file</c>, <c>service-account</c>, <c>jwt:ISSUER</c>,
    /// <c>webhook</c>, <c>anonymous</c>); the audit annotation and the per-authenticator counter label. Empty on failure.</summary>
    public string Authenticator { get; init; } = "";

    public bool IsAnonymous => Authenticated && Authenticator == AnonymousAuthenticator;

    /// <summary>Why the request is unauthenticated (for the audit event and logs; never shown to the client, which gets
    /// the plain Unauthorized Status). Null on success.</summary>
    public string? FailureReason { get; init; }

    /// <summary>True when a failure came from an authenticator error (kube-apiserver's <c>authentication_attempts{result="error"}</c>)
    /// rather than no or unrecognised credentials.</summary>
    public bool IsError { get; init; }

    /// <summary>Warnings for the client (<c>Warning: 299</c> headers), e.g. the extra-space bearer header.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>Audit annotations the authenticator asks for (<c>authentication.k8s.io/legacy-token</c>, <c>stale-token</c>).</summary>
    public IReadOnlyDictionary<string, string> AuditAnnotations { get; init; } = NoAnnotations;

    /// <summary>SHA-256 of the bearer token that authenticated the request (the Authorization token, or the
    /// WebSocket-subprotocol token when that one did), else of the token that was presented, if any (deny lists match
    /// <c>tokenSHA256:</c>; logs show <see cref="TokenDigest.ShortHex"/>).</summary>
    public TokenDigest? TokenDigest { get; init; }

    /// <summary>
    /// How the gateway must rewrite <c>Sec-WebSocket-Protocol</c> before forwarding: null = leave as received;
    /// otherwise replace every value by this one (the token entry removed); empty = remove the header.
    /// The gateway always removes <c>Authorization</c> itself (the upstream identity is the gateway's impersonation).
    /// </summary>
    public string? RewrittenWebSocketProtocol { get; init; }

    internal static readonly IReadOnlyDictionary<string, string> NoAnnotations = new Dictionary<string, string>();
}
