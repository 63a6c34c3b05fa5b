using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Portcullis.Authentication.Tokens;

/// <summary>
/// Verifies the signature of a <see cref="JwtToken"/> with Microsoft.IdentityModel's <see cref="JsonWebTokenHandler"/>:
/// the library does the JWS cryptography (RSASSA-PKCS1-v1_5, RSASSA-PSS, ECDSA over the exact signing input); which
/// algorithms are allowed and which keys are tried are kube-apiserver's rules, decided here. Every claim check (issuer,
/// audiences, exp/nbf/iat and their leeway) is switched off in the library and done by the authenticators, because
/// kube-apiserver's semantics differ from the library's (its 5-minute clock skew on both exp and nbf, for one).
/// </summary>
public static class JwsVerifier
{
    private static readonly JsonWebTokenHandler Handler = new();

    /// <summary>
    /// The keys kube-apiserver tries for a token: those whose <c>kid</c> equals the token's, and when none does (or the
    /// token has no <c>kid</c>) every key.
    /// </summary>
    public static IReadOnlyList<JwtKey> Candidates(string? kid, IReadOnlyList<JwtKey> keys)
    {
        if (kid is null)
        {
            return keys;
        }
        List<JwtKey>? matched = null;
        foreach (var key in keys)
        {
            if (key.KeyId == kid)
            {
                (matched ??= []).Add(key);
            }
        }
        return matched ?? keys;
    }

    /// <summary>
    /// True when <paramref name="jwt"/> is signed with an algorithm in <paramref name="algorithms"/> (asymmetric only:
    /// <c>none</c> and HMAC never verify) by one of the <see cref="Candidates"/> among <paramref name="keys"/> that fits
    /// the algorithm (<see cref="JwtKey.Fits"/>). False for anything else, never an exception.
    /// </summary>
    public static async ValueTask<bool> VerifyAsync(JwtToken jwt, IReadOnlyList<JwtKey> keys, IReadOnlyList<string> algorithms)
    {
        var alg = jwt.Algorithm;
        if (!jwt.IsAsymmetric || !algorithms.Contains(alg))
        {
            return false;
        }
        var candidates = new List<SecurityKey>();
        foreach (var key in Candidates(jwt.KeyId, keys))
        {
            if (key.Fits(alg))
            {
                candidates.Add(key.SecurityKey);
            }
        }
        if (candidates.Count == 0)
        {
            return false;
        }
        var parameters = new TokenValidationParameters
        {
            // The signature only; kube-apiserver's claim rules are the authenticators' (see the class comment).
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = false,
            ValidateIssuerSigningKey = false,
            ValidateTokenReplay = false,
            RequireSignedTokens = true,
            // The library's own allow-list as well as ours above; only asymmetric names can be in it.
            ValidAlgorithms = [.. algorithms.Where(JwtToken.AsymmetricAlgorithms.Contains)],
            // Exactly the keys chosen by kid above, in order; no fallback to any other key.
            IssuerSigningKeyResolver = (_, _, _, _) => candidates,
            TryAllIssuerSigningKeys = false,
        };
        try
        {
            var result = await Handler.ValidateTokenAsync(jwt.Jws, parameters).ConfigureAwait(false);
            return result.IsValid;
        }
        catch (Exception)
        {
            return false; // ValidateTokenAsync reports failures in its result; anything unexpected fails closed, unsaid
        }
    }
}
