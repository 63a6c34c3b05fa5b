using System.Buffers.Text;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using Portcullis.Authentication.Cache;
using Portcullis.Tls;

namespace Portcullis.Authentication.Tests;

public sealed class ChainTests
{
    private static readonly TokenFile Tokens = TokenFile.Parse("""
        secret-alice,alice,uid-1,"dev,ops"
        secret-bob,bob,uid-2
        """, "tokens.csv");

    private static AuthenticatorChain Chain(AnonymousPolicy? anonymous = null, params ITokenAuthenticator[] authenticators) =>
        new(Tokens, authenticators, anonymous);

    private static AuthenticationRequest Bearer(string value, string path = "/api") =>
        new() { AuthorizationHeaders = [value], Path = path };

    private static async Task<ChainResult> Run(AuthenticatorChain chain, AuthenticationRequest request) =>
        await chain.AuthenticateAsync(request, CancellationToken.None).AsTask().WaitAsync(Wait.Timeout);

    [Fact]
    public async Task Token_file_user_gets_system_authenticated_and_the_authenticator_name()
    {
        var result = await Run(Chain(), Bearer("Bearer secret-alice"));
        Assert.True(result.Authenticated);
        Assert.Equal("alice", result.User!.Name);
        Assert.Equal("uid-1", result.User.Uid);
        Assert.Equal(["dev", "ops", "system:authenticated"], result.User.Groups);
        Assert.Equal("token-file", result.Authenticator);
        Assert.Equal(TokenDigest.Of("secret-alice"), result.TokenDigest);
    }

    [Theory]
    [InlineData("bearer secret-bob")]
    [InlineData("BEARER secret-bob")]
    [InlineData("  Bearer secret-bob  ")]
    [InlineData("Bearer secret-bob trailing-part-ignored")]
    public async Task Bearer_scheme_is_case_insensitive_and_split_on_single_spaces(string header)
    {
        var result = await Run(Chain(), Bearer(header));
        Assert.True(result.Authenticated);
        Assert.Equal("bob", result.User!.Name);
    }

    [Fact]
    public async Task Extra_space_before_the_token_is_ignored_with_the_kube_apiserver_warning()
    {
        var result = await Run(Chain(), Bearer("Bearer  secret-bob"));
        Assert.False(result.Authenticated);
        Assert.False(result.IsError);
        Assert.Equal([AuthenticatorChain.ExtraSpaceWarning], result.Warnings);
    }

    [Fact]
    public async Task Unknown_token_is_401_even_with_anonymous_enabled()
    {
        var result = await Run(Chain(new AnonymousPolicy(true, [])), Bearer("Bearer nope"));
        Assert.False(result.Authenticated);
        Assert.True(result.IsError);
        Assert.Equal("invalid bearer token", result.FailureReason);
    }

    [Fact]
    public async Task Two_authorization_headers_are_401_even_if_both_are_valid()
    {
        var result = await Run(Chain(new AnonymousPolicy(true, [])),
            new AuthenticationRequest { AuthorizationHeaders = ["Bearer secret-alice", "Bearer secret-bob"] });
        Assert.False(result.Authenticated);
        Assert.Contains("2 Authorization headers", result.FailureReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Basic_authorization_is_no_credential_so_401_without_anonymous()
    {
        var basic = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("admin:secret-alice"));
        var result = await Run(Chain(), Bearer(basic));
        Assert.False(result.Authenticated);
        Assert.False(result.IsError);
        Assert.Contains("Basic", result.FailureReason, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", result.FailureReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Basic_authorization_with_anonymous_enabled_is_anonymous_as_in_kube_apiserver()
    {
        var result = await Run(Chain(new AnonymousPolicy(true, [])), Bearer("Basic YWRtaW46YWRtaW4="));
        Assert.True(result.IsAnonymous);
        Assert.DoesNotContain(UserInfo.AuthenticatedGroup, result.User!.Groups);
    }

    [Fact]
    public async Task No_credentials_is_anonymous_only_when_enabled_and_only_on_listed_paths()
    {
        var policy = new AnonymousPolicy(true, ["/healthz", "/livez"]);
        var healthz = await Run(Chain(policy), new AuthenticationRequest { Path = "/healthz" });
        Assert.True(healthz.IsAnonymous);
        Assert.Equal(UserInfo.AnonymousUser, healthz.User);
        var pods = await Run(Chain(policy), new AuthenticationRequest { Path = "/api/v1/pods" });
        Assert.False(pods.Authenticated);
        Assert.Equal("no credentials", pods.FailureReason);
        var subPath = await Run(Chain(policy), new AuthenticationRequest { Path = "/healthz/etcd" });
        Assert.False(subPath.Authenticated);
        var disabled = await Run(Chain(), new AuthenticationRequest { Path = "/healthz" });
        Assert.False(disabled.Authenticated);
    }

    [Fact]
    public async Task Client_certificate_user_wins_and_a_failed_certificate_is_401_with_anonymous_on()
    {
        var cert = UserInfo.Create("carol", ["team"]);
        var ok = await Run(Chain(), new AuthenticationRequest { ClientCertificateUser = cert });
        Assert.Equal("x509", ok.Authenticator);
        Assert.Equal(["team", "system:authenticated"], ok.User!.Groups);

        var bad = await Run(Chain(new AnonymousPolicy(true, [])),
            new AuthenticationRequest { ClientCertificateError = "verifying certificate SN=1 failed: x509: certificate signed by unknown authority" });
        Assert.False(bad.Authenticated);
        Assert.True(bad.IsError);
        Assert.StartsWith("verifying certificate", bad.FailureReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Failed_certificate_but_valid_token_authenticates_by_the_token()
    {
        var result = await Run(Chain(), new AuthenticationRequest { ClientCertificateError = "verifying certificate failed", AuthorizationHeaders = ["Bearer secret-bob"] });
        Assert.True(result.Authenticated);
        Assert.Equal("bob", result.User!.Name);
    }

    [Fact]
    public async Task Client_certificate_and_token_for_different_users_is_401()
    {
        var result = await Run(Chain(), new AuthenticationRequest
        {
            ClientCertificateUser = UserInfo.Create("alice"),
            AuthorizationHeaders = ["Bearer secret-bob"],
        });
        Assert.False(result.Authenticated);
        Assert.Contains("different users", result.FailureReason, StringComparison.Ordinal);
        Assert.DoesNotContain("secret-bob", result.FailureReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Client_certificate_and_token_for_the_same_user_is_the_certificate_user()
    {
        var result = await Run(Chain(), new AuthenticationRequest
        {
            ClientCertificateUser = UserInfo.Create("alice", ["cert-group"]),
            AuthorizationHeaders = ["Bearer secret-alice"],
        });
        Assert.True(result.Authenticated);
        Assert.Equal("x509", result.Authenticator);
        Assert.Equal(["cert-group", "system:authenticated"], result.User!.Groups);
    }

    [Fact]
    public async Task Client_certificate_with_an_invalid_token_is_401()
    {
        var result = await Run(Chain(), new AuthenticationRequest { ClientCertificateUser = UserInfo.Create("alice"), AuthorizationHeaders = ["Bearer wrong"] });
        Assert.False(result.Authenticated);
        Assert.Contains("invalid bearer token", result.FailureReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cached_token_and_connection_results_are_shared_between_requests()
    {
        var ok = new FixedAuthenticator("jwt:x", TokenResult.Success(UserInfo.Create("gina"), TimeSpan.FromMinutes(1)));
        var chain = Chain(null, ok);
        var first = await Run(chain, Bearer("Bearer cached-token"));
        var second = await Run(chain, Bearer("Bearer cached-token"));
        var third = await Run(chain, Bearer("Bearer cached-token"));
        Assert.Equal("gina", first.User!.Name);
        Assert.Same(second, third);
        Assert.Equal(1, ok.Calls); // the second and third requests were answered by the cache

        var connection = new ClientCertificateResult(UserInfo.Create("hank").WithAuthenticatedGroup(), null);
        var a = await Run(chain, new AuthenticationRequest { ClientCertificate = connection });
        var b = await Run(chain, new AuthenticationRequest { ClientCertificate = connection });
        Assert.Same(a, b);
        Assert.Equal(["system:authenticated"], a.User!.Groups);
        Assert.Same(connection.Accepted, a);
        Assert.Equal("x509", a.Authenticator);
    }

    private static string Protocol(string token) => AuthenticatorChain.BearerWebSocketProtocolPrefix + Base64Url.EncodeToString(Encoding.UTF8.GetBytes(token));

    [Fact]
    public async Task WebSocket_subprotocol_token_authenticates_upgrades_and_is_stripped()
    {
        var result = await Run(Chain(), new AuthenticationRequest
        {
            IsUpgrade = true,
            WebSocketProtocols = [Protocol("secret-alice") + ", v5.channel.k8s.io", "v4.channel.k8s.io"],
        });
        Assert.True(result.Authenticated);
        Assert.Equal("alice", result.User!.Name);
        Assert.Equal("v5.channel.k8s.io, v4.channel.k8s.io", result.RewrittenWebSocketProtocol);
    }

    [Fact]
    public async Task WebSocket_token_is_ignored_on_non_upgrade_requests()
    {
        var result = await Run(Chain(), new AuthenticationRequest { WebSocketProtocols = [Protocol("secret-alice") + ", v5.channel.k8s.io"] });
        Assert.False(result.Authenticated);
        Assert.Null(result.RewrittenWebSocketProtocol);
    }

    [Theory]
    [InlineData("only-token", "missing additional subprotocol")]
    [InlineData("two-tokens", "multiple base64.bearer.authorization tokens specified")]
    [InlineData("bad-encoding", "invalid base64.bearer.authorization token encoding")]
    public async Task Bad_WebSocket_tokens_are_401_with_kube_apiserver_errors(string kind, string error)
    {
        string[] protocols = kind switch
        {
            "only-token" => [Protocol("secret-alice")],
            "two-tokens" => [Protocol("secret-alice") + ", " + Protocol("secret-bob") + ", v5.channel.k8s.io"],
            _ => [AuthenticatorChain.BearerWebSocketProtocolPrefix + "!!!, v5.channel.k8s.io"],
        };
        var result = await Run(Chain(new AnonymousPolicy(true, [])), new AuthenticationRequest { IsUpgrade = true, WebSocketProtocols = protocols });
        Assert.False(result.Authenticated);
        Assert.Equal(error, result.FailureReason);
        Assert.DoesNotContain("base64url.bearer", result.RewrittenWebSocketProtocol ?? "", StringComparison.Ordinal);
    }

    [Fact]
    public async Task Oversized_token_is_refused_before_any_authenticator_runs()
    {
        var counting = new CountingAuthenticator();
        var result = await Run(Chain(null, counting), Bearer("Bearer " + new string('a', 64 * 1024)));
        Assert.False(result.Authenticated);
        Assert.Contains("more than the 16384 accepted", result.FailureReason, StringComparison.Ordinal);
        Assert.Equal(0, counting.Calls);
    }

    [Fact]
    public async Task Token_union_tries_in_order_aggregates_errors_and_first_success_wins()
    {
        var failing = new FixedAuthenticator("a", TokenResult.Fail("a says no", TimeSpan.Zero));
        var none = new FixedAuthenticator("b", TokenResult.NoResult(TimeSpan.MaxValue));
        var ok = new FixedAuthenticator("c", TokenResult.Success(UserInfo.Create("dave"), TimeSpan.FromMinutes(1)));
        var after = new CountingAuthenticator();
        var result = await Run(Chain(null, failing, none, ok, after), Bearer("Bearer t1"));
        Assert.True(result.Authenticated);
        Assert.Equal("c", result.Authenticator);
        Assert.Equal(0, after.Calls);

        var failing2 = new FixedAuthenticator("d", TokenResult.Fail("d says no", TimeSpan.Zero));
        var rejected = await Run(Chain(null, failing, failing2), Bearer("Bearer t2"));
        Assert.Equal("invalid bearer token: [a says no, d says no]", rejected.FailureReason);
    }

    [Fact]
    public async Task Results_carry_what_the_gateway_counts_success_failure_error_and_the_deciding_authenticator()
    {
        // The gateway's authentication stage measures each attempt once from these fields
        // (authentication_attempts{result}, portcullis_authentication_attempts_total{authenticator,result}).
        var chain = Chain(new AnonymousPolicy(true, ["/healthz"]));
        var token = await Run(chain, Bearer("Bearer secret-alice"));
        var wrong = await Run(chain, Bearer("Bearer wrong"));
        var anonymous = await Run(chain, new AuthenticationRequest { Path = "/healthz" });
        var none = await Run(chain, new AuthenticationRequest { Path = "/api" });
        Assert.Equal((true, false, "token-file"), (token.Authenticated, token.IsError, token.Authenticator));
        Assert.Equal((false, true, ""), (wrong.Authenticated, wrong.IsError, wrong.Authenticator));
        Assert.Equal((true, false, "anonymous"), (anonymous.Authenticated, anonymous.IsError, anonymous.Authenticator));
        Assert.Equal((false, false, ""), (none.Authenticated, none.IsError, none.Authenticator));
    }

    [Fact]
    public async Task Token_file_reload_is_seen_by_the_next_request()
    {
        var chain = Chain();
        Assert.False((await Run(chain, Bearer("Bearer new-token"))).Authenticated);
        chain.ReplaceTokenFile(TokenFile.Parse("new-token,erin,uid-9", "tokens.csv"));
        var result = await Run(chain, Bearer("Bearer new-token"));
        Assert.Equal("erin", result.User!.Name);
    }

    [Fact]
    public async Task Failure_reasons_never_contain_the_token()
    {
        var secret = "s3cr3t-value-that-must-not-leak";
        var chain = Chain(null, new FixedAuthenticator("x", TokenResult.Fail("rejected", TimeSpan.Zero)));
        var result = await Run(chain, Bearer("Bearer " + secret));
        Assert.DoesNotContain(secret, result.FailureReason, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, result.TokenDigest!.Value.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_authenticator_that_throws_fails_the_token_closed_and_counts_an_error()
    {
        var chain = Chain(new AnonymousPolicy(true, []), new ThrowingAuthenticator());
        var result = await Run(chain, Bearer("Bearer boom"));
        Assert.False(result.Authenticated);
        Assert.Contains("throwing: InvalidOperationException", result.FailureReason, StringComparison.Ordinal);
        Assert.True(result.IsError); // counted as result="error", never as anonymous
        Assert.Null(result.User);
    }

    internal sealed class ThrowingAuthenticator : ITokenAuthenticator
    {
        public string Name => "throwing";
        public ValueTask<TokenResult> AuthenticateTokenAsync(TokenRequest request, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("unexpected");
    }

    internal sealed class CountingAuthenticator : ITokenAuthenticator
    {
        private int _calls;
        public int Calls => _calls;
        public string Name => "counting";

        public ValueTask<TokenResult> AuthenticateTokenAsync(TokenRequest request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            return ValueTask.FromResult(TokenResult.NoResult(TimeSpan.MaxValue));
        }
    }

    internal sealed class FixedAuthenticator(string name, TokenResult result) : ITokenAuthenticator
    {
        private int _calls;
        public int Calls => Volatile.Read(ref _calls);
        public string Name => name;

        public ValueTask<TokenResult> AuthenticateTokenAsync(TokenRequest request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            return ValueTask.FromResult(result);
        }
    }
}

public sealed class TokenFileTests
{
    [Fact]
    public void Rows_parse_as_kube_apiserver_reads_them()
    {
        var file = TokenFile.Parse("t1,u1,id1,\"g1,g2\",ignored\n,skipped,x\nt2,u2,id2\nt1,u1b,id1b\n", "tokens.csv");
        Assert.Equal("u1b", file.Find("t1")!.Name); // last duplicate wins
        Assert.Equal(["g1", "g2"], TokenFile.Parse("t1,u1,id1,\"g1,g2\"", "x").Find("t1")!.Groups);
        Assert.Empty(file.Find("t2")!.Groups);
        Assert.Null(file.Find(""));
    }

    [Fact]
    public void Fewer_than_three_columns_is_the_kube_apiserver_startup_error()
    {
        var ex = Assert.Throws<FormatException>(() => TokenFile.Parse("t1,u1\n", "/etc/tokens.csv"));
        Assert.StartsWith("token file '/etc/tokens.csv' must have at least 3 columns (token, user name, user uid), found 2", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("t1", ex.Message.Replace("tokens", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }
}

public sealed class TokenCacheTests
{
    [Fact]
    public void Brute_force_of_random_tokens_stays_within_capacity()
    {
        var cache = new TokenCache(capacity: 1000);
        for (var i = 0; i < 50_000; i++)
        {
            cache.Set(TokenDigest.Of("random-" + i), new CachedTokenResult(false, null, "", "invalid bearer token", null), TimeSpan.FromMinutes(1));
            Assert.True(cache.Count <= cache.Capacity);
        }
        Assert.True(cache.TryGet(TokenDigest.Of("random-49999"), out _));
        Assert.False(cache.TryGet(TokenDigest.Of("random-0"), out _));
    }

    [Fact]
    public void Entries_expire_at_their_ttl_and_zero_ttl_is_not_cached()
    {
        var time = new FakeTimeProvider();
        var cache = new TokenCache(100, time);
        var digest = TokenDigest.Of("t");
        cache.Set(digest, new CachedTokenResult(true, UserInfo.Create("u"), "a", null, null), TimeSpan.FromSeconds(10));
        Assert.True(cache.TryGet(digest, out _));
        time.Advance(TimeSpan.FromSeconds(11));
        Assert.False(cache.TryGet(digest, out _));
        cache.Set(TokenDigest.Of("z"), new CachedTokenResult(true, UserInfo.Create("u"), "a", null, null), TimeSpan.Zero);
        Assert.False(cache.TryGet(TokenDigest.Of("z"), out _));
    }
}
