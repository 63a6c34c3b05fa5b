using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Portcullis.Authentication.Oidc;
using Portcullis.Authentication.Webhook;

namespace Portcullis.Authentication.Tests;

/// <summary>Failures Core used to keep to itself reach the logger (captured by a test provider), and no log line holds a credential.</summary>
public sealed class CoreLoggingTests
{
    private const string Issuer = "https://issuer.example";

    private static (ILoggerFactory Factory, FakeLogCollector Collector) Capture()
    {
        var collector = new FakeLogCollector();
        return (LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(new FakeLoggerProvider(collector))), collector);
    }

    /// <summary>Polls the collector (with a deadline) until a record with <paramref name="eventId"/> shows up.</summary>
    private static async Task<FakeLogRecord> WaitForAsync(FakeLogCollector collector, int eventId)
    {
        var start = TimeProvider.System.GetTimestamp();
        while (true)
        {
            if (collector.GetSnapshot().FirstOrDefault(r => r.Id.Id == eventId) is { } record)
            {
                return record;
            }
            Assert.True(TimeProvider.System.GetElapsedTime(start) < Wait.Timeout, $"no log record with event id {eventId}");
            await Task.Yield();
            await Task.Delay(TimeSpan.FromMilliseconds(10), TimeProvider.System);
        }
    }

    [Fact]
    public async Task An_OIDC_key_refresh_failure_is_logged_with_the_issuer_and_without_the_token()
    {
        var jwksFetches = 0;
        await using var provider = await LoopbackServer.StartAsync(async context =>
        {
            if (context.Request.Path == "/jwks")
            {
                if (Interlocked.Increment(ref jwksFetches) > 1)
                {
                    context.Response.StatusCode = 503; // the refresh fails; the first fetch worked
                    return;
                }
                await context.Response.WriteAsync(Jwts.JwksJson(("k1", TestKeys.Rsa)));
                return;
            }
            await context.Response.WriteAsync($$"""{"issuer":"{{Issuer}}","jwks_uri":"http://{{context.Request.Host}}/jwks"}""");
        });
        var (loggers, collector) = Capture();
        using var _ = loggers;
        var spec = new JwtAuthenticatorSpec
        {
            IssuerUrl = Issuer,
            DiscoveryUrl = provider.Url + ".well-known/openid-configuration",
            Audiences = ["portcullis"],
            SigningAlgorithms = ["RS256"],
            Username = new ClaimOrExpression("sub", "oidc:", null),
        };
        using var chain = new AuthenticatorChain(null,
            [JwtAuthenticator.Create(spec, new OidcKeySetOptions { AllowHttpLoopbackIssuer = true, MinRefreshInterval = TimeSpan.Zero }, loggers: loggers)],
            options: new AuthenticatorChainOptions { LoggerFactory = loggers });
        await chain.WhenIssuersReadyAsync(CancellationToken.None).WaitAsync(Wait.Timeout);
        Assert.Equal(1002, (await WaitForAsync(collector, 1002)).Id.Id); // keys loaded

        // A token signed with a key the issuer never published, under an unknown kid: the chain asks for a refresh.
        var token = Jwts.Sign(Jwts.Claims(Issuer, "portcullis", DateTimeOffset.UtcNow), TestKeys.OtherRsa, "rotated-kid");
        var result = await chain.AuthenticateAsync(new AuthenticationRequest { AuthorizationHeaders = ["Bearer " + token] }, CancellationToken.None)
            .AsTask().WaitAsync(Wait.Timeout);
        Assert.False(result.Authenticated);

        var record = await WaitForAsync(collector, 1003);
        Assert.Equal(LogLevel.Warning, record.Level);
        Assert.Contains(Issuer, record.Message, StringComparison.Ordinal);
        Assert.Contains("503", record.Message, StringComparison.Ordinal);
        foreach (var line in collector.GetSnapshot())
        {
            Assert.DoesNotContain(token, line.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(token.Split('.')[2], line.Message, StringComparison.Ordinal); // not even the signature
        }
    }

    [Fact]
    public async Task A_first_key_fetch_that_fails_is_logged_with_the_retry_delay()
    {
        await using var provider = await LoopbackServer.StartAsync(context =>
        {
            context.Response.StatusCode = 500;
            return Task.CompletedTask;
        });
        var (loggers, collector) = Capture();
        using var _ = loggers;
        using var keys = new OidcKeySet(new Uri(provider.Url, "/.well-known/openid-configuration"), Issuer, new HttpClient(),
            new OidcKeySetOptions { AllowHttpLoopbackIssuer = true, InitialRetryDelay = TimeSpan.FromMinutes(5) },
            logger: loggers.CreateLogger<OidcKeySet>());
        keys.Start();

        var record = await WaitForAsync(collector, 1001);
        Assert.Equal(LogLevel.Warning, record.Level);
        Assert.Contains(Issuer, record.Message, StringComparison.Ordinal);
        Assert.Contains("answered 500", record.Message, StringComparison.Ordinal);
        Assert.Contains("next try in 300s", record.Message, StringComparison.Ordinal);
        Assert.False(keys.IsInitialized);
    }

    [Fact]
    public async Task An_unreachable_token_webhook_is_logged_without_the_token()
    {
        var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var (loggers, collector) = Capture();
        using var _ = loggers;
        using var webhook = new WebhookTokenAuthenticator(new Uri($"https://127.0.0.1:{port}/authenticate"), new SocketsHttpHandler(),
            new WebhookTokenAuthenticatorOptions { MaxAttempts = 1 }, logger: loggers.CreateLogger<WebhookTokenAuthenticator>());
        using var chain = new AuthenticatorChain(null, [webhook]);
        const string Token = "sekret-token-0123456789abcdef";
        var result = await chain.AuthenticateAsync(new AuthenticationRequest { AuthorizationHeaders = ["Bearer " + Token] }, CancellationToken.None)
            .AsTask().WaitAsync(Wait.Timeout);
        Assert.False(result.Authenticated);

        var record = await WaitForAsync(collector, 1010);
        Assert.Equal(LogLevel.Warning, record.Level);
        Assert.Contains($"https://127.0.0.1:{port}", record.Message, StringComparison.Ordinal);
        Assert.Contains("unreachable after 1 attempts", record.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("sekret", record.Message, StringComparison.Ordinal);
    }
}
