using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Portcullis.Authentication.Oidc;
using Portcullis.Authentication.ServiceAccounts;
using Portcullis.Authentication.Tokens;

namespace Portcullis.Authentication.Tests;

/// <summary>Each attack is rejected (401) with a reason the audit event can carry, against SA and OIDC authenticators.</summary>
public sealed class JwtAttackTests : IAsyncLifetime
{
    private const string SaIssuer = "https://kubernetes.default.svc";
    private const string OidcIssuer = "https://issuer.example";
    private const string Audience = "portcullis";
    private readonly RSA _rsa = TestKeys.Rsa;
    private readonly RSA _other = TestKeys.OtherRsa;
    private LoopbackServer _jwks = null!;
    private JwtAuthenticator _oidc = null!;
    private AuthenticatorChain _chain = null!;
    private int _jwksFetches;

    public async Task InitializeAsync()
    {
        var jwks = Jwts.JwksJson(("k1", _rsa));
        _jwks = await LoopbackServer.StartAsync(async context =>
        {
            if (context.Request.Path == "/jwks")
            {
                Interlocked.Increment(ref _jwksFetches);
                await context.Response.WriteAsync(jwks);
                return;
            }
            await context.Response.WriteAsync($$"""{"issuer":"{{OidcIssuer}}","jwks_uri":"{{_jwks!.Url}}jwks"}""");
        });
        var spec = new JwtAuthenticatorSpec
        {
            IssuerUrl = OidcIssuer,
            DiscoveryUrl = _jwks.Url + ".well-known/openid-configuration",
            Audiences = [Audience],
            SigningAlgorithms = ["RS256"],
            Username = new ClaimOrExpression("sub", "oidc:", null),
        };
        var keys = new OidcKeySet(new Uri(spec.DiscoveryUrl), OidcIssuer, new HttpClient(),
            new OidcKeySetOptions { AllowHttpLoopbackIssuer = true, MinRefreshInterval = TimeSpan.FromHours(1) });
        keys.Start();
        await keys.Ready.WaitAsync(Wait.Timeout);
        _oidc = new JwtAuthenticator(spec, keys);
        var sa = new ServiceAccountAuthenticator([JwtKey.FromRsa(_rsa)], [SaIssuer], [SaIssuer]);
        _chain = new AuthenticatorChain(null, [sa, _oidc], new AnonymousPolicy(true, []));
    }

    public async Task DisposeAsync()
    {
        _chain.Dispose();
        await _jwks.DisposeAsync();
    }

    private static JsonObject Oidc(DateTimeOffset? now = null) => Jwts.Claims(OidcIssuer, Audience, now ?? DateTimeOffset.UtcNow);

    private static JsonObject Sa()
    {
        var c = Jwts.Claims(SaIssuer, SaIssuer, DateTimeOffset.UtcNow);
        c["kubernetes.io"] = new JsonObject { ["namespace"] = "ns", ["serviceaccount"] = new JsonObject { ["name"] = "sa", ["uid"] = "u" } };
        return c;
    }

    private async Task<ChainResult> Run(params string[] authorization) =>
        await _chain.AuthenticateAsync(new AuthenticationRequest { AuthorizationHeaders = authorization }, CancellationToken.None).AsTask().WaitAsync(Wait.Timeout);

    private async Task AssertRejected(string token, string reasonPart)
    {
        var result = await Run("Bearer " + token);
        Assert.False(result.Authenticated);
        Assert.NotNull(result.FailureReason);
        Assert.Contains(reasonPart, result.FailureReason, StringComparison.Ordinal);
        Assert.DoesNotContain(token.Length > 20 ? token[^20..] : "\u0000", result.FailureReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Valid_tokens_of_both_kinds_are_accepted()
    {
        Assert.Equal("oidc:alice", (await Run("Bearer " + Jwts.Sign(Oidc(), _rsa, "k1"))).User!.Name);
        Assert.Equal("system:serviceaccount:ns:sa", (await Run("Bearer " + Jwts.Sign(Sa(), _rsa))).User!.Name);
    }

    [Fact]
    public async Task Alg_none_is_rejected()
    {
        await AssertRejected(Jwts.Unsigned(Oidc()), "unsupported algorithm");
        await AssertRejected(Jwts.Unsigned(Sa()), "unsupported signing algorithm \"none\"");
    }

    [Fact]
    public async Task HS256_signed_with_the_rsa_public_key_is_rejected()
    {
        var publicKeyBytes = Encoding.ASCII.GetBytes(_rsa.ExportSubjectPublicKeyInfoPem());
        await AssertRejected(Jwts.SignHmac(Oidc(), publicKeyBytes, "k1"), "unsupported algorithm");
        await AssertRejected(Jwts.SignHmac(Sa(), publicKeyBytes), "unsupported signing algorithm \"HS256\"");
    }

    [Fact]
    public async Task An_unverified_alg_reaches_the_reason_escaped_and_clipped()
    {
        // The alg is attacker-chosen header text: a CR/LF in it must not split a log line or a 401 reason.
        var alg = "RS256\r\nX-Injected: yes" + new string('A', 500);
        foreach (var (claims, expected) in new[]
        {
            (Oidc(), "got \"RS256\\u000D\\u000AX-Injected: yes"),
            (Sa(), "unsupported signing algorithm \"RS256\\u000D\\u000AX-Injected: yes"),
        })
        {
            var token = Jwts.Input(alg, "k1", claims) + "." + Jwts.B64([1, 2, 3]);
            var result = await Run("Bearer " + token);
            Assert.False(result.Authenticated);
            Assert.Contains(expected, result.FailureReason, StringComparison.Ordinal);
            Assert.DoesNotContain('\r', result.FailureReason!);
            Assert.DoesNotContain('\n', result.FailureReason!);
            Assert.DoesNotContain(new string('A', 100), result.FailureReason, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Kid_naming_one_key_with_a_signature_by_another_configured_key_is_rejected()
    {
        // kube-apiserver tries only the keys the kid names; every key only when the kid names none (or is absent).
        var other = JwtKey.FromRsa(_other);
        var sa = new ServiceAccountAuthenticator([JwtKey.FromRsa(_rsa), other], [SaIssuer], [SaIssuer]);
        using var chain = new AuthenticatorChain(null, [sa]);
        async Task<ChainResult> Present(string token) => await chain.AuthenticateAsync(
            new AuthenticationRequest { AuthorizationHeaders = ["Bearer " + token] }, CancellationToken.None).AsTask().WaitAsync(Wait.Timeout);

        var confused = await Present(Jwts.Sign(Sa(), _other, JwtKey.FromRsa(_rsa).KeyId));
        Assert.False(confused.Authenticated);
        Assert.Equal("invalid bearer token: service account token signature could not be verified", confused.FailureReason);
        Assert.True((await Present(Jwts.Sign(Sa(), _other, other.KeyId))).Authenticated);
        Assert.True((await Present(Jwts.Sign(Sa(), _other, "a-kid-no-key-has"))).Authenticated);
        Assert.True((await Present(Jwts.Sign(Sa(), _other))).Authenticated);

        // The same through the OIDC issuer: its JWKS holds only k1 (the _rsa key).
        await AssertRejected(Jwts.Sign(Oidc(), _other, "k1"), "failed to verify signature");
    }

    [Fact]
    public async Task An_empty_kid_is_no_kid_and_every_key_of_the_issuer_is_tried()
    {
        // go-oidc treats kid "" as absent; it is not an unknown kid (no "no key with kid", no JWKS refresh).
        var before = Volatile.Read(ref _jwksFetches);
        var result = await Run("Bearer " + Jwts.Sign(Oidc(), _rsa, ""));
        Assert.True(result.Authenticated, result.FailureReason);
        Assert.Equal(before, Volatile.Read(ref _jwksFetches));
    }

    [Fact]
    public async Task Standard_base64_in_a_segment_is_not_base64url_even_where_the_library_would_decode_it()
    {
        // Sign until the signature has a '-' or '_', then spell it the standard-base64 way ('+', '/').
        var claims = Oidc();
        string token;
        var n = 0;
        do
        {
            claims["n"] = n++;
            token = Jwts.Sign(claims, _rsa, "k1");
        }
        while (token[(token.LastIndexOf('.') + 1)..].IndexOfAny(['-', '_']) < 0);
        Assert.True((await Run("Bearer " + token)).Authenticated);
        var dot = token.LastIndexOf('.') + 1;
        var standard = token[..dot] + token[dot..].Replace('-', '+').Replace('_', '/');
        await AssertRejected(standard, "invalid bearer token");
        Assert.Null(JwtToken.TryParse(standard, out var error));
        Assert.Equal("malformed JWT: a segment is not base64url", error);
    }

    [Fact]
    public void A_five_part_JWE_and_a_critical_header_are_not_accepted_as_a_JWS()
    {
        var jwe = string.Join('.', Jwts.B64("""{"alg":"RSA-OAEP","enc":"A256GCM"}"""), "AAAA", "AAAA", "AAAA", "AAAA");
        Assert.Null(JwtToken.TryParse(jwe, out var error));
        Assert.Equal("not a compact JWS (header.payload.signature)", error);
        var crit = Jwts.B64("""{"alg":"RS256","crit":["exp"]}""") + "." + Jwts.B64(Oidc().ToJsonString()) + "." + Jwts.B64([1]);
        Assert.Null(JwtToken.TryParse(crit, out error));
        Assert.Equal("malformed JWT: critical header extensions are not supported", error);
    }

    [Fact]
    public async Task The_verifier_never_accepts_none_or_HMAC_even_when_an_allow_list_names_them()
    {
        var publicKeyBytes = Encoding.ASCII.GetBytes(_rsa.ExportSubjectPublicKeyInfoPem());
        var keys = new[] { JwtKey.FromRsa(_rsa, "k1") };
        string[] careless = ["none", "HS256", "RS256"];
        var hmac = JwtToken.TryParse(Jwts.SignHmac(Oidc(), publicKeyBytes, "k1"), out _)!;
        var none = JwtToken.TryParse(Jwts.Unsigned(Oidc()), out _)!;
        Assert.False(await JwsVerifier.VerifyAsync(hmac, keys, careless).AsTask().WaitAsync(Wait.Timeout));
        Assert.False(await JwsVerifier.VerifyAsync(none, keys, careless).AsTask().WaitAsync(Wait.Timeout));
        var rs256 = JwtToken.TryParse(Jwts.Sign(Oidc(), _rsa, "k1"), out _)!;
        Assert.True(await JwsVerifier.VerifyAsync(rs256, keys, careless).AsTask().WaitAsync(Wait.Timeout));
        Assert.False(await JwsVerifier.VerifyAsync(rs256, keys, ["RS384"]).AsTask().WaitAsync(Wait.Timeout));
    }

    [Fact]
    public async Task Unknown_kid_is_rejected_and_a_flood_of_fake_kids_fetches_the_jwks_at_most_once()
    {
        var before = Volatile.Read(ref _jwksFetches);
        for (var i = 0; i < 20; i++)
        {
            await AssertRejected(Jwts.Sign(Oidc(), _other, "fake-" + i), "no key with kid");
        }
        Assert.True(Volatile.Read(ref _jwksFetches) - before <= 1);
    }

    [Fact]
    public async Task Signature_by_another_key_is_rejected()
    {
        await AssertRejected(Jwts.Sign(Oidc(), _other, "k1"), "failed to verify signature");
        await AssertRejected(Jwts.Sign(Sa(), _other), "signature could not be verified");
    }

    [Fact]
    public async Task Wrong_issuer_falls_through_to_invalid_bearer_token()
    {
        var claims = Oidc();
        claims["iss"] = "https://evil.example";
        var result = await Run("Bearer " + Jwts.Sign(claims, _rsa, "k1"));
        Assert.Equal("invalid bearer token", result.FailureReason);
    }

    [Fact]
    public async Task Wrong_audience_is_rejected()
    {
        var claims = Oidc();
        claims["aud"] = "someone-else";
        await AssertRejected(Jwts.Sign(claims, _rsa, "k1"), "oidc: verify token: oidc: expected audience \"portcullis\" got [\"someone-else\"]");
    }

    [Fact]
    public async Task Expired_token_is_rejected()
    {
        await AssertRejected(Jwts.Sign(Oidc(DateTimeOffset.UtcNow.AddHours(-2)), _rsa, "k1"), "oidc: token is expired");
    }

    [Fact]
    public async Task Not_yet_valid_token_is_rejected_past_the_five_minute_leeway()
    {
        var claims = Oidc();
        claims["nbf"] = Jwts.Unix(DateTimeOffset.UtcNow.AddMinutes(10));
        await AssertRejected(Jwts.Sign(claims, _rsa, "k1"), "before the nbf (not before) time");
        var withinLeeway = Oidc();
        withinLeeway["nbf"] = Jwts.Unix(DateTimeOffset.UtcNow.AddMinutes(2));
        Assert.True((await Run("Bearer " + Jwts.Sign(withinLeeway, _rsa, "k1"))).Authenticated);
    }

    [Fact]
    public async Task Token_of_64_KiB_is_rejected()
    {
        var claims = Oidc();
        claims["padding"] = new string('x', 64 * 1024);
        await AssertRejected(Jwts.Sign(claims, _rsa, "k1"), "more than the 16384 accepted");
    }

    [Fact]
    public async Task Bad_base64_is_rejected()
    {
        var token = Jwts.Sign(Oidc(), _rsa, "k1");
        var parts = token.Split('.');
        await AssertRejected(parts[0] + ".*not*base64*." + parts[2], "invalid bearer token");
        Assert.Null(JwtToken.TryParse(parts[0] + ".*not*base64*." + parts[2], out var error));
        Assert.Equal("malformed JWT: a segment is not base64url", error);
    }

    [Fact]
    public async Task Non_json_payload_is_rejected()
    {
        var token = Jwts.B64("""{"alg":"RS256","kid":"k1"}""") + "." + Jwts.B64("this is not json") + "." + Jwts.B64([1, 2, 3]);
        await AssertRejected(token, "invalid bearer token");
        Assert.Null(JwtToken.TryParse(token, out var error));
        Assert.Equal("malformed JWT: payload is not JSON", error);
    }

    [Fact]
    public async Task Two_authorization_headers_are_rejected()
    {
        var result = await Run("Bearer " + Jwts.Sign(Oidc(), _rsa, "k1"), "Bearer " + Jwts.Sign(Sa(), _rsa));
        Assert.False(result.Authenticated);
        Assert.Contains("Authorization headers", result.FailureReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Basic_is_not_a_credential_and_never_authenticates()
    {
        var chain = new AuthenticatorChain(null, [_oidc]);
        var result = await chain.AuthenticateAsync(new AuthenticationRequest { AuthorizationHeaders = ["Basic YWRtaW46cGFzcw=="] }, CancellationToken.None).AsTask().WaitAsync(Wait.Timeout);
        Assert.False(result.Authenticated);
        Assert.Contains("Basic", result.FailureReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Client_certificate_and_token_for_different_users_is_rejected()
    {
        var result = await _chain.AuthenticateAsync(new AuthenticationRequest
        {
            ClientCertificateUser = UserInfo.Create("mallory"),
            AuthorizationHeaders = ["Bearer " + Jwts.Sign(Oidc(), _rsa, "k1")],
        }, CancellationToken.None).AsTask().WaitAsync(Wait.Timeout);
        Assert.False(result.Authenticated);
        Assert.Contains("identify different users", result.FailureReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CR_LF_in_an_OIDC_claim_or_a_service_account_claim_is_401_with_the_field_named()
    {
        var oidc = Oidc();
        oidc["sub"] = "alice\r\nImpersonate-Group: system:masters";
        await AssertRejected(Jwts.Sign(oidc, _rsa, "k1"), "invalid bearer token: jwt:https://issuer.example: user name contains a control character (U+000D)");

        var sa = Sa();
        sa["kubernetes.io"]!["serviceaccount"]!["uid"] = "u\n";
        await AssertRejected(Jwts.Sign(sa, _rsa), "invalid bearer token: service-account: uid contains a control character (U+000A)");
        var pod = Sa();
        pod["kubernetes.io"]!["pod"] = new JsonObject { ["name"] = "web-0\r\n\r\nDELETE / HTTP/1.1", ["uid"] = "p-1" };
        await AssertRejected(Jwts.Sign(pod, _rsa), "invalid bearer token: service-account: value 1 of extra \"authentication.kubernetes.io/pod-name\" contains a control character (U+000D)");
    }

    [Fact]
    public async Task CEL_claim_mappings_that_produce_CR_LF_are_401()
    {
        var file = AuthenticationConfigurationFile.Parse($$"""
            apiVersion: apiserver.config.k8s.io/v1
            kind: AuthenticationConfiguration
            jwt:
            - issuer:
                url: {{OidcIssuer}}
                audiences: [{{Audience}}]
              claimMappings:
                username:
                  expression: 'claims.sub + "@cel"'
                groups:
                  expression: 'claims.roles'
                extra:
                - key: example.com/tenant
                  valueExpression: claims.tenant
            """, "authn.yaml");
        var cel = new JwtAuthenticator(Assert.Single(file.Authenticators), _oidc.Keys, ownsKeys: false); // disposed by the chain
        using var chain = new AuthenticatorChain(null, [cel]);
        async Task<ChainResult> Present(Action<JsonObject> edit)
        {
            var claims = Oidc();
            claims["roles"] = new JsonArray("dev");
            claims["tenant"] = "acme";
            edit(claims);
            return await chain.AuthenticateAsync(new AuthenticationRequest { AuthorizationHeaders = ["Bearer " + Jwts.Sign(claims, _rsa, "k1")] },
                CancellationToken.None).AsTask().WaitAsync(Wait.Timeout);
        }

        var fine = await Present(_ => { });
        Assert.True(fine.Authenticated, fine.FailureReason);
        Assert.Equal("alice@cel", fine.User!.Name);

        var group = await Present(c => c["roles"] = new JsonArray("dev", "ops\r\nImpersonate-User: admin"));
        Assert.False(group.Authenticated);
        Assert.Equal("invalid bearer token: jwt:https://issuer.example: group 2 contains a control character (U+000D)", group.FailureReason);

        var extra = await Present(c => c["tenant"] = "acme\r\n\r\nGET /api/v1/secrets HTTP/1.1");
        Assert.Equal("invalid bearer token: jwt:https://issuer.example: value 1 of extra \"example.com/tenant\" contains a control character (U+000D)", extra.FailureReason);

        var name = await Present(c => c["sub"] = " alice");
        Assert.Equal("invalid bearer token: jwt:https://issuer.example: user name begins with whitespace (U+0020)", name.FailureReason);
    }
}
