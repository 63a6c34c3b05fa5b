using Microsoft.Extensions.Time.Testing;
using Portcullis.Authentication.Oidc;
using Portcullis.Configuration;

namespace Portcullis.Authentication.Tests;

/// <summary>The chain against a real OpenID provider (npm oidc-provider) on loopback, configured by the --oidc-* flags.</summary>
public sealed class OidcProviderTests(OidcProviderFixture provider) : IClassFixture<OidcProviderFixture>
{
    private async Task<AuthenticatorChain> ChainAsync(TimeProvider? time = null)
    {
        var config = new GatewayConfiguration { BaseDirectory = provider.Directory };
        var oidc = config.Authentication.Oidc;
        oidc.IssuerURL = provider.Issuer;
        oidc.ClientID = OidcProvider.DefaultAudience;
        oidc.GroupsClaim = "groups";
        oidc.GroupsPrefix = "oidc:";
        oidc.CaFile = Path.GetFileName(provider.CaFile);
        var chain = AuthenticatorChain.Create(config, new AuthenticatorChainOptions
        {
            Time = time ?? TimeProvider.System,
            Oidc = new OidcKeySetOptions { MinRefreshInterval = TimeSpan.Zero, InitialRetryDelay = TimeSpan.FromMilliseconds(50) },
        });
        await chain.WhenIssuersReadyAsync(CancellationToken.None).WaitAsync(Wait.Timeout);
        return chain;
    }

    private static async Task<ChainResult> Run(AuthenticatorChain chain, string token) =>
        await chain.AuthenticateAsync(new AuthenticationRequest { AuthorizationHeaders = ["Bearer " + token] }, CancellationToken.None).AsTask().WaitAsync(Wait.Timeout);

    [OidcProviderFact]
    public async Task Client_credentials_token_is_accepted_with_the_default_username_prefix_and_groups()
    {
        using var chain = await ChainAsync();
        var result = await Run(chain, await provider.GetTokenAsync());
        Assert.True(result.Authenticated, result.FailureReason);
        Assert.Equal(provider.Issuer + "#" + OidcProvider.ClientId, result.User!.Name);
        Assert.Equal(["oidc:dev-team", "oidc:auditors", "system:authenticated"], result.User.Groups);
        Assert.Equal("jwt:" + provider.Issuer, result.Authenticator);
    }

    [OidcProviderFact]
    public async Task Token_for_another_audience_is_rejected()
    {
        using var chain = await ChainAsync();
        var result = await Run(chain, await provider.GetTokenAsync("https://other.example"));
        Assert.False(result.Authenticated);
        Assert.Contains("expected audience \"https://portcullis.test\" got [\"https://other.example\"]", result.FailureReason, StringComparison.Ordinal);
    }

    [OidcProviderFact]
    public async Task Expired_token_is_rejected()
    {
        // The provider issues 10-minute tokens; the gateway's clock is an hour ahead.
        using var chain = await ChainAsync(new FakeTimeProvider(DateTimeOffset.UtcNow.AddHours(1)));
        var result = await Run(chain, await provider.GetTokenAsync());
        Assert.False(result.Authenticated);
        Assert.Contains("oidc: token is expired", result.FailureReason, StringComparison.Ordinal);
    }

    [OidcProviderFact]
    public async Task Key_rotation_is_followed_without_restart_and_the_rotated_out_key_is_rejected()
    {
        using var chain = await ChainAsync();
        var before = await provider.GetTokenAsync();
        Assert.True((await Run(chain, before)).Authenticated);

        var newKid = await provider.RotateKeysAsync();
        var after = await provider.GetTokenAsync();
        var accepted = await Run(chain, after);
        Assert.True(accepted.Authenticated, accepted.FailureReason);

        chain.Cache.Clear(); // the earlier success may be cached for up to 10 s, as in kube-apiserver
        var rejected = await Run(chain, before);
        Assert.False(rejected.Authenticated);
        Assert.Contains("no key with kid", rejected.FailureReason, StringComparison.Ordinal);
        Assert.DoesNotContain(newKid, rejected.FailureReason, StringComparison.Ordinal);
    }

    [OidcProviderFact]
    public async Task Unreachable_issuer_at_start_leaves_the_rest_of_the_chain_serving()
    {
        var config = new GatewayConfiguration { BaseDirectory = provider.Directory };
        config.Authentication.Oidc.IssuerURL = "https://127.0.0.1:1";
        config.Authentication.Oidc.ClientID = "x";
        File.WriteAllText(Path.Combine(provider.Directory, "tokens.csv"), "static-token,ops,uid-ops\n");
        config.Authentication.TokenAuthFile = "tokens.csv";
        using var chain = AuthenticatorChain.Create(config, new AuthenticatorChainOptions { Oidc = new OidcKeySetOptions { InitialRetryDelay = TimeSpan.FromMilliseconds(20), MaxRetryDelay = TimeSpan.FromMilliseconds(200) } });
        Assert.Equal("ops", (await Run(chain, "static-token")).User!.Name);
        var payload = Jwts.Claims("https://127.0.0.1:1", "x", DateTimeOffset.UtcNow);
        var result = await Run(chain, Jwts.Sign(payload, TestKeys.Rsa, "k"));
        Assert.False(result.Authenticated);
        Assert.Contains("is not initialized", result.FailureReason, StringComparison.Ordinal);
        var state = Assert.Single(chain.IssuerStates);
        Assert.False(state.Ready);
        Assert.True(result.IsError);
    }
}
