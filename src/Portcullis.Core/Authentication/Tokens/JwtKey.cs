using System.Buffers.Text;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace Portcullis.Authentication.Tokens;

/// <summary>
/// An RSA or ECDSA public key that verifies JWS signatures, with its <c>kid</c>: a Microsoft.IdentityModel
/// <see cref="AsymmetricSecurityKey"/> (<see cref="RsaSecurityKey"/> or <see cref="ECDsaSecurityKey"/>) for
/// <see cref="JwsVerifier"/>, plus the rules of which algorithms it may verify.
/// </summary>
public sealed class JwtKey
{
    private readonly string? _ecdsaAlgorithm;

    private JwtKey(string? kid, RSA? rsa, ECDsa? ecdsa, string? alg)
    {
        KeyId = kid;
        Algorithm = alg;
        if (rsa is not null)
        {
            SecurityKey = new RsaSecurityKey(rsa) { KeyId = kid };
        }
        else
        {
            SecurityKey = new ECDsaSecurityKey(ecdsa!) { KeyId = kid };
            _ecdsaAlgorithm = ecdsa!.ExportParameters(false).Curve.Oid?.Value switch
            {
                "1.2.840.10045.3.1.7" => "ES256", // P-256
                "1.3.132.0.34" => "ES384",        // P-384
                "1.3.132.0.35" => "ES512",        // P-521
                _ => null,                        // another curve (brainpool, secp256k1, ...): verifies nothing
            };
        }
    }

    public string? KeyId { get; }
    /// <summary>The key as Microsoft.IdentityModel verifies with it (its <c>KeyId</c> is <see cref="KeyId"/>).</summary>
    public AsymmetricSecurityKey SecurityKey { get; }
    /// <summary>The JWK's <c>alg</c>, when it pins one.</summary>
    public string? Algorithm { get; }

    /// <summary>
    /// Whether a signature of algorithm <paramref name="alg"/> may be checked with this key: the JWK's <c>alg</c> when it
    /// pins one, RS*/PS* with an RSA key, and ES256/ES384/ES512 only with a P-256/P-384/P-521 key (RFC 7518 §3.4, as
    /// go-jose checks; the library itself would verify ES256 with a P-384 key).
    /// </summary>
    public bool Fits(string alg)
    {
        if (Algorithm is { } pinned && pinned != alg)
        {
            return false;
        }
        return SecurityKey is RsaSecurityKey
            ? alg is "RS256" or "RS384" or "RS512" or "PS256" or "PS384" or "PS512"
            : alg == _ecdsaAlgorithm;
    }

    public static JwtKey FromRsa(RSA rsa, string? kid = null) => new(kid ?? KeyIdOf(rsa.ExportSubjectPublicKeyInfo()), rsa, null, null);
    public static JwtKey FromEcdsa(ECDsa ecdsa, string? kid = null) => new(kid ?? KeyIdOf(ecdsa.ExportSubjectPublicKeyInfo()), null, ecdsa, null);

    /// <summary>kube-apiserver's key id for service-account signing keys: base64url(SHA-256(PKIX DER of the public key)).</summary>
    public static string KeyIdOf(byte[] subjectPublicKeyInfo) => Base64Url.EncodeToString(SHA256.HashData(subjectPublicKeyInfo));

    /// <summary>
    /// Reads every key in a PEM file as <c>--service-account-key-file</c> accepts it: PUBLIC KEY, RSA PUBLIC KEY,
    /// CERTIFICATE, RSA PRIVATE KEY, EC PRIVATE KEY, PRIVATE KEY (only the public half is kept). Errors name the file, never key material.
    /// </summary>
    public static IReadOnlyList<JwtKey> LoadPemFile(string path)
    {
        var text = File.ReadAllText(path);
        var keys = new List<JwtKey>();
        var rest = text.AsSpan();
        while (PemEncoding.TryFind(rest, out var fields))
        {
            var label = rest[fields.Label].ToString();
            var der = Convert.FromBase64String(rest[fields.Base64Data].ToString());
            rest = rest[fields.Location.End..];
            try
            {
                if (FromDer(label, der) is { } key)
                {
                    keys.Add(key);
                }
            }
            catch (CryptographicException ex)
            {
                throw new FormatException($"{path}: cannot read the {label} block: {ex.Message}", ex);
            }
        }
        if (keys.Count == 0)
        {
            throw new FormatException($"{path}: no RSA or ECDSA public key, private key or certificate found (PEM expected)");
        }
        return keys;
    }

    private static JwtKey? FromDer(string label, byte[] der)
    {
        switch (label)
        {
            case "CERTIFICATE":
                using (var cert = X509CertificateLoader.LoadCertificate(der))
                {
                    if (cert.GetRSAPublicKey() is { } certRsa)
                    {
                        return FromRsa(certRsa);
                    }
                    if (cert.GetECDsaPublicKey() is { } certEc)
                    {
                        return FromEcdsa(certEc);
                    }
                    return null;
                }
            case "RSA PUBLIC KEY":
            {
                var rsa = RSA.Create();
                rsa.ImportRSAPublicKey(der, out _);
                return FromRsa(rsa);
            }
            case "RSA PRIVATE KEY":
            {
                using var priv = RSA.Create();
                priv.ImportRSAPrivateKey(der, out _);
                return PublicRsa(priv);
            }
            case "EC PRIVATE KEY":
            {
                using var priv = ECDsa.Create();
                priv.ImportECPrivateKey(der, out _);
                return PublicEcdsa(priv);
            }
            case "PUBLIC KEY":
            {
                var rsa = RSA.Create();
                try
                {
                    rsa.ImportSubjectPublicKeyInfo(der, out _);
                    return FromRsa(rsa);
                }
                catch (CryptographicException)
                {
                    rsa.Dispose();
                }
                var ec = ECDsa.Create();
                ec.ImportSubjectPublicKeyInfo(der, out _);
                return FromEcdsa(ec);
            }
            case "PRIVATE KEY":
            {
                using (var rsa = RSA.Create())
                {
                    try
                    {
                        rsa.ImportPkcs8PrivateKey(der, out _);
                        return PublicRsa(rsa);
                    }
                    catch (CryptographicException)
                    {
                        // not RSA: try EC below
                    }
                }
                using var ec = ECDsa.Create();
                ec.ImportPkcs8PrivateKey(der, out _);
                return PublicEcdsa(ec);
            }
            default:
                return null;
        }
    }

    private static JwtKey PublicRsa(RSA priv)
    {
        var rsa = RSA.Create();
        rsa.ImportSubjectPublicKeyInfo(priv.ExportSubjectPublicKeyInfo(), out _);
        return FromRsa(rsa);
    }

    private static JwtKey PublicEcdsa(ECDsa priv)
    {
        var ec = ECDsa.Create();
        ec.ImportSubjectPublicKeyInfo(priv.ExportSubjectPublicKeyInfo(), out _);
        return FromEcdsa(ec);
    }

    /// <summary>Reads a JWKS document (<c>{"keys":[...]}</c>); keys that are not RSA/EC signing keys are skipped.</summary>
    public static IReadOnlyList<JwtKey> ParseJwks(ReadOnlySpan<byte> json)
    {
        using var doc = JsonDocument.Parse(json.ToArray());
        if (!doc.RootElement.TryGetProperty("keys", out var keysElement) || keysElement.ValueKind != JsonValueKind.Array)
        {
            throw new FormatException("JWKS document has no \"keys\" array");
        }
        var keys = new List<JwtKey>();
        foreach (var jwk in keysElement.EnumerateArray())
        {
            if (jwk.ValueKind != JsonValueKind.Object)
            {
                continue;
            }
            var use = Str(jwk, "use");
            if (use is not null && use != "sig")
            {
                continue;
            }
            var kid = Str(jwk, "kid");
            var alg = Str(jwk, "alg");
            switch (Str(jwk, "kty"))
            {
                case "RSA":
                {
                    var n = B64(jwk, "n");
                    var e = B64(jwk, "e");
                    if (n is null || e is null)
                    {
                        continue;
                    }
                    var rsa = RSA.Create();
                    rsa.ImportParameters(new RSAParameters { Modulus = n, Exponent = e });
                    keys.Add(new JwtKey(kid, rsa, null, alg));
                    break;
                }
                case "EC":
                {
                    var x = B64(jwk, "x");
                    var y = B64(jwk, "y");
                    ECCurve? curve = Str(jwk, "crv") switch
                    {
                        "P-256" => ECCurve.NamedCurves.nistP256,
                        "P-384" => ECCurve.NamedCurves.nistP384,
                        "P-521" => ECCurve.NamedCurves.nistP521,
                        _ => null,
                    };
                    if (x is null || y is null || curve is null)
                    {
                        continue;
                    }
                    var ec = ECDsa.Create();
                    ec.ImportParameters(new ECParameters { Curve = curve.Value, Q = new ECPoint { X = x, Y = y } });
                    keys.Add(new JwtKey(kid, null, ec, alg));
                    break;
                }
            }
        }
        return keys;
    }

    private static string? Str(JsonElement o, string name) =>
        o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static byte[]? B64(JsonElement o, string name)
    {
        var s = Str(o, name);
        if (s is null || !Base64Url.IsValid(s))
        {
            return null;
        }
        return Base64Url.DecodeFromChars(s);
    }
}
