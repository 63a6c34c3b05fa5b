using System.Text.Json;
using Portcullis.Authentication.Tokens;

namespace Portcullis.Authentication.ServiceAccounts;

/// <summary>
/// Service-account JWTs (spec §2.5): bound tokens from <c>--service-account-issuer</c> values, verified with
/// <c>--service-account-key-file</c> keys, with go-jose's 60 s leeway on exp/nbf/iat. The gateway has no cluster state,
/// so it cannot check that the ServiceAccount, Pod, Secret or Node named in a token still exist (kube-apiserver's
/// invalidation on delete): deploy the TokenReview webhook against the real cluster when that matters. For the same
/// reason legacy Secret-based tokens (issuer <c>kubernetes/serviceaccount</c>), which never expire and are only safe with
/// <c>--service-account-lookup</c>, are refused with an error that says so.
/// </summary>
public sealed class ServiceAccountAuthenticator : ITokenAuthenticator
{
    public const string LegacyIssuer = "kubernetes/serviceaccount";
    /// <summary>go-jose's DefaultLeeway, which kube-apiserver's service-account validator uses.</summary>
    public static readonly TimeSpan Leeway = TimeSpan.FromMinutes(1);

    private readonly IReadOnlyList<JwtKey> _keys;
    private readonly HashSet<string> _issuers;
    private readonly IReadOnlyList<string> _apiAudiences;
    private readonly TimeProvider _time;
    private readonly TimeSpan _successTtl;

    public ServiceAccountAuthenticator(IReadOnlyList<JwtKey> keys, IReadOnlyList<string> issuers, IReadOnlyList<string> apiAudiences,
        TimeProvider? time = null, TimeSpan? successTtl = null)
    {
        _keys = keys;
        _issuers = new HashSet<string>(issuers, StringComparer.Ordinal);
        _apiAudiences = apiAudiences;
        _time = time ?? TimeProvider.System;
        _successTtl = successTtl ?? TimeSpan.FromSeconds(10);
    }

    public string Name => "service-account";

    public async ValueTask<TokenResult> AuthenticateTokenAsync(TokenRequest request, CancellationToken cancellationToken)
    {
        var jwt = request.Jwt;
        if (jwt is null)
        {
            return TokenResult.NoResult(TimeSpan.MaxValue);
        }
        if (jwt.Issuer == LegacyIssuer)
        {
            return TokenResult.Fail("legacy service account tokens are not accepted: they need a Secret lookup the gateway cannot do (use the TokenReview webhook)", TimeSpan.MaxValue);
        }
        if (jwt.Issuer is null || !_issuers.Contains(jwt.Issuer))
        {
            return TokenResult.NoResult(TimeSpan.MaxValue);
        }
        if (!jwt.IsAsymmetric)
        {
            // The alg is unverified text: escaped and clipped before it reaches a reason.
            return TokenResult.Fail($"service account token uses unsupported signing algorithm \"{Portcullis.Diagnostics.SafeText.Of(jwt.Algorithm)}\"", TimeSpan.MaxValue);
        }
        if (!await JwsVerifier.VerifyAsync(jwt, _keys, JwtToken.AsymmetricAlgorithms).ConfigureAwait(false))
        {
            return TokenResult.Fail("service account token signature could not be verified", TimeSpan.MaxValue);
        }
        var now = _time.GetUtcNow();
        if (jwt.Expiry is not { } exp)
        {
            return TokenResult.Fail("service account token has no expiry (exp)", TimeSpan.MaxValue);
        }
        if (now > exp + Leeway)
        {
            return TokenResult.Fail("service account token has expired", TimeSpan.MaxValue);
        }
        if (jwt.NotBefore is { } nbf && now + Leeway < nbf)
        {
            return TokenResult.Fail("service account token is not valid yet", TimeSpan.Zero);
        }
        if (jwt.IssuedAt is { } iat && now + Leeway < iat)
        {
            return TokenResult.Fail("service account token is issued in the future", TimeSpan.Zero);
        }

        var annotations = new Dictionary<string, string>(StringComparer.Ordinal);
        IReadOnlyList<string> tokenAudiences = jwt.Audiences;
        if (tokenAudiences.Count == 0)
        {
            tokenAudiences = _apiAudiences;
            annotations["authentication.k8s.io/legacy-token"] = "true";
        }
        if (_apiAudiences.Count > 0 && !tokenAudiences.Any(_apiAudiences.Contains))
        {
            return TokenResult.Fail($"token audiences {GoQuote(tokenAudiences)} is invalid for the target audiences {GoQuote(_apiAudiences)}", TimeSpan.MaxValue);
        }

        if (!jwt.Claims.TryGetProperty("kubernetes.io", out var k8s) || k8s.ValueKind != JsonValueKind.Object)
        {
            return TokenResult.Fail("service account token has no kubernetes.io claim", TimeSpan.MaxValue);
        }
        var ns = Str(k8s, "namespace");
        var sa = k8s.TryGetProperty("serviceaccount", out var saElement) ? saElement : default;
        var name = Str(sa, "name");
        if (string.IsNullOrEmpty(ns) || string.IsNullOrEmpty(name))
        {
            return TokenResult.Fail("service account token does not name a namespace and service account", TimeSpan.MaxValue);
        }
        var uid = Str(sa, "uid") ?? "";
        var extra = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        if (k8s.TryGetProperty("pod", out var pod))
        {
            AddExtra(extra, "authentication.kubernetes.io/pod-name", Str(pod, "name"));
            AddExtra(extra, "authentication.kubernetes.io/pod-uid", Str(pod, "uid"));
        }
        if (k8s.TryGetProperty("node", out var node))
        {
            AddExtra(extra, "authentication.kubernetes.io/node-name", Str(node, "name"));
            AddExtra(extra, "authentication.kubernetes.io/node-uid", Str(node, "uid"));
        }
        if (jwt.StringClaim("jti") is { Length: > 0 } jti)
        {
            extra["authentication.kubernetes.io/credential-id"] = ["JTI=" + jti];
        }
        var username = $"system:serviceaccount:{ns}:{name}";
        if (k8s.TryGetProperty("warnafter", out var warnAfter) && warnAfter.ValueKind == JsonValueKind.Number
            && warnAfter.TryGetInt64(out var warnSeconds) && now.ToUnixTimeSeconds() > warnSeconds)
        {
            annotations["authentication.k8s.io/stale-token"] =
                $"subject: {username}, seconds after warning threshold: {now.ToUnixTimeSeconds() - warnSeconds}";
        }
        var user = UserInfo.Create(username, ["system:serviceaccounts", "system:serviceaccounts:" + ns], uid,
            extra.Count == 0 ? null : extra);
        var ttl = Min(_successTtl, exp - now);
        return TokenResult.Success(user, ttl, annotations.Count == 0 ? null : annotations);
    }

    private static void AddExtra(Dictionary<string, IReadOnlyList<string>> extra, string key, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            extra[key] = [value];
        }
    }

    private static string? Str(JsonElement o, string name) =>
        o.ValueKind == JsonValueKind.Object && o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    internal static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>Go's <c>%q</c> of a []string: <c>["a" "b"]</c>.</summary>
    internal static string GoQuote(IEnumerable<string> values) => "[" + string.Join(' ', values.Select(v => JsonSerializer.Serialize(v))) + "]";
}
