using Portcullis.Authentication.Cache;

namespace Portcullis.Authentication.Tests;

/// <summary>
/// The first-level lookup that spares a remembered token's SHA-256: a hash collision must never hand one token another
/// token's digest (and so another token's cached identity).
/// </summary>
public sealed class TokenDigestMemoTests
{
    private static readonly TokenDigest Planted = new(1, 2, 3, 4); // not the SHA-256 of anything a test presents

    [Fact]
    public void Remembered_token_is_answered_from_the_table()
    {
        var memo = new TokenDigestMemo();
        memo.Remember("token-a", Planted);
        Assert.Equal(Planted, memo.Of("token-a")); // the table answered: SHA-256 would not give Planted
        Assert.Equal(TokenDigest.Of("token-b"), memo.Of("token-b"));
    }

    [Theory]
    [InlineData("token-b")]            // same length, last character differs
    [InlineData("uoken-a")]            // same length, first character differs
    [InlineData("token-")]             // a prefix
    [InlineData("token-aa")]           // an extension
    [InlineData("")]
    [InlineData("a-much-longer-token-that-spans-several-64-bit-words-of-the-comparison")]
    public void Colliding_hash_never_gives_another_tokens_digest(string other)
    {
        // Every token hashes to the same value: same slot, same stored hash. Only the full comparison can tell them apart.
        var memo = new TokenDigestMemo(_ => 42);
        memo.Remember("token-a", Planted);

        Assert.Equal(TokenDigest.Of(other), memo.Of(other));
        Assert.NotEqual(Planted, memo.Of(other));
        Assert.Equal(Planted, memo.Of("token-a"));
    }

    [Fact]
    public void A_colliding_token_that_authenticates_replaces_the_slot_and_each_keeps_its_own_digest()
    {
        var memo = new TokenDigestMemo(_ => 7);
        memo.Remember("token-a", Planted);
        memo.Remember("token-b", TokenDigest.Of("token-b"));

        Assert.Equal(TokenDigest.Of("token-a"), memo.Of("token-a"));
        Assert.Equal(TokenDigest.Of("token-b"), memo.Of("token-b"));
    }

    [Fact]
    public void Tokens_over_the_size_limit_are_never_kept()
    {
        var memo = new TokenDigestMemo(_ => 0);
        var big = new string('x', TokenDigestMemo.MaxTokenChars + 1);
        memo.Remember(big, Planted);
        Assert.Equal(TokenDigest.Of(big), memo.Of(big));
    }

    [Fact]
    public void Clear_forgets_every_token()
    {
        var memo = new TokenDigestMemo();
        memo.Remember("token-a", Planted);
        memo.Clear();
        Assert.Equal(TokenDigest.Of("token-a"), memo.Of("token-a"));
    }

    [Theory]
    [InlineData("", "", true)]
    [InlineData("abc", "abc", true)]
    [InlineData("abcdefgh-ijklmnop", "abcdefgh-ijklmnop", true)]
    [InlineData("abcdefgh-ijklmnop", "abcdefgh-ijklmnoq", false)]
    [InlineData("abcdefgh-ijklmnop", "bbcdefgh-ijklmnop", false)]
    [InlineData("abcd", "abcde", false)]
    [InlineData("é", "e", false)]
    public void Fixed_time_comparison_is_exact(string a, string b, bool equal) =>
        Assert.Equal(equal, TokenDigestMemo.FixedTimeEquals(a, b));

    [Fact]
    public async Task Through_the_chain_a_remembered_token_still_authenticates_and_a_near_copy_does_not()
    {
        using var key = System.Security.Cryptography.RSA.Create(2048);
        const string issuer = "https://issuer.example";
        var serviceAccounts = new Portcullis.Authentication.ServiceAccounts.ServiceAccountAuthenticator(
            [Portcullis.Authentication.Tokens.JwtKey.FromRsa(key)], [issuer], [issuer]);
        using var chain = new AuthenticatorChain(null, [serviceAccounts]);
        var token = Jwts.Sign(ServiceAccountClaims(issuer), key, Portcullis.Authentication.Tokens.JwtKey.FromRsa(key).KeyId);

        for (var i = 0; i < 3; i++) // first: validated and remembered; then: the table and the cache
        {
            var accepted = await chain.AuthenticateAsync(new AuthenticationRequest { AuthorizationHeaders = ["Bearer " + token] }, CancellationToken.None).AsTask().WaitAsync(Wait.Timeout);
            Assert.True(accepted.Authenticated, accepted.FailureReason);
            Assert.Equal(TokenDigest.Of(token), accepted.TokenDigest);
        }
        var tampered = token[..^2] + (token[^2] == 'A' ? 'B' : 'A') + token[^1];
        var refused = await chain.AuthenticateAsync(new AuthenticationRequest { AuthorizationHeaders = ["Bearer " + tampered] }, CancellationToken.None).AsTask().WaitAsync(Wait.Timeout);
        Assert.False(refused.Authenticated);
        Assert.Equal(TokenDigest.Of(tampered), refused.TokenDigest);
    }

    private static System.Text.Json.Nodes.JsonObject ServiceAccountClaims(string issuer)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        return new System.Text.Json.Nodes.JsonObject
        {
            ["iss"] = issuer,
            ["aud"] = new System.Text.Json.Nodes.JsonArray(issuer),
            ["sub"] = "system:serviceaccount:team-a:builder",
            ["iat"] = now,
            ["nbf"] = now,
            ["exp"] = now + 600,
            ["kubernetes.io"] = new System.Text.Json.Nodes.JsonObject
            {
                ["namespace"] = "team-a",
                ["serviceaccount"] = new System.Text.Json.Nodes.JsonObject { ["name"] = "builder", ["uid"] = "u-1" },
            },
        };
    }
}
