using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Portcullis.Authentication.Webhook;
using Portcullis.Configuration;

namespace Portcullis.Authentication.Tests;

/// <summary>TokenReview round trips through a real Kestrel webhook on 127.0.0.1, using the documentation's fixtures.</summary>
public sealed class WebhookTests : IAsyncLifetime
{
    private static readonly string[] FixtureAudiences = ["https://myserver.example.com", "https://myserver.internal.example.com"];
    private readonly ConcurrentQueue<JsonElement> _requests = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-webhook-").FullName;
    private LoopbackServer _server = null!;
    private X509Certificate2 _ca = null!;
    private volatile Func<JsonElement, string?> _respond = _ => null;
    private volatile TaskCompletionSource? _gate;
    private int _calls;

    /// <summary>The fixtures are JSON with '#' comments (the docs mark them yaml); drop the comment lines.</summary>
    private static string FixtureJson(string name) => string.Join('\n',
        File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "fixtures", name)).Where(l => !l.TrimStart().StartsWith('#')));

    public async Task InitializeAsync()
    {
        _ca = TestPki.CreateCa("webhook-ca");
        _server = await LoopbackServer.StartAsync(async context =>
        {
            Interlocked.Increment(ref _calls);
            using var body = await JsonDocument.ParseAsync(context.Request.Body);
            var request = body.RootElement.Clone();
            _requests.Enqueue(request);
            if (_gate is { } gate)
            {
                await gate.Task.WaitAsync(Wait.Timeout);
            }
            var answer = _respond(request);
            if (answer is null)
            {
                context.Response.StatusCode = 500;
                return;
            }
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(answer);
        }, new LoopbackTls(TestPki.CreateServer(_ca)));
        File.WriteAllText(Path.Combine(_dir, "ca.pem"), TestPki.Pem(_ca));
        using var client = TestPki.CreateClient(_ca, [TestPki.CN("kube-apiserver")]);
        File.WriteAllText(Path.Combine(_dir, "cert.pem"), client.ExportCertificatePem());
        File.WriteAllText(Path.Combine(_dir, "key.pem"), client.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        // The documentation's webhook kubeconfig, unchanged but for the paths and the server URL.
        var kubeconfig = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "k8s-website-webhook-authn.kubeconfig.yaml"))
            .Replace("/path/to/ca.pem", "ca.pem", StringComparison.Ordinal)
            .Replace("/path/to/cert.pem", "cert.pem", StringComparison.Ordinal)
            .Replace("/path/to/key.pem", "key.pem", StringComparison.Ordinal)
            .Replace("https://authn.example.com/authenticate", new Uri(_server.Url, "/authenticate").ToString(), StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(_dir, "webhook.kubeconfig"), kubeconfig);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _ca.Dispose();
        Directory.Delete(_dir, true);
    }

    private AuthenticatorChain Chain(string version = "v1", int maxAttempts = 2, TimeSpan? cacheTtl = null)
    {
        var config = new GatewayConfiguration { BaseDirectory = _dir };
        config.Authentication.Webhook.ConfigFile = "webhook.kubeconfig";
        config.Authentication.Webhook.Version = version;
        config.Authentication.Webhook.CacheTTL = cacheTtl ?? config.Authentication.Webhook.CacheTTL;
        config.Authentication.ServiceAccount.Audiences = [.. FixtureAudiences];
        return AuthenticatorChain.Create(config, new AuthenticatorChainOptions
        {
            Webhook = new WebhookTokenAuthenticatorOptions { MaxAttempts = maxAttempts, InitialBackoff = TimeSpan.FromMilliseconds(5) },
        });
    }

    private static async Task<ChainResult> Run(AuthenticatorChain chain, string token) =>
        await chain.AuthenticateAsync(new AuthenticationRequest { AuthorizationHeaders = ["Bearer " + token] }, CancellationToken.None).AsTask().WaitAsync(Wait.Timeout);

    [Theory]
    [InlineData("v1")]
    [InlineData("v1beta1")]
    public async Task Fixture_request_and_success_response_round_trip(string version)
    {
        _respond = _ => FixtureJson($"k8s-website-tokenreview-{version}-response-success.yaml");
        using var chain = Chain(version);
        using var expectedRequest = JsonDocument.Parse(FixtureJson($"k8s-website-tokenreview-{version}-request.yaml"));
        var token = expectedRequest.RootElement.GetProperty("spec").GetProperty("token").GetString()!;

        var result = await Run(chain, token);

        Assert.True(_requests.TryDequeue(out var sent));
        var expected = expectedRequest.RootElement;
        Assert.Equal(expected.GetProperty("apiVersion").GetString(), sent.GetProperty("apiVersion").GetString());
        Assert.Equal("TokenReview", sent.GetProperty("kind").GetString());
        Assert.Equal(token, sent.GetProperty("spec").GetProperty("token").GetString());
        Assert.Equal(expected.GetProperty("spec").GetProperty("audiences").EnumerateArray().Select(a => a.GetString()),
            sent.GetProperty("spec").GetProperty("audiences").EnumerateArray().Select(a => a.GetString()));

        Assert.True(result.Authenticated, result.FailureReason);
        Assert.Equal("webhook", result.Authenticator);
        Assert.Equal("janedoe@example.com", result.User!.Name);
        Assert.Equal("42", result.User.Uid);
        Assert.Equal(["developers", "qa", "system:authenticated"], result.User.Groups);
        Assert.Equal(["extravalue1", "extravalue2"], result.User.Extra["extrafield1"]);
    }

    [Theory]
    [InlineData("v1")]
    [InlineData("v1beta1")]
    public async Task Fixture_error_response_is_401_with_the_webhook_error(string version)
    {
        _respond = _ => FixtureJson($"k8s-website-tokenreview-{version}-response-error.yaml");
        using var chain = Chain(version);
        var result = await Run(chain, "expired-credential");
        Assert.False(result.Authenticated);
        Assert.Equal("invalid bearer token: webhook token authenticator: Credentials are expired", result.FailureReason);
    }

    [Fact]
    public async Task CR_LF_in_the_reviewed_user_is_401_cached_as_a_rejection_and_never_echoed()
    {
        _respond = _ => """
            {"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","status":{"authenticated":true,
             "user":{"username":"jane","uid":"42","groups":["dev"],"extra":{"example.com/session":["s-1\r\nImpersonate-Group: system:masters"]}}}}
            """;
        using var chain = Chain();
        for (var i = 0; i < 2; i++)
        {
            var result = await Run(chain, "crlf-token");
            Assert.False(result.Authenticated);
            Assert.True(result.IsError);
            Assert.Equal("invalid bearer token: webhook: value 1 of extra \"example.com/session\" contains a control character (U+000D)", result.FailureReason);
            Assert.DoesNotContain("system:masters", result.FailureReason, StringComparison.Ordinal);
        }
        Assert.Equal(1, Volatile.Read(ref _calls)); // the second request was answered by the negative cache
    }

    [Fact]
    public async Task Disjoint_audiences_in_the_response_are_not_ok()
    {
        _respond = _ => FixtureJson("k8s-website-tokenreview-v1-response-success.yaml").Replace("\"https://myserver.example.com\"]", "\"https://elsewhere.example\"]", StringComparison.Ordinal);
        using var chain = Chain();
        Assert.False((await Run(chain, "other-audience")).Authenticated);
    }

    [Fact]
    public async Task Unreachable_webhook_fails_closed_and_counts_an_error()
    {
        _respond = _ => null; // 500 on every attempt
        using var chain = Chain(maxAttempts: 3);
        var result = await Run(chain, "any");
        Assert.False(result.Authenticated);
        Assert.True(result.IsError);
        Assert.Contains("webhook unreachable after 3 attempts", result.FailureReason, StringComparison.Ordinal);
        Assert.Equal(3, Volatile.Read(ref _calls));
        var webhook = (WebhookTokenAuthenticator)chain.TokenAuthenticators.Single();
        Assert.Equal(1, webhook.TransportErrors);
        // Not cached: the next request asks again (and fails closed again).
        await Run(chain, "any");
        Assert.Equal(6, Volatile.Read(ref _calls));
    }

    [Fact]
    public async Task Closed_port_fails_closed()
    {
        var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var webhook = new WebhookTokenAuthenticator(new Uri($"https://127.0.0.1:{port}/authenticate"), new SocketsHttpHandler(),
            new WebhookTokenAuthenticatorOptions { MaxAttempts = 2, InitialBackoff = TimeSpan.FromMilliseconds(5) });
        using var chain = new AuthenticatorChain(null, [webhook]);
        var result = await Run(chain, "t");
        Assert.False(result.Authenticated);
        Assert.Contains("unreachable", result.FailureReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Success_is_cached_and_a_rejection_is_cached_briefly()
    {
        _respond = r => r.GetProperty("spec").GetProperty("token").GetString() == "good"
            ? FixtureJson("k8s-website-tokenreview-v1-response-success.yaml")
            : """{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","status":{"authenticated":false}}""";
        using var chain = Chain();
        for (var i = 0; i < 5; i++)
        {
            Assert.True((await Run(chain, "good")).Authenticated);
            Assert.False((await Run(chain, "bad")).Authenticated);
        }
        Assert.Equal(2, Volatile.Read(ref _calls)); // the other eight answers came from the cache
    }

    [Fact]
    public async Task CacheTTL_of_zero_asks_the_webhook_every_time()
    {
        // authentication.webhook.cacheTTL bounds both caches: with 0s nothing is cached (the default 2m caches, above).
        _respond = r => r.GetProperty("spec").GetProperty("token").GetString() == "good"
            ? FixtureJson("k8s-website-tokenreview-v1-response-success.yaml")
            : """{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","status":{"authenticated":false}}""";
        using var chain = Chain(cacheTtl: TimeSpan.Zero);
        for (var i = 0; i < 5; i++)
        {
            Assert.True((await Run(chain, "good")).Authenticated);
            Assert.False((await Run(chain, "bad")).Authenticated);
        }
        Assert.Equal(10, Volatile.Read(ref _calls));
    }

    /// <summary>
    /// The defined bound: N distinct random tokens cause exactly N reviews (one each), replaying any of them within the
    /// negative TTL causes none, and the cache never holds more than its capacity.
    /// </summary>
    [Fact]
    public async Task Brute_force_of_random_tokens_reviews_each_token_at_most_once_and_keeps_memory_bounded()
    {
        _respond = _ => """{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","status":{"authenticated":false}}""";
        var config = new GatewayConfiguration { BaseDirectory = _dir };
        config.Authentication.Webhook.ConfigFile = "webhook.kubeconfig";
        using var chain = AuthenticatorChain.Create(config, new AuthenticatorChainOptions { TokenCacheCapacity = 100 });
        const int n = 150;
        var tokens = Enumerable.Range(0, n).Select(_ => Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16))).ToArray();
        foreach (var t in tokens)
        {
            Assert.False((await Run(chain, t)).Authenticated);
            Assert.True(chain.Cache.Count <= 100);
        }
        Assert.Equal(n, Volatile.Read(ref _calls));
        foreach (var t in tokens[^40..])
        {
            await Run(chain, t);
        }
        Assert.Equal(n, Volatile.Read(ref _calls));
    }

    [Fact]
    public async Task Concurrent_requests_with_one_token_share_one_review()
    {
        _respond = _ => FixtureJson("k8s-website-tokenreview-v1-response-success.yaml");
        _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var chain = Chain();
        var pending = Enumerable.Range(0, 20).Select(_ => Run(chain, "shared-token")).ToArray();
        _gate.SetResult();
        var results = await Task.WhenAll(pending).WaitAsync(Wait.Timeout);
        Assert.All(results, r => Assert.True(r.Authenticated));
        Assert.Equal(1, Volatile.Read(ref _calls));
    }

    [Fact]
    public void Fixture_kubeconfig_as_published_names_its_missing_files()
    {
        var ex = Assert.Throws<FormatException>(() => WebhookTokenAuthenticator.FromKubeconfig(Path.Combine(AppContext.BaseDirectory, "fixtures", "k8s-website-webhook-authn.kubeconfig.yaml")));
        Assert.Contains("/path/to/ca.pem", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Request_body_is_a_TokenReview_and_the_token_is_only_in_spec()
    {
        using var webhook = new WebhookTokenAuthenticator(new Uri("https://127.0.0.1:1/"), new SocketsHttpHandler(), new WebhookTokenAuthenticatorOptions { Version = "v1beta1" });
        var json = Encoding.UTF8.GetString(webhook.BuildRequest("tok"));
        Assert.Equal("""{"apiVersion":"authentication.k8s.io/v1beta1","kind":"TokenReview","metadata":{},"spec":{"token":"tok"},"status":{"user":{}}}""", json);
    }
}
