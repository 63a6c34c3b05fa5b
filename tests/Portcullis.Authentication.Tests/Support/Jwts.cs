using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Portcullis.Authentication.Tests.Support;

/// <summary>Builds signed (or deliberately broken) compact JWS tokens for tests.</summary>
internal static class Jwts
{
    public static string B64(byte[] bytes) => Base64Url.EncodeToString(bytes);
    public static string B64(string text) => B64(Encoding.UTF8.GetBytes(text));

    public static long Unix(DateTimeOffset t) => t.ToUnixTimeSeconds();

    public static string Sign(JsonObject payload, RSA rsa, string? kid = null, string alg = "RS256")
    {
        var input = Input(alg, kid, payload);
        var hash = alg[^3..] switch { "256" => HashAlgorithmName.SHA256, "384" => HashAlgorithmName.SHA384, _ => HashAlgorithmName.SHA512 };
        var padding = alg[0] == 'P' ? RSASignaturePadding.Pss : RSASignaturePadding.Pkcs1;
        return input + "." + B64(rsa.SignData(Encoding.ASCII.GetBytes(input), hash, padding));
    }

    public static string Sign(JsonObject payload, ECDsa ec, string? kid = null, string alg = "ES256")
    {
        var input = Input(alg, kid, payload);
        var hash = alg switch { "ES256" => HashAlgorithmName.SHA256, "ES384" => HashAlgorithmName.SHA384, _ => HashAlgorithmName.SHA512 };
        return input + "." + B64(ec.SignData(Encoding.ASCII.GetBytes(input), hash, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));
    }

    public static string SignHmac(JsonObject payload, byte[] secret, string? kid = null)
    {
        var input = Input("HS256", kid, payload);
        return input + "." + B64(HMACSHA256.HashData(secret, Encoding.ASCII.GetBytes(input)));
    }

    public static string Unsigned(JsonObject payload) => Input("none", null, payload) + ".";

    public static string Input(string alg, string? kid, JsonObject payload)
    {
        var header = new JsonObject { ["alg"] = alg, ["typ"] = "JWT" };
        if (kid is not null)
        {
            header["kid"] = kid;
        }
        return B64(header.ToJsonString()) + "." + B64(payload.ToJsonString());
    }

    public static string JwksJson(params (string Kid, RSA Key)[] keys) => new JsonObject
    {
        ["keys"] = new JsonArray([.. keys.Select(k =>
        {
            var p = k.Key.ExportParameters(false);
            return (JsonNode)new JsonObject { ["kty"] = "RSA", ["kid"] = k.Kid, ["use"] = "sig", ["alg"] = "RS256", ["n"] = B64(p.Modulus!), ["e"] = B64(p.Exponent!) };
        })]),
    }.ToJsonString();

    public static JsonObject Claims(string iss, string aud, DateTimeOffset now, TimeSpan? lifetime = null, string sub = "alice")
    {
        var exp = now + (lifetime ?? TimeSpan.FromHours(1));
        return new JsonObject
        {
            ["iss"] = iss,
            ["aud"] = aud,
            ["sub"] = sub,
            ["iat"] = Unix(now),
            ["nbf"] = Unix(now),
            ["exp"] = Unix(exp),
        };
    }

    public static JsonObject Parse(string json) => JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip })!.AsObject();
}

internal static class Wait
{
    /// <summary>The timeout every await in these tests gets.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
}

/// <summary>Keys made once per test run: RSA generation is slow on a shared 2-core machine. Never disposed on purpose.</summary>
internal static class TestKeys
{
    private static readonly Lazy<RSA> LazyRsa = new(() => RSA.Create(2048));
    private static readonly Lazy<RSA> LazyOtherRsa = new(() => RSA.Create(2048));
    private static readonly Lazy<RSA> LazyThirdRsa = new(() => RSA.Create(2048));
    private static readonly Lazy<ECDsa> LazyEc = new(() => ECDsa.Create(ECCurve.NamedCurves.nistP256));

    public static RSA Rsa => LazyRsa.Value;
    public static RSA OtherRsa => LazyOtherRsa.Value;
    public static RSA ThirdRsa => LazyThirdRsa.Value;
    public static ECDsa Ec => LazyEc.Value;
}
