using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Portcullis.Authentication.ServiceAccounts;
using Portcullis.Authentication.Tokens;

namespace Portcullis.Authentication.Tests;

public sealed class ServiceAccountTests : IDisposable
{
    private const string Issuer = "https://kubernetes.default.svc.cluster.local";
    private readonly RSA _rsa = TestKeys.Rsa;
    private readonly ECDsa _ec = TestKeys.Ec;
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-sa-").FullName;

    public void Dispose()
    {
        Directory.Delete(_dir, true);
    }

    private static JsonObject Bound(DateTimeOffset now, string aud = Issuer, TimeSpan? lifetime = null)
    {
        var claims = Jwts.Claims(Issuer, aud, now, lifetime, "system:serviceaccount:team-a:builder");
        claims["jti"] = "4b7f5d3c-jti";
        claims["kubernetes.io"] = new JsonObject
        {
            ["namespace"] = "team-a",
            ["serviceaccount"] = new JsonObject { ["name"] = "builder", ["uid"] = "sa-uid-1" },
            ["pod"] = new JsonObject { ["name"] = "builder-7d9", ["uid"] = "pod-uid-1" },
            ["node"] = new JsonObject { ["name"] = "node-1", ["uid"] = "node-uid-1" },
            ["warnafter"] = Jwts.Unix(now.AddMinutes(-1)),
        };
        return claims;
    }

    private ServiceAccountAuthenticator Authenticator(TimeProvider? time = null, params JwtKey[] keys) =>
        new(keys.Length == 0 ? [JwtKey.FromRsa(_rsa), JwtKey.FromEcdsa(_ec)] : keys, [Issuer, "https://other-issuer.example"], [Issuer], time);

    private static async Task<TokenResult> Run(ServiceAccountAuthenticator a, string token) =>
        await a.AuthenticateTokenAsync(new TokenRequest(token, TokenDigest.Of(token)), CancellationToken.None).AsTask().WaitAsync(Wait.Timeout);

    [Fact]
    public async Task Bound_token_maps_to_the_service_account_with_the_bound_extras()
    {
        var result = await Run(Authenticator(), Jwts.Sign(Bound(DateTimeOffset.UtcNow), _rsa, JwtKey.FromRsa(_rsa).KeyId));
        Assert.Equal(AuthenticationOutcome.Success, result.Outcome);
        var user = result.User!;
        Assert.Equal("system:serviceaccount:team-a:builder", user.Name);
        Assert.Equal("sa-uid-1", user.Uid);
        Assert.Equal(["system:serviceaccounts", "system:serviceaccounts:team-a"], user.Groups);
        Assert.Equal(["builder-7d9"], user.Extra["authentication.kubernetes.io/pod-name"]);
        Assert.Equal(["pod-uid-1"], user.Extra["authentication.kubernetes.io/pod-uid"]);
        Assert.Equal(["node-1"], user.Extra["authentication.kubernetes.io/node-name"]);
        Assert.Equal(["node-uid-1"], user.Extra["authentication.kubernetes.io/node-uid"]);
        Assert.Equal(["JTI=4b7f5d3c-jti"], user.Extra["authentication.kubernetes.io/credential-id"]);
        Assert.StartsWith("subject: system:serviceaccount:team-a:builder", result.AuditAnnotations!["authentication.k8s.io/stale-token"], StringComparison.Ordinal);
        Assert.True(result.CacheFor <= TimeSpan.FromSeconds(10));
    }

    [Theory]
    [InlineData("ES256")]
    [InlineData("RS384")]
    [InlineData("PS256")]
    public async Task Rsa_and_ecdsa_algorithms_verify(string alg)
    {
        var claims = Bound(DateTimeOffset.UtcNow);
        var token = alg.StartsWith('E') ? Jwts.Sign(claims, _ec, null, alg) : Jwts.Sign(claims, _rsa, null, alg);
        Assert.Equal(AuthenticationOutcome.Success, (await Run(Authenticator(), token)).Outcome);
    }

    [Fact]
    public async Task An_ecdsa_algorithm_verifies_only_with_a_key_on_its_own_curve()
    {
        // RFC 7518 §3.4 (and go-jose): ES256 is P-256, ES384 P-384. Microsoft.IdentityModel alone would verify an ES256
        // signature with a P-384 key, so the pairing is checked before the library is asked.
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var a = Authenticator(null, JwtKey.FromEcdsa(p384));
        Assert.Equal(AuthenticationOutcome.Success, (await Run(a, Jwts.Sign(Bound(DateTimeOffset.UtcNow), p384, null, "ES384"))).Outcome);
        var mismatched = await Run(a, Jwts.Sign(Bound(DateTimeOffset.UtcNow), p384, null, "ES256"));
        Assert.Equal("service account token signature could not be verified", mismatched.Error);

        // A 256-bit curve that is not P-256 (kube-apiserver cannot even load such a key) verifies nothing.
        using var brainpool = ECDsa.Create(ECCurve.NamedCurves.brainpoolP256r1);
        var b = Authenticator(null, JwtKey.FromEcdsa(brainpool));
        Assert.Equal("service account token signature could not be verified",
            (await Run(b, Jwts.Sign(Bound(DateTimeOffset.UtcNow), brainpool, null, "ES256"))).Error);
    }

    [Fact]
    public async Task A_jwks_key_that_pins_its_alg_verifies_no_other_algorithm()
    {
        var p = _rsa.ExportParameters(false);
        var jwks = $$"""{"keys":[{"kty":"RSA","kid":"pinned","alg":"RS256","n":"{{Jwts.B64(p.Modulus!)}}","e":"{{Jwts.B64(p.Exponent!)}}"}]}""";
        var key = Assert.Single(JwtKey.ParseJwks(System.Text.Encoding.UTF8.GetBytes(jwks)));
        var a = Authenticator(null, key);
        Assert.Equal(AuthenticationOutcome.Success, (await Run(a, Jwts.Sign(Bound(DateTimeOffset.UtcNow), _rsa, "pinned", "RS256"))).Outcome);
        Assert.Equal("service account token signature could not be verified",
            (await Run(a, Jwts.Sign(Bound(DateTimeOffset.UtcNow), _rsa, "pinned", "RS384"))).Error);
    }

    [Fact]
    public async Task Keys_load_from_pem_public_keys_private_keys_and_certificates()
    {
        File.WriteAllText(Path.Combine(_dir, "rsa.pub"), _rsa.ExportSubjectPublicKeyInfoPem());
        File.WriteAllText(Path.Combine(_dir, "ec.key"), _ec.ExportECPrivateKeyPem());
        var certKey = TestKeys.ThirdRsa;
        using var cert = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=sa", certKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        File.WriteAllText(Path.Combine(_dir, "sa.crt"), cert.ExportCertificatePem() + "\n" + _rsa.ExportRSAPublicKeyPem());
        var keys = new[] { "rsa.pub", "ec.key", "sa.crt" }.SelectMany(f => JwtKey.LoadPemFile(Path.Combine(_dir, f))).ToArray();
        Assert.Equal(4, keys.Length);
        var a = Authenticator(null, keys);
        Assert.Equal(AuthenticationOutcome.Success, (await Run(a, Jwts.Sign(Bound(DateTimeOffset.UtcNow), _ec))).Outcome);
        Assert.Equal(AuthenticationOutcome.Success, (await Run(a, Jwts.Sign(Bound(DateTimeOffset.UtcNow), certKey))).Outcome);
        File.WriteAllText(Path.Combine(_dir, "empty.pem"), "nothing here");
        var ex = Assert.Throws<FormatException>(() => JwtKey.LoadPemFile(Path.Combine(_dir, "empty.pem")));
        Assert.Contains("no RSA or ECDSA", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Leeway_is_one_minute_for_exp_nbf_and_iat()
    {
        var now = DateTimeOffset.UtcNow;
        var justExpired = Bound(now.AddHours(-1).AddSeconds(-30), lifetime: TimeSpan.FromHours(1));
        Assert.Equal(AuthenticationOutcome.Success, (await Run(Authenticator(), Jwts.Sign(justExpired, _rsa))).Outcome);
        var expired = Bound(now.AddHours(-1).AddSeconds(-90), lifetime: TimeSpan.FromHours(1));
        Assert.Equal("service account token has expired", (await Run(Authenticator(), Jwts.Sign(expired, _rsa))).Error);
        var future = Bound(now);
        future["nbf"] = Jwts.Unix(now.AddMinutes(5));
        Assert.Equal("service account token is not valid yet", (await Run(Authenticator(), Jwts.Sign(future, _rsa))).Error);
        var issuedFuture = Bound(now);
        issuedFuture["iat"] = Jwts.Unix(now.AddMinutes(5));
        Assert.Equal("service account token is issued in the future", (await Run(Authenticator(), Jwts.Sign(issuedFuture, _rsa))).Error);
    }

    [Fact]
    public async Task Audiences_must_intersect_the_api_audiences()
    {
        var result = await Run(Authenticator(), Jwts.Sign(Bound(DateTimeOffset.UtcNow, aud: "vault"), _rsa));
        Assert.Equal($"token audiences [\"vault\"] is invalid for the target audiences [\"{Issuer}\"]", result.Error);
    }

    [Fact]
    public async Task Token_without_audience_gets_the_legacy_token_annotation()
    {
        var claims = Bound(DateTimeOffset.UtcNow);
        claims.Remove("aud");
        var result = await Run(Authenticator(), Jwts.Sign(claims, _rsa));
        Assert.Equal(AuthenticationOutcome.Success, result.Outcome);
        Assert.Equal("true", result.AuditAnnotations!["authentication.k8s.io/legacy-token"]);
    }

    [Fact]
    public async Task Other_issuers_fall_through_and_legacy_secret_tokens_are_refused()
    {
        var other = Jwts.Claims("https://accounts.example.com", Issuer, DateTimeOffset.UtcNow);
        Assert.Equal(AuthenticationOutcome.NoResult, (await Run(Authenticator(), Jwts.Sign(other, _rsa))).Outcome);
        var legacy = new JsonObject { ["iss"] = "kubernetes/serviceaccount", ["kubernetes.io/serviceaccount/namespace"] = "default" };
        var result = await Run(Authenticator(), Jwts.Sign(legacy, _rsa));
        Assert.Equal(AuthenticationOutcome.Failure, result.Outcome);
        Assert.Contains("TokenReview webhook", result.Error, StringComparison.Ordinal);
    }
}
