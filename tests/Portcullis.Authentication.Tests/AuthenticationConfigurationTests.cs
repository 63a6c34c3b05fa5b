using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Portcullis.Authentication.Oidc;
using Portcullis.Configuration;

namespace Portcullis.Authentication.Tests;

public sealed class AuthenticationConfigurationTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", name);

    private static JwtAuthenticator Offline(JwtAuthenticatorSpec spec) =>
        new(spec, new OidcKeySet(new Uri("https://127.0.0.1:1/unused"), spec.IssuerUrl, new HttpClient()));

    private static (UserInfo? User, string? Error) Map(string config, string payload)
    {
        var file = AuthenticationConfigurationFile.Load(Fixture(config));
        using var authenticator = Offline(Assert.Single(file.Authenticators));
        using var claims = JsonDocument.Parse(File.ReadAllText(Fixture(payload)));
        return authenticator.MapClaims(claims.RootElement);
    }

    private static void AssertUser(string expectedFixture, UserInfo actual)
    {
        using var expected = JsonDocument.Parse(File.ReadAllText(Fixture(expectedFixture)));
        var e = expected.RootElement;
        Assert.Equal(e.GetProperty("username").GetString(), actual.Name);
        Assert.Equal(e.GetProperty("uid").GetString(), actual.Uid);
        Assert.Equal(e.GetProperty("groups").EnumerateArray().Select(g => g.GetString()!), actual.Groups);
        var extra = e.GetProperty("extra").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(v => v.GetString()!).ToList());
        Assert.Equal(extra.Keys.Order(), actual.Extra.Keys.Order());
        foreach (var (key, values) in extra)
        {
            Assert.Equal(values, actual.Extra[key]);
        }
    }

    [Fact]
    public void Valid_token_example_gives_the_documented_user_info()
    {
        var (user, error) = Map("k8s-website-authentication-config-valid-token.yaml", "k8s-website-jwt-payload-valid-token.json");
        Assert.Null(error);
        AssertUser("k8s-website-userinfo-valid-token.json", user!);
    }

    [Fact]
    public void Fails_claim_validation_example_is_rejected_because_hd_is_missing()
    {
        var (user, error) = Map("k8s-website-authentication-config-fails-claim-validation.yaml", "k8s-website-jwt-payload-valid-token.json");
        Assert.Null(user);
        Assert.Equal("oidc: expression 'claims.hd == \"example.com\"' resulted in error: no such key: hd", error);
    }

    [Fact]
    public void Fails_user_validation_example_is_rejected_by_the_user_rule()
    {
        var (user, error) = Map("k8s-website-authentication-config-fails-user-validation.yaml", "k8s-website-jwt-payload-fails-user-validation.json");
        Assert.Null(user);
        Assert.Equal("oidc: error evaluating user info validation rule: validation expression '!user.username.startsWith('system:')' failed: username cannot used reserved system: prefix", error);
        // The user it rejected is the one the documentation shows.
        var file = AuthenticationConfigurationFile.Parse(File.ReadAllText(Fixture("k8s-website-authentication-config-fails-user-validation.yaml"))
            .Replace("  userValidationRules:\n  - expression: \"!user.username.startsWith('system:')\"", "  userValidationRules:\n  - expression: \"true\"", StringComparison.Ordinal), "x.yaml");
        using var a = Offline(file.Authenticators[0]);
        using var claims = JsonDocument.Parse(File.ReadAllText(Fixture("k8s-website-jwt-payload-fails-user-validation.json")));
        AssertUser("k8s-website-userinfo-fails-user-validation.json", a.MapClaims(claims.RootElement).User!);
    }

    [Fact]
    public void Full_commented_example_is_refused_for_its_placeholders_and_both_claim_and_expression_but_its_CEL_compiles()
    {
        var ex = Assert.Throws<ConfigurationException>(() => AuthenticationConfigurationFile.Load(Fixture("k8s-website-authentication-config-example.yaml")));
        var fields = ex.Errors.Select(e => e.Field).ToList();
        Assert.Contains("jwt[0].issuer.certificateAuthority", fields);
        Assert.Contains("jwt[0].issuer.egressSelectorType", fields);
        Assert.Contains("jwt[0].claimMappings.username", fields);
        Assert.Contains("jwt[0].claimMappings.groups", fields);
        Assert.Contains("jwt[0].claimMappings.uid", fields);
        Assert.DoesNotContain(ex.Errors, e => e.Message.Contains("not supported", StringComparison.Ordinal) || e.Message.Contains("does not compile", StringComparison.Ordinal));
        Assert.All(ex.Errors, e => Assert.True(e.Line > 0, e.ToString()));
    }

    [Theory]
    [InlineData("claims.?email.orValue('')", "optional field selection")]
    [InlineData("claims.name.format([1])", "function format() is not supported")]
    [InlineData("claims.sub + ", "does not compile")]
    public void Unsupported_or_broken_CEL_is_refused_at_load_naming_the_expression(string expression, string why)
    {
        var yaml = $"""
            apiVersion: apiserver.config.k8s.io/v1beta1
            kind: AuthenticationConfiguration
            jwt:
            - issuer:
                url: https://issuer.example
                audiences: [a]
              claimMappings:
                username:
                  expression: "{expression}"
            """;
        var ex = Assert.Throws<ConfigurationException>(() => AuthenticationConfigurationFile.Parse(yaml, "authn.yaml"));
        var error = Assert.Single(ex.Errors);
        Assert.Equal("jwt[0].claimMappings.username.expression", error.Field);
        Assert.Contains(expression, error.Message, StringComparison.Ordinal);
        Assert.Contains(why, error.Message, StringComparison.Ordinal);
        Assert.Equal(9, error.Line);
    }

    [Theory]
    [InlineData("apiserver.config.k8s.io/v1")]
    [InlineData("apiserver.config.k8s.io/v1beta1")]
    [InlineData("apiserver.config.k8s.io/v1alpha1")]
    public void All_three_versions_load_and_a_fourth_does_not(string apiVersion)
    {
        var yaml = $"""
            apiVersion: {apiVersion}
            kind: AuthenticationConfiguration
            jwt:
            - issuer:
                url: https://issuer.example
                audiences: [a, b]
                audienceMatchPolicy: MatchAny
              claimValidationRules:
              - claim: hd
                requiredValue: example.com
              claimMappings:
                username:
                  claim: email
                  prefix: ""
                groups:
                  claim: groups
                  prefix: "oidc:"
                uid:
                  claim: sub
                extra:
                - key: example.com/team
                  valueExpression: "claims.groups.filter(g, g.startsWith('team-')).map(g, g.split('-')[1])"
            """;
        var spec = Assert.Single(AuthenticationConfigurationFile.Parse(yaml, "authn.yaml").Authenticators);
        using var a = Offline(spec);
        var claims = JsonDocument.Parse("""{"hd":"example.com","email":"jo@example.com","email_verified":true,"groups":["team-red","ops"],"sub":"123"}""");
        var (user, error) = a.MapClaims(claims.RootElement);
        Assert.Null(error);
        Assert.Equal("jo@example.com", user!.Name);
        Assert.Equal(["oidc:team-red", "oidc:ops"], user.Groups);
        Assert.Equal("123", user.Uid);
        Assert.Equal(["red"], user.Extra["example.com/team"]);
        var unverified = JsonDocument.Parse("""{"hd":"example.com","email":"jo@example.com","email_verified":false,"sub":"1"}""");
        Assert.Equal("oidc: email not verified", a.MapClaims(unverified.RootElement).Error);
        var wrongHd = JsonDocument.Parse("""{"hd":"evil.com","email":"jo@example.com","sub":"1"}""");
        Assert.StartsWith("oidc: required claim hd value does not match", a.MapClaims(wrongHd.RootElement).Error, StringComparison.Ordinal);

        Assert.Throws<ConfigurationException>(() => AuthenticationConfigurationFile.Parse(yaml.Replace(apiVersion, "apiserver.config.k8s.io/v2", StringComparison.Ordinal), "authn.yaml"));
    }

    [Fact]
    public void Structural_rules_are_enforced_with_every_error_reported()
    {
        var yaml = """
            apiVersion: apiserver.config.k8s.io/v1
            kind: AuthenticationConfiguration
            jwt:
            - issuer:
                url: http://insecure.example
                audiences: [a, b]
              claimMappings:
                username:
                  claim: sub
                extra:
                - key: kubernetes.io/foo
                  valueExpression: claims.x
                - key: Example.com/Upper
                  valueExpression: claims.x
            - issuer:
                url: https://sa.example
                audiences: []
              claimMappings:
                username:
                  expression: claims.email
            """;
        var ex = Assert.Throws<ConfigurationException>(() => AuthenticationConfigurationFile.Parse(yaml, "authn.yaml", ["https://sa.example"]));
        var fields = ex.Errors.Select(e => e.Field).ToHashSet();
        Assert.Contains("jwt[0].issuer.url", fields);
        Assert.Contains("jwt[0].issuer.audienceMatchPolicy", fields);
        Assert.Contains("jwt[0].claimMappings.username.prefix", fields);
        Assert.Contains("jwt[0].claimMappings.extra[0].key", fields);
        Assert.Contains("jwt[0].claimMappings.extra[1].key", fields);
        Assert.Contains("jwt[1].issuer.url", fields); // conflicts with a service-account issuer
        Assert.Contains("jwt[1].issuer.audiences", fields);
        Assert.Contains("jwt[1].claimMappings.username.expression", fields); // claims.email without email_verified
    }

    [Fact]
    public async Task Anonymous_example_allows_only_its_three_paths_through_the_chain_built_from_gateway_configuration()
    {
        var config = new GatewayConfiguration { BaseDirectory = Path.Combine(AppContext.BaseDirectory, "fixtures"), SourcePath = "portcullis.yaml" };
        config.Authentication.AuthenticationConfigFile = "k8s-website-authentication-config-anonymous.yaml";
        using var chain = AuthenticatorChain.Create(config);
        foreach (var path in new[] { "/livez", "/readyz", "/healthz" })
        {
            var ok = await chain.AuthenticateAsync(new AuthenticationRequest { Path = path }, CancellationToken.None).AsTask().WaitAsync(Wait.Timeout);
            Assert.True(ok.IsAnonymous, path);
        }
        var denied = await chain.AuthenticateAsync(new AuthenticationRequest { Path = "/api/v1/secrets" }, CancellationToken.None).AsTask().WaitAsync(Wait.Timeout);
        Assert.False(denied.Authenticated);

        config.Authentication.Anonymous.Enabled = true;
        var ex = Assert.Throws<ConfigurationException>(() => AuthenticatorChain.Create(config));
        Assert.Contains(ex.Errors, e => e.Field == "authentication.anonymous");
    }

    [Fact]
    public async Task Valid_token_example_end_to_end_with_a_signed_token_and_a_local_jwks()
    {
        // The documented payload is expired (2023) and its aud ("kubernetes") is not the example's audience ("my-app"):
        // the end-to-end check re-times it and uses aud my-app; the mapping itself is checked unchanged above.
        var rsa = TestKeys.Rsa;
        await using var jwks = await LoopbackServer.StartAsync(async context =>
        {
            if (context.Request.Path == "/jwks")
            {
                await context.Response.WriteAsync(Jwts.JwksJson(("doc", rsa)));
                return;
            }
            await context.Response.WriteAsync($$"""{"issuer":"https://example.com","jwks_uri":"http://{{context.Request.Host}}/jwks"}""");
        });
        var spec = Assert.Single(AuthenticationConfigurationFile.Load(Fixture("k8s-website-authentication-config-valid-token.yaml")).Authenticators);
        var keys = new OidcKeySet(new Uri(jwks.Url, "/.well-known/openid-configuration"), "https://example.com", new HttpClient(), new OidcKeySetOptions { AllowHttpLoopbackIssuer = true });
        keys.Start();
        await keys.Ready.WaitAsync(Wait.Timeout);
        using var chain = new AuthenticatorChain(null, [new JwtAuthenticator(spec, keys)]);
        var payload = Jwts.Parse(File.ReadAllText(Fixture("k8s-website-jwt-payload-valid-token.json")));
        var now = DateTimeOffset.UtcNow;
        payload["aud"] = "my-app";
        payload["iat"] = Jwts.Unix(now);
        payload["nbf"] = Jwts.Unix(now);
        payload["exp"] = Jwts.Unix(now.AddHours(1));
        var result = await chain.AuthenticateAsync(new AuthenticationRequest { AuthorizationHeaders = ["Bearer " + Jwts.Sign(payload, rsa, "doc")] }, CancellationToken.None).AsTask().WaitAsync(Wait.Timeout);
        Assert.True(result.Authenticated, result.FailureReason);
        Assert.Equal("foo:external-user", result.User!.Name);
        Assert.Equal(["user", "admin", "system:authenticated"], result.User.Groups);
        Assert.Equal("jwt:https://example.com", result.Authenticator);
    }

    [Fact]
    public async Task Oidc_fields_of_the_gateway_configuration_decide_user_groups_and_acceptance()
    {
        // authentication.oidc.* as the gateway maps them (JwtAuthenticatorSpec.FromFlags, as AuthenticatorChain does):
        // clientID is the audience, usernameClaim/usernamePrefix and groupsClaim/groupsPrefix make the user,
        // requiredClaims must match, signingAlgs limits the algorithms.
        var rsa = TestKeys.Rsa;
        await using var jwks = await LoopbackServer.StartAsync(async context =>
        {
            if (context.Request.Path == "/jwks")
            {
                await context.Response.WriteAsync(Jwts.JwksJson(("k1", rsa)));
                return;
            }
            await context.Response.WriteAsync($$"""{"issuer":"https://example.com","jwks_uri":"http://{{context.Request.Host}}/jwks"}""");
        });
        var oidc = new OidcConfiguration
        {
            IssuerURL = "https://example.com",
            ClientID = "kubernetes",
            UsernameClaim = "preferred_username",
            UsernamePrefix = "corp:",
            GroupsClaim = "roles",
            GroupsPrefix = "r:",
            RequiredClaims = { ["tenant"] = "blue" },
        };
        async Task<ChainResult> Authenticate(JwtAuthenticatorSpec spec, Action<JsonObject> edit)
        {
            var keys = new OidcKeySet(new Uri(jwks.Url, "/.well-known/openid-configuration"), "https://example.com", new HttpClient(), new OidcKeySetOptions { AllowHttpLoopbackIssuer = true });
            keys.Start();
            await keys.Ready.WaitAsync(Wait.Timeout);
            using var chain = new AuthenticatorChain(null, [new JwtAuthenticator(spec, keys)]);
            var payload = Jwts.Claims("https://example.com", "kubernetes", DateTimeOffset.UtcNow);
            payload["preferred_username"] = "ann";
            payload["roles"] = new JsonArray("dev", "ops");
            payload["tenant"] = "blue";
            edit(payload);
            return await chain.AuthenticateAsync(new AuthenticationRequest { AuthorizationHeaders = ["Bearer " + Jwts.Sign(payload, rsa, "k1")] }, CancellationToken.None).AsTask().WaitAsync(Wait.Timeout);
        }
        var spec = JwtAuthenticatorSpec.FromFlags(oidc, null);

        var ann = await Authenticate(spec, _ => { });
        Assert.True(ann.Authenticated, ann.FailureReason);
        Assert.Equal("corp:ann", ann.User!.Name);
        Assert.Equal(["r:dev", "r:ops", "system:authenticated"], ann.User.Groups);
        Assert.False((await Authenticate(spec, p => p["tenant"] = "red")).Authenticated); // requiredClaims
        Assert.False((await Authenticate(spec, p => p["aud"] = "other")).Authenticated); // clientID
        oidc.SigningAlgs = ["ES256"];
        var rs256 = await Authenticate(JwtAuthenticatorSpec.FromFlags(oidc, null), _ => { }); // signingAlgs
        Assert.False(rs256.Authenticated);
        Assert.Contains("unsupported algorithm", rs256.FailureReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Compiled_expressions_evaluate_correctly_from_many_threads()
    {
        var expression = CelExpression.Compile("claims.name + ':' + string(claims.n) + ':' + claims.roles.split(',').filter(r, r != 'x').map(r, 'g-' + r)[0]");
        var tasks = Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 500; i++)
            {
                var claims = new Dictionary<string, object?> { ["name"] = "u" + t, ["n"] = (long)i, ["roles"] = "x,r" + i };
                var value = expression.EvaluateString(new Dictionary<string, object?> { ["claims"] = claims });
                Assert.Equal($"u{t}:{i}:g-r{i}", value);
            }
        }));
        await Task.WhenAll(tasks).WaitAsync(Wait.Timeout);
    }
}
