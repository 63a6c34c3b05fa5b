using System.Buffers;
using System.Buffers.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Portcullis.Authentication.Tokens;

/// <summary>
/// A compact JWS (<c>header.payload.signature</c>) parsed but not yet verified. The JOSE header is read by
/// Microsoft.IdentityModel's <see cref="JsonWebToken"/>, which <see cref="JwsVerifier"/> then verifies; the payload is also
/// read here as a <see cref="JsonElement"/>, because the claim rules (kube-apiserver's NumericDate, audiences, claim
/// mappings and CEL) are ours. Only asymmetric algorithms are ever verified (RS/PS/ES 256/384/512): <c>none</c> and HMAC
/// are refused, which closes the alg-confusion attacks.
/// </summary>
public sealed class JwtToken
{
    /// <summary>Tokens above this length are not parsed (kube-apiserver tokens are a few KiB at most).</summary>
    public const int MaxLength = 16 * 1024;

    public static readonly IReadOnlyList<string> AsymmetricAlgorithms =
        ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];

    // RFC 7515 §2: base64url without padding. The library's decoder also takes '+' and '/', Go's RawURLEncoding does not.
    private static readonly SearchValues<char> Base64UrlAlphabet =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");

    private JwtToken(JsonWebToken jws, JsonElement claims, IReadOnlyList<string> audiences,
        DateTimeOffset? expiry, DateTimeOffset? notBefore, DateTimeOffset? issuedAt)
    {
        Jws = jws;
        Algorithm = jws.Alg;
        KeyId = string.IsNullOrEmpty(jws.Kid) ? null : jws.Kid; // an empty kid is no kid, as for go-oidc
        Claims = claims;
        Issuer = StringClaim("iss");
        Audiences = audiences;
        Expiry = expiry;
        NotBefore = notBefore;
        IssuedAt = issuedAt;
    }

    /// <summary>The <c>alg</c> header as the library read it (the one it verifies with); unverified text.</summary>
    public string Algorithm { get; }
    /// <summary>The <c>kid</c> header, null when absent or empty; unverified text.</summary>
    public string? KeyId { get; }
    /// <summary>The payload object (verified only once <see cref="JwsVerifier.VerifyAsync"/> returned true).</summary>
    public JsonElement Claims { get; }
    public string? Issuer { get; }
    public IReadOnlyList<string> Audiences { get; }
    public DateTimeOffset? Expiry { get; }
    public DateTimeOffset? NotBefore { get; }
    public DateTimeOffset? IssuedAt { get; }
    /// <summary>The library's view of the same token, handed to <see cref="JsonWebTokenHandler"/> for the signature.</summary>
    internal JsonWebToken Jws { get; }

    /// <summary>Parses a compact JWS; null with a token-free <paramref name="error"/> when it is not one.</summary>
    public static JwtToken? TryParse(string token, out string? error)
    {
        error = null;
        if (token.Length > MaxLength)
        {
            error = $"token is {token.Length} bytes, more than the {MaxLength} accepted";
            return null;
        }
        // Three segments exactly: the library would also take a five-part JWE, which kube-apiserver does not.
        var first = token.IndexOf('.', StringComparison.Ordinal);
        var second = first < 0 ? -1 : token.IndexOf('.', first + 1);
        if (first <= 0 || second < 0 || token.IndexOf('.', second + 1) >= 0)
        {
            error = "not a compact JWS (header.payload.signature)";
            return null;
        }
        var payloadSegment = token.AsSpan(first + 1, second - first - 1);
        if (!IsBase64Url(token.AsSpan(0, first)) || !IsBase64Url(payloadSegment) || !IsBase64Url(token.AsSpan(second + 1)))
        {
            error = "malformed JWT: a segment is not base64url";
            return null;
        }
        JsonElement claims;
        try
        {
            using var payload = JsonDocument.Parse(Base64Url.DecodeFromChars(payloadSegment), new JsonDocumentOptions { MaxDepth = 32 });
            if (payload.RootElement.ValueKind != JsonValueKind.Object)
            {
                error = "malformed JWT: payload is not a JSON object";
                return null;
            }
            claims = payload.RootElement.Clone();
        }
        catch (JsonException)
        {
            error = "malformed JWT: payload is not JSON";
            return null;
        }
        // kube-apiserver's claim types first (a NumericDate may be fractional, null is absent), so its errors are ours.
        IReadOnlyList<string> audiences;
        DateTimeOffset? expiry, notBefore, issuedAt;
        try
        {
            audiences = ReadAudiences(claims);
            expiry = NumericClaim(claims, "exp");
            notBefore = NumericClaim(claims, "nbf");
            issuedAt = NumericClaim(claims, "iat");
        }
        catch (FormatException ex)
        {
            error = "malformed JWT: " + ex.Message;
            return null;
        }
        JsonWebToken jws;
        try
        {
            jws = new JsonWebToken(token);
        }
        catch (Exception ex)
        {
            // Whatever the library throws on attacker-chosen input is a malformed token (ArgumentException with its
            // message ids IDX14102: header, IDX14101: payload, in practice); its messages are not passed on.
            // (exp, nbf, iat and aud were checked above, so a payload the library refuses has a non-string iss, jti or azp.)
            error = ex.Message.StartsWith("IDX14102", StringComparison.Ordinal)
                ? "malformed JWT: header is not a JSON object whose registered parameters (alg, kid, typ, cty, x5t, ...) are strings"
                : ex.Message.StartsWith("IDX14101", StringComparison.Ordinal)
                    ? "malformed JWT: claim iss, jti or azp is not a string"
                    : "malformed JWT: not a compact JWS";
            return null;
        }
        if (string.IsNullOrEmpty(jws.Alg))
        {
            error = "malformed JWT: header has no alg";
            return null;
        }
        if (jws.TryGetHeaderValue<object>("crit", out _))
        {
            error = "malformed JWT: critical header extensions are not supported";
            return null;
        }
        return new JwtToken(jws, claims, audiences, expiry, notBefore, issuedAt);
    }

    private static bool IsBase64Url(ReadOnlySpan<char> segment) =>
        !segment.ContainsAnyExcept(Base64UrlAlphabet) && segment.Length % 4 != 1;

    public bool IsAsymmetric => AsymmetricAlgorithms.Contains(Algorithm);

    public string? StringClaim(string name) =>
        Claims.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static DateTimeOffset? NumericClaim(JsonElement claims, string name)
    {
        if (!claims.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var seconds) || double.IsNaN(seconds) || Math.Abs(seconds) > 253402300799)
        {
            throw new FormatException($"claim {name} is not a NumericDate");
        }
        return DateTimeOffset.FromUnixTimeMilliseconds((long)(seconds * 1000));
    }

    private static List<string> ReadAudiences(JsonElement claims)
    {
        if (!claims.TryGetProperty("aud", out var aud))
        {
            return [];
        }
        switch (aud.ValueKind)
        {
            case JsonValueKind.String:
                return [aud.GetString()!];
            case JsonValueKind.Array:
                var list = new List<string>();
                foreach (var a in aud.EnumerateArray())
                {
                    if (a.ValueKind != JsonValueKind.String)
                    {
                        throw new FormatException("claim aud is not a string or a list of strings");
                    }
                    list.Add(a.GetString()!);
                }
                return list;
            case JsonValueKind.Null:
                return [];
            default:
                throw new FormatException("claim aud is not a string or a list of strings");
        }
    }
}
