using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Portcullis.Authentication.Tokens;

/// <summary>
/// A compact JWS (<c>header.payload.signature</c>) parsed but not yet verified. Only asymmetric algorithms are ever
/// verified (RS/PS/ES 256/384/512): <c>none</c> and HMAC are refused, which closes the alg-confusion attacks.
/// </summary>
public sealed class JwtToken
{
    /// <summary>Tokens above this length are not parsed (kube-apiserver tokens are a few KiB at most).</summary>
    public const int MaxLength = 16 * 1024;

    public static readonly IReadOnlyList<string> AsymmetricAlgorithms =
        ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];

    private JwtToken(string alg, string? kid, JsonElement claims, byte[] signingInput, byte[] signature)
    {
        Algorithm = alg;
        KeyId = kid;
        Claims = claims;
        SigningInput = signingInput;
        Signature = signature;
        Issuer = StringClaim("iss");
        Audiences = ReadAudiences(claims);
        Expiry = NumericClaim("exp");
        NotBefore = NumericClaim("nbf");
        IssuedAt = NumericClaim("iat");
    }

    public string Algorithm { get; }
    public string? KeyId { get; }
    /// <summary>The payload object (verified only once <see cref="Verify"/> returned true).</summary>
    public JsonElement Claims { get; }
    public string? Issuer { get; }
    public IReadOnlyList<string> Audiences { get; }
    public DateTimeOffset? Expiry { get; }
    public DateTimeOffset? NotBefore { get; }
    public DateTimeOffset? IssuedAt { get; }
    internal byte[] SigningInput { get; }
    internal byte[] Signature { get; }

    /// <summary>Parses a compact JWS; null with a token-free <paramref name="error"/> when it is not one.</summary>
    public static JwtToken? TryParse(string token, out string? error)
    {
        error = null;
        if (token.Length > MaxLength)
        {
            error = $"token is {token.Length} bytes, more than the {MaxLength} accepted";
            return null;
        }
        var first = token.IndexOf('.', StringComparison.Ordinal);
        var second = first < 0 ? -1 : token.IndexOf('.', first + 1);
        if (first <= 0 || second < 0 || token.IndexOf('.', second + 1) >= 0)
        {
            error = "not a compact JWS (header.payload.signature)";
            return null;
        }
        var headerBytes = DecodeSegment(token.AsSpan(0, first));
        var payloadBytes = DecodeSegment(token.AsSpan(first + 1, second - first - 1));
        var signature = DecodeSegment(token.AsSpan(second + 1));
        if (headerBytes is null || payloadBytes is null || signature is null)
        {
            error = "malformed JWT: a segment is not base64url";
            return null;
        }
        string? alg;
        string? kid;
        try
        {
            using var header = JsonDocument.Parse(headerBytes);
            if (header.RootElement.ValueKind != JsonValueKind.Object)
            {
                error = "malformed JWT: header is not a JSON object";
                return null;
            }
            alg = header.RootElement.TryGetProperty("alg", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString() : null;
            kid = header.RootElement.TryGetProperty("kid", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString() : null;
            if (header.RootElement.TryGetProperty("crit", out _))
            {
                error = "malformed JWT: critical header extensions are not supported";
                return null;
            }
        }
        catch (JsonException)
        {
            error = "malformed JWT: header is not JSON";
            return null;
        }
        if (string.IsNullOrEmpty(alg))
        {
            error = "malformed JWT: header has no alg";
            return null;
        }
        JsonElement claims;
        try
        {
            using var payload = JsonDocument.Parse(payloadBytes, new JsonDocumentOptions { MaxDepth = 32 });
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
        try
        {
            return new JwtToken(alg, kid, claims, Encoding.ASCII.GetBytes(token, 0, second), signature);
        }
        catch (FormatException ex)
        {
            error = "malformed JWT: " + ex.Message;
            return null;
        }
    }

    /// <summary>Verifies the signature with <paramref name="key"/>; false when the algorithm does not fit the key.</summary>
    public bool Verify(JwtKey key)
    {
        if (key.Algorithm is { } fixedAlg && fixedAlg != Algorithm)
        {
            return false;
        }
        try
        {
            switch (Algorithm)
            {
                case "RS256" or "RS384" or "RS512" or "PS256" or "PS384" or "PS512" when key.Rsa is { } rsa:
                    var padding = Algorithm[0] == 'P' ? RSASignaturePadding.Pss : RSASignaturePadding.Pkcs1;
                    return rsa.VerifyData(SigningInput, Signature, Hash(Algorithm), padding);
                case "ES256" or "ES384" or "ES512" when key.Ecdsa is { } ecdsa:
                    var size = Algorithm switch { "ES256" => 256, "ES384" => 384, _ => 521 };
                    if (ecdsa.KeySize != size || Signature.Length != 2 * ((size + 7) / 8))
                    {
                        return false;
                    }
                    return ecdsa.VerifyData(SigningInput, Signature, Hash(Algorithm), DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
                default:
                    return false;
            }
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    public bool IsAsymmetric => AsymmetricAlgorithms.Contains(Algorithm);

    public string? StringClaim(string name) =>
        Claims.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private DateTimeOffset? NumericClaim(string name)
    {
        if (!Claims.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
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

    private static HashAlgorithmName Hash(string alg) => alg[^3..] switch
    {
        "256" => HashAlgorithmName.SHA256,
        "384" => HashAlgorithmName.SHA384,
        _ => HashAlgorithmName.SHA512,
    };

    private static byte[]? DecodeSegment(ReadOnlySpan<char> segment)
    {
        if (segment.Length == 0)
        {
            return [];
        }
        if (segment.Contains('=') || !Base64Url.IsValid(segment))
        {
            return null;
        }
        try
        {
            return Base64Url.DecodeFromChars(segment);
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
