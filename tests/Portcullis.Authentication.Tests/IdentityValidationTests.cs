using Portcullis.Tls;

namespace Portcullis.Authentication.Tests;

/// <summary>
/// Identities are validated once, in the chain, whatever authenticator produced them: a user name, uid, group or extra
/// with a control character, a lone surrogate or whitespace at an end is a 401 whose reason names the field and the
/// character but never the value.
/// </summary>
public sealed class IdentityValidationTests
{
    private const string HeaderInjection = "eve\r\nImpersonate-Group: system:masters";
    private const string RequestSmuggling = "dev\r\n\r\nDELETE /api/v1/namespaces/kube-system/pods HTTP/1.1\r\nHost: upstream\r\n\r\n";

    private static async Task<ChainResult> Run(AuthenticatorChain chain, AuthenticationRequest request) =>
        await chain.AuthenticateAsync(request, CancellationToken.None).AsTask().WaitAsync(Wait.Timeout);

    [Theory]
    [InlineData("alice", null)]
    [InlineData("system:serviceaccount:ns:sa", null)]
    [InlineData("", null)]
    [InlineData("naïve 名前 \U0001F600 inside spaces", null)]
    [InlineData(HeaderInjection, "contains a control character (U+000D)")]
    [InlineData("a\nb", "contains a control character (U+000A)")]
    [InlineData("a\tb", "contains a control character (U+0009)")]
    [InlineData("\tadmin", "contains a control character (U+0009)")]
    [InlineData("a\0b", "contains a control character (U+0000)")]
    [InlineData("a\u007Fb", "contains a control character (U+007F)")]
    [InlineData("a\u0085b", "contains a control character (U+0085)")]
    [InlineData("a\u009Bb", "contains a control character (U+009B)")]
    [InlineData("admin ", "ends with whitespace (U+0020)")]
    [InlineData(" admin", "begins with whitespace (U+0020)")]
    [InlineData("admin\u00A0", "ends with whitespace (U+00A0)")]
    [InlineData("\u3000admin", "begins with whitespace (U+3000)")]
    public void Check_refuses_control_characters_lone_surrogates_and_whitespace_at_either_end(string value, string? expected)
    {
        Assert.Equal(expected, IdentityValidator.Check(value));
    }

    [Fact]
    public void Check_refuses_lone_surrogates_but_not_pairs()
    {
        // Built at run time: attribute arguments are stored as UTF-8, which would turn a lone surrogate into U+FFFD.
        string Of(params int[] units) => new([.. units.Select(u => (char)u)]);
        Assert.Null(IdentityValidator.Check(Of('a', 0xD83D, 0xDE00, 'b')));
        Assert.Equal("contains a lone surrogate (U+D800)", IdentityValidator.Check(Of('a', 0xD800, 'b')));
        Assert.Equal("contains a lone surrogate (U+D800)", IdentityValidator.Check(Of('a', 0xD800)));
        Assert.Equal("contains a lone surrogate (U+DC00)", IdentityValidator.Check(Of('a', 0xDC00)));
        Assert.Equal("contains a lone surrogate (U+DE00)", IdentityValidator.Check(Of(0xDE00, 0xD83D)));
    }

    [Fact]
    public void Validate_names_the_field_and_never_the_value()
    {
        Assert.Null(IdentityValidator.Validate(UserInfo.Create("alice", ["dev", "system:authenticated"], "u-1",
            new Dictionary<string, IReadOnlyList<string>> { ["example.com/team"] = ["a", "b"] })));
        Assert.Equal("user name contains a control character (U+000D)", IdentityValidator.Validate(UserInfo.Create(HeaderInjection)));
        Assert.Equal("uid ends with whitespace (U+0020)", IdentityValidator.Validate(UserInfo.Create("alice", uid: "secret-uid ")));
        Assert.Equal("group 2 contains a control character (U+000D)", IdentityValidator.Validate(UserInfo.Create("alice", ["ok", RequestSmuggling])));
        Assert.Equal("an extra key contains a control character (U+000A)", IdentityValidator.Validate(UserInfo.Create("alice",
            extra: new Dictionary<string, IReadOnlyList<string>> { ["x\nImpersonate-User"] = ["v"] })));
        var extra = IdentityValidator.Validate(UserInfo.Create("alice",
            extra: new Dictionary<string, IReadOnlyList<string>> { ["example.com/token"] = ["fine", "s3cr3t\r\nX: y"] }));
        Assert.Equal("value 2 of extra \"example.com/token\" contains a control character (U+000D)", extra);
        Assert.DoesNotContain("s3cr3t", extra, StringComparison.Ordinal);
    }

    [Fact]
    public async Task X509_CN_with_CR_LF_verifies_but_is_401_with_the_reason_and_is_never_cached_on_the_connection()
    {
        var ca = TestPki.CreateCa("csr-signer");
        var validator = new ClientCertificateValidator([ca]);
        using var cert = TestPki.CreateClient(ca, [TestPki.CN(HeaderInjection), TestPki.O("dev")]);
        var connection = validator.Validate(cert);
        Assert.Null(connection.Error); // the chain verifies: the CSR signer issued it
        Assert.Equal(HeaderInjection, connection.User!.Name);

        using var chain = new AuthenticatorChain(null, [], new AnonymousPolicy(true, []), validator);
        for (var i = 0; i < 2; i++)
        {
            // Twice on one connection: the refusal is not turned into a cached success by the per-connection fast path.
            var result = await Run(chain, new AuthenticationRequest { ClientCertificate = connection });
            Assert.False(result.Authenticated);
            Assert.True(result.IsError);
            Assert.Null(result.User);
            Assert.Equal("x509: user name contains a control character (U+000D)", result.FailureReason);
        }
        Assert.Null(connection.Accepted);
    }

    [Fact]
    public async Task X509_O_with_a_smuggled_request_is_401()
    {
        var ca = TestPki.CreateCa("csr-signer");
        var validator = new ClientCertificateValidator([ca]);
        using var cert = TestPki.CreateClient(ca, [TestPki.CN("eve"), TestPki.O("dev"), TestPki.O(RequestSmuggling)]);
        using var chain = new AuthenticatorChain(null, [], null, validator);
        var result = await Run(chain, new AuthenticationRequest { ClientCertificate = validator.Validate(cert) });
        Assert.False(result.Authenticated);
        Assert.Equal("x509: group 2 contains a control character (U+000D)", result.FailureReason);
        Assert.DoesNotContain("DELETE", result.FailureReason, StringComparison.Ordinal);

        // With a bearer token as well, the certificate's identity is refused before the two are compared.
        var withToken = await Run(chain, new AuthenticationRequest { ClientCertificate = validator.Validate(cert), AuthorizationHeaders = ["Bearer t"] });
        Assert.Equal("x509: group 2 contains a control character (U+000D)", withToken.FailureReason);
    }

    [Fact]
    public async Task Token_file_rows_with_a_control_character_or_a_trailing_space_are_401()
    {
        var file = TokenFile.Parse("tok-group,jane,u-1,\"dev,q\u0001a\"\ntok-name,\"admin \",u-2\ntok-crlf,\"" + HeaderInjection + "\",u-3\ntok-ok,bob,u-4,dev\n", "tokens.csv");
        using var chain = new AuthenticatorChain(file, [], new AnonymousPolicy(true, []));
        async Task<ChainResult> Bearer(string token) => await Run(chain, new AuthenticationRequest { AuthorizationHeaders = ["Bearer " + token] });

        var group = await Bearer("tok-group");
        Assert.False(group.Authenticated);
        Assert.True(group.IsError);
        Assert.Equal("invalid bearer token: token-file: group 2 contains a control character (U+0001)", group.FailureReason);
        Assert.Equal("invalid bearer token: token-file: user name ends with whitespace (U+0020)", (await Bearer("tok-name")).FailureReason);
        Assert.Equal("invalid bearer token: token-file: user name contains a control character (U+000D)", (await Bearer("tok-crlf")).FailureReason);
        // The other rows of the same file still work.
        Assert.Equal("bob", (await Bearer("tok-ok")).User!.Name);
    }

    [Fact]
    public async Task A_token_authenticator_that_vouches_for_a_bad_identity_refuses_the_token_ends_the_union_and_is_cached_as_a_rejection()
    {
        var bad = new ChainTests.FixedAuthenticator("webhook", TokenResult.Success(UserInfo.Create("alice", ["dev\r\nImpersonate-Group: system:masters"]), TimeSpan.FromMinutes(1)));
        var later = new ChainTests.FixedAuthenticator("jwt:later", TokenResult.Success(UserInfo.Create("mallory"), TimeSpan.FromMinutes(1)));
        using var chain = new AuthenticatorChain(null, [bad, later]);
        for (var i = 0; i < 3; i++)
        {
            var result = await Run(chain, new AuthenticationRequest { AuthorizationHeaders = ["Bearer some-token"] });
            Assert.False(result.Authenticated);
            Assert.Equal("invalid bearer token: webhook: group 1 contains a control character (U+000D)", result.FailureReason);
        }
        Assert.Equal(1, bad.Calls); // then the negative cache answered
        Assert.Equal(0, later.Calls);
    }
}
