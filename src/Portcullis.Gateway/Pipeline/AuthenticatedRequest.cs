using Portcullis.Authentication;
using Portcullis.Authorization;

namespace Portcullis.Gateway.Pipeline;

/// <summary>
/// Per-request state from authentication on, made only by the authentication stage
/// (<see cref="GatewayRequestFeature.Authenticate"/>): the user is known, so no later stage handles a null user.
/// </summary>
internal sealed class AuthenticatedRequest
{
    private readonly GatewayRequestFeature _request;

    internal AuthenticatedRequest(GatewayRequestFeature request, UserInfo user, string authenticator, string? tokenSha256, string? certificateSerial)
    {
        ArgumentNullException.ThrowIfNull(user);
        _request = request;
        User = user;
        Authenticator = authenticator;
        TokenSha256 = tokenSha256;
        CertificateSerial = certificateSerial;
    }

    /// <summary>The authenticated (pre-impersonation) user; what audit records as <c>user</c>.</summary>
    public UserInfo User { get; }
    /// <summary>Which authenticator succeeded (x509, token-file, anonymous, ...).</summary>
    public string Authenticator { get; }
    /// <summary>Hex SHA-256 of the bearer token that authenticated the request (for the deny list); never the token.</summary>
    public string? TokenSha256 { get; }
    /// <summary>Serial number of the client certificate that authenticated the request (for the deny list).</summary>
    public string? CertificateSerial { get; }

    /// <summary>The user named by Impersonate-* headers, once L4 has allowed it.</summary>
    public UserInfo? ImpersonatedUser { get; private set; }

    /// <summary>The identity requests are made as from here on: authorization, APF, upstream.</summary>
    public UserInfo EffectiveUser => ImpersonatedUser ?? User;

    /// <summary>L4 allowed the impersonation: the rest of the path, the audit record and the upstream see <paramref name="user"/>.</summary>
    public void Impersonate(UserInfo user)
    {
        ArgumentNullException.ThrowIfNull(user);
        ImpersonatedUser = user;
        _request.Audit.SetImpersonatedUser(user);
    }

    /// <summary>Authorization attributes for the effective user and <paramref name="request"/>.</summary>
    public AuthorizationAttributes Attributes(RequestInfo request) =>
        new(EffectiveUser, request, _request.SourceAddress, TokenSha256, CertificateSerial);

    /// <summary>Authorization attributes for the authenticated user, who acts even when impersonating (for the deny list).</summary>
    public AuthorizationAttributes RequestorAttributes(RequestInfo request) =>
        new(User, request, _request.SourceAddress, TokenSha256, CertificateSerial);
}
