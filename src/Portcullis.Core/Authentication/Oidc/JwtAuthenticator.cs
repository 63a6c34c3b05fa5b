using System.Globalization;
using System.Text.Json;
using Portcullis.Authentication.ServiceAccounts;
using Portcullis.Authentication.Tokens;

namespace Portcullis.Authentication.Oidc;

/// <summary>
/// One JWT issuer (spec §2.6/§2.7): handles only tokens whose unverified <c>iss</c> equals its issuer URL, verifies the
/// signature with the issuer's JWKS, then audiences, <c>exp</c> (no leeway) and <c>nbf</c> (5 minutes of leeway, as go-oidc),
/// claim rules, claim mappings and user rules. Every failure is an error prefixed <c>oidc: </c>.
/// </summary>
public sealed class JwtAuthenticator : ITokenAuthenticator, IDisposable
{
    public static readonly TimeSpan NotBeforeLeeway = TimeSpan.FromMinutes(5);

    private readonly JwtAuthenticatorSpec _spec;
    private readonly OidcKeySet _keys;
    private readonly TimeProvider _time;
    private readonly TimeSpan _successTtl;
    private readonly bool _ownsKeys;

    public JwtAuthenticator(JwtAuthenticatorSpec spec, OidcKeySet keys, TimeProvider? time = null, TimeSpan? successTtl = null, bool ownsKeys = true)
    {
        _spec = spec;
        _keys = keys;
        _time = time ?? TimeProvider.System;
        _successTtl = successTtl ?? TimeSpan.FromSeconds(10);
        _ownsKeys = ownsKeys;
        Name = "jwt:" + spec.IssuerUrl;
    }

    /// <summary>Creates the authenticator with its own key set (HttpClient trusting the spec's CA) and starts fetching keys.</summary>
    public static JwtAuthenticator Create(JwtAuthenticatorSpec spec, OidcKeySetOptions? options = null, TimeProvider? time = null, TimeSpan? successTtl = null,
        Microsoft.Extensions.Logging.ILoggerFactory? loggers = null)
    {
        var discovery = new Uri(spec.DiscoveryUrl ?? spec.IssuerUrl.TrimEnd('/') + "/.well-known/openid-configuration");
        var keys = new OidcKeySet(discovery, spec.IssuerUrl, OidcKeySet.CreateHttpClient(spec.CertificateAuthorityPem), options, time, ownsHttpClient: true,
            Microsoft.Extensions.Logging.LoggerFactoryExtensions.CreateLogger<OidcKeySet>(loggers ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance));
        keys.Start();
        return new JwtAuthenticator(spec, keys, time, successTtl);
    }

    public string Name { get; }
    public OidcKeySet Keys => _keys;
    public JwtAuthenticatorSpec Spec => _spec;

    public async ValueTask<TokenResult> AuthenticateTokenAsync(TokenRequest request, CancellationToken cancellationToken)
    {
        var jwt = request.Jwt;
        if (jwt is null || jwt.Issuer != _spec.IssuerUrl)
        {
            return TokenResult.NoResult(TimeSpan.MaxValue);
        }
        if (!_spec.SigningAlgorithms.Contains(jwt.Algorithm) || !jwt.IsAsymmetric)
        {
            return Fail($"oidc: verify token: oidc: id token signed with unsupported algorithm, expected {SupportedList()} got \"{Clip(jwt.Algorithm)}\"");
        }
        var keys = await _keys.GetKeysAsync(jwt.KeyId, cancellationToken).ConfigureAwait(false);
        if (keys is null)
        {
            return TokenResult.Unavailable($"oidc: authenticator for issuer \"{_spec.IssuerUrl}\" is not initialized");
        }
        if (jwt.KeyId is { } kid && !keys.Any(k => k.KeyId == kid))
        {
            return TokenResult.Fail($"oidc: verify token: failed to verify signature: no key with kid \"{Clip(kid)}\" in the issuer's JWKS", TimeSpan.Zero);
        }
        if (!await JwsVerifier.VerifyAsync(jwt, keys, _spec.SigningAlgorithms).ConfigureAwait(false))
        {
            return Fail("oidc: verify token: failed to verify signature: failed to verify id token signature");
        }
        var now = _time.GetUtcNow();
        if (jwt.Expiry is not { } exp || exp < now)
        {
            return Fail($"oidc: verify token: oidc: token is expired (Token Expiry: {FormatGoTime(jwt.Expiry)})");
        }
        if (jwt.NotBefore is { } nbf && now + NotBeforeLeeway < nbf)
        {
            return TokenResult.Fail($"oidc: verify token: oidc: current time {FormatGoTime(now)} before the nbf (not before) time: {FormatGoTime(nbf)}", TimeSpan.Zero);
        }
        if (!jwt.Audiences.Any(_spec.Audiences.Contains))
        {
            return Fail(_spec.Audiences.Count == 1
                ? $"oidc: verify token: oidc: expected audience {JsonSerializer.Serialize(_spec.Audiences[0])} got {ServiceAccountAuthenticator.GoQuote(jwt.Audiences)}"
                : $"oidc: verify token: oidc: expected audience in {ServiceAccountAuthenticator.GoQuote(_spec.Audiences)} got {ServiceAccountAuthenticator.GoQuote(jwt.Audiences)}");
        }

        var (user, error) = MapClaims(jwt.Claims);
        return user is null ? Fail(error!) : TokenResult.Success(user, ServiceAccountAuthenticator.Min(_successTtl, exp - now));
    }

    /// <summary>
    /// Claim validation rules, claim mappings and user validation rules on verified claims: the user, or the error.
    /// (Public so the documented examples can be checked against their stated user info without a signed token.)
    /// </summary>
    public (UserInfo? User, string? Error) MapClaims(JsonElement claims)
    {
        Dictionary<string, object?>? celClaims = null;
        Dictionary<string, object?> ClaimsVars() => celClaims ??= new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["claims"] = CelExpression.FromJson(claims),
        };
        try
        {
            foreach (var rule in _spec.ClaimValidationRules)
            {
                if (rule.Expression is { } e)
                {
                    if (!e.EvaluateBool(ClaimsVars()))
                    {
                        return (null, $"oidc: error evaluating claim validation expression: validation expression '{e.Source}' failed: {rule.Message}");
                    }
                }
                else if (CheckRequiredClaim(claims, rule) is { } error)
                {
                    return (null, error);
                }
            }

            var username = MapUsername(claims, ClaimsVars, out var usernameError);
            if (usernameError is not null)
            {
                return (null, usernameError);
            }
            var groups = _spec.Groups is { } g ? MapStrings(claims, g, ClaimsVars, "groups") : [];
            var uid = "";
            if (_spec.Uid is { } u)
            {
                uid = u.Expression is { } ue ? ue.EvaluateString(ClaimsVars()) : ClaimString(claims, u.Claim, "uid");
            }
            Dictionary<string, IReadOnlyList<string>>? extra = null;
            foreach (var x in _spec.Extra)
            {
                var values = x.ValueExpression.EvaluateStrings(ClaimsVars()).Where(v => v.Length > 0).ToList();
                if (values.Count > 0)
                {
                    (extra ??= new(StringComparer.Ordinal))[x.Key] = values;
                }
            }
            var user = UserInfo.Create(username!, groups, uid, extra);
            if (_spec.UserValidationRules.Count > 0)
            {
                var userVars = new Dictionary<string, object?>(StringComparer.Ordinal)
                {
                    ["user"] = new Dictionary<string, object?>(StringComparer.Ordinal)
                    {
                        ["username"] = user.Name,
                        ["uid"] = user.Uid,
                        ["groups"] = user.Groups.Cast<object?>().ToList(),
                        ["extra"] = user.Extra.ToDictionary(kv => kv.Key, kv => (object?)kv.Value.Cast<object?>().ToList(), StringComparer.Ordinal),
                    },
                };
                foreach (var rule in _spec.UserValidationRules)
                {
                    if (!rule.Expression.EvaluateBool(userVars))
                    {
                        return (null, $"oidc: error evaluating user info validation rule: validation expression '{rule.Expression.Source}' failed: {rule.Message}");
                    }
                }
            }
            return (user, null);
        }
        catch (CelEvaluationException ex)
        {
            return (null, "oidc: " + ex.Message);
        }
        catch (ClaimException ex)
        {
            return (null, ex.Message);
        }
    }

    private string? MapUsername(JsonElement claims, Func<Dictionary<string, object?>> vars, out string? error)
    {
        error = null;
        var mapping = _spec.Username;
        if (mapping.Expression is { } e)
        {
            var name = e.EvaluateString(vars());
            if (name.Length == 0)
            {
                error = "oidc: empty username via CEL expression is not allowed";
            }
            return name;
        }
        var value = ClaimString(claims, mapping.Claim, "username");
        if (mapping.Claim == "email" && claims.TryGetProperty("email_verified", out var verified))
        {
            if (verified.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                error = "oidc: parse 'email_verified' claim: not a boolean";
                return null;
            }
            if (verified.ValueKind == JsonValueKind.False)
            {
                error = "oidc: email not verified";
                return null;
            }
        }
        if (value.Length == 0)
        {
            error = $"oidc: parse username claims \"{mapping.Claim}\": claim is empty";
            return null;
        }
        return mapping.Prefix + value;
    }

    private static List<string> MapStrings(JsonElement claims, ClaimOrExpression mapping, Func<Dictionary<string, object?>> vars, string what)
    {
        if (mapping.Expression is { } e)
        {
            return [.. e.EvaluateStrings(vars()).Where(s => s.Length > 0)];
        }
        if (!claims.TryGetProperty(mapping.Claim, out var claim) || claim.ValueKind == JsonValueKind.Null)
        {
            return [];
        }
        var result = new List<string>();
        switch (claim.ValueKind)
        {
            case JsonValueKind.String:
                result.Add(mapping.Prefix + claim.GetString());
                break;
            case JsonValueKind.Array:
                foreach (var item in claim.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.String)
                    {
                        throw new ClaimException($"oidc: parse {what} claim \"{mapping.Claim}\": not a string or a list of strings");
                    }
                    result.Add(mapping.Prefix + item.GetString());
                }
                break;
            default:
                throw new ClaimException($"oidc: parse {what} claim \"{mapping.Claim}\": not a string or a list of strings");
        }
        return result;
    }

    private static string ClaimString(JsonElement claims, string claim, string what)
    {
        if (!claims.TryGetProperty(claim, out var value))
        {
            throw new ClaimException($"oidc: parse {what} claims \"{claim}\": claim not present");
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            throw new ClaimException($"oidc: parse {what} claims \"{claim}\": claim is not a string");
        }
        return value.GetString()!;
    }

    private static string? CheckRequiredClaim(JsonElement claims, ClaimValidationRuleSpec rule)
    {
        if (!claims.TryGetProperty(rule.Claim, out var value))
        {
            return $"oidc: required claim {rule.Claim} not found in id_token";
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            return $"oidc: required claim {rule.Claim} is not a string";
        }
        var actual = value.GetString();
        return actual == rule.RequiredValue ? null
            : $"oidc: required claim {rule.Claim} value does not match. Got = {Clip(actual ?? "")}, want = {rule.RequiredValue}";
    }

    private string SupportedList() => "[" + string.Join(' ', _spec.SigningAlgorithms) + "]";

    private static TokenResult Fail(string error) => TokenResult.Fail(error, TimeSpan.MaxValue);

    // Values from an unverified token: clipped, and control or invisible characters escaped (logs, audit, 401 reasons).
    private static string Clip(string s) => Portcullis.Diagnostics.SafeText.Of(s, 64);

    /// <summary>Go's time.Time String() for UTC: <c>2023-12-22 08:15:49 +0000 UTC</c>.</summary>
    private static string FormatGoTime(DateTimeOffset? t) =>
        t is { } v ? v.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " +0000 UTC" : "0001-01-01 00:00:00 +0000 UTC";

    public void Dispose()
    {
        if (_ownsKeys)
        {
            _keys.Dispose();
        }
    }

    private sealed class ClaimException(string message) : Exception(message);
}
