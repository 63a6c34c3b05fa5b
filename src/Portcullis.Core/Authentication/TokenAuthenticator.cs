using Portcullis.Authentication.Tokens;

namespace Portcullis.Authentication;

/// <summary>One member of the token union (service-account JWTs, JWT/OIDC issuers, the TokenReview webhook).</summary>
public interface ITokenAuthenticator
{
    /// <summary>Counter label and audit annotation value.</summary>
    string Name { get; }

    ValueTask<TokenResult> AuthenticateTokenAsync(TokenRequest request, CancellationToken cancellationToken);
}

/// <summary>A bearer token with its digest and, when it is JWT-shaped, its parsed (unverified) form, computed once.</summary>
public sealed class TokenRequest
{
    private JwtToken? _jwt;
    private string? _jwtError;
    private bool _parsed;

    public TokenRequest(string token, TokenDigest digest)
    {
        Token = token;
        Digest = digest;
    }

    public string Token { get; }
    public TokenDigest Digest { get; }

    /// <summary>The token parsed as a compact JWS, or null with <see cref="JwtError"/> when it is not one.</summary>
    public JwtToken? Jwt
    {
        get
        {
            if (!_parsed)
            {
                _jwt = JwtToken.TryParse(Token, out _jwtError);
                _parsed = true;
            }
            return _jwt;
        }
    }

    public string? JwtError
    {
        get
        {
            _ = Jwt;
            return _jwtError;
        }
    }
}

/// <summary>
/// The three outcomes of a token authenticator plus how long the chain may cache them: a success is cached for
/// <see cref="CacheFor"/> (never past the token's <c>exp</c>), a rejection only when <see cref="CacheFor"/> is positive.
/// </summary>
public readonly record struct TokenResult(
    AuthenticationOutcome Outcome,
    UserInfo? User,
    string? Error,
    TimeSpan CacheFor,
    IReadOnlyDictionary<string, string>? AuditAnnotations = null,
    bool InfrastructureError = false)
{
    public static TokenResult NoResult(TimeSpan cacheFor) => new(AuthenticationOutcome.NoResult, null, null, cacheFor);

    public static TokenResult Success(UserInfo user, TimeSpan cacheFor, IReadOnlyDictionary<string, string>? annotations = null) =>
        new(AuthenticationOutcome.Success, user, null, cacheFor, annotations);

    /// <summary>A presented token was rejected. <paramref name="error"/> must never contain the token.</summary>
    public static TokenResult Fail(string error, TimeSpan cacheFor) => new(AuthenticationOutcome.Failure, null, error, cacheFor);

    /// <summary>The authenticator could not decide (webhook unreachable, issuer not initialised): fail closed, never cached, counted.</summary>
    public static TokenResult Unavailable(string error) => new(AuthenticationOutcome.Failure, null, error, TimeSpan.Zero, null, true);
}
