using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// An attacker's pass over the upstream wire after issue 13: for every byte the gateway sends upstream, which client
/// input can reach it, including through the mechanisms the gateway invented (the marker and nonce registry, pooled
/// connections with per-connection filter state, retries, the upgrade path). Each test drives a real gateway against an
/// upstream that records the raw bytes it receives (<see cref="RawUpstream"/>, or <see cref="ScriptedUpstream"/> when
/// the upstream must misbehave at a chosen moment).
/// </summary>
public sealed class AttackTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>Points the running gateway at <paramref name="upstream"/> by rewriting its kubeconfig and reloading.</summary>
    private static void Retarget(GatewayTestHost gw, Uri upstream) => gw.RetargetUpstream(upstream);

    private static ScriptedUpstream Scripted(GatewayTestHost gw, Func<RawRequest, int, UpstreamMove> script, IPAddress? address = null)
    {
        var upstream = new ScriptedUpstream(gw.Pki.IssueServer("localhost"), gw.Pki.Certificate, script, address);
        Retarget(gw, upstream.Uri);
        return upstream;
    }

    /// <summary>
    /// A head the filter never checked (one it took for body bytes) would carry the marker line to the upstream instead of
    /// identity lines: the request would run as the gateway's own account. So no byte on any connection may name it.
    /// </summary>
    private static void AssertEveryHeadWasRewritten(ScriptedUpstream upstream)
    {
        Assert.DoesNotContain(upstream.Wire, bytes => bytes.Contains("x-portcullis", StringComparison.OrdinalIgnoreCase));
        Assert.All(upstream.Requests, r => Assert.Single(r.Values("Impersonate-User")));
    }

    /// <summary>
    /// No nonce outlives its request. The readiness probe registers one for a moment every 200 ms, so this waits (with a
    /// deadline) for a moment when none is open rather than reading the count once.
    /// </summary>
    private static async Task AssertRegistrationsEndAsync(Portcullis.Gateway.Upstream.IdentityBlocks identities)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (identities.Pending != 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(5);
        }
        Assert.Equal(0, identities.Pending);
    }

    // Guard: the filter counts a Content-Length body; if HttpClient left that body unsent on a connection it then reused,
    // the next user's head would pass as "body". With Expect: 100-continue and an early refusal HttpClient either sends the
    // body anyway (small bodies) or drops the connection — checked for both, with another user's requests right after.
    [Theory]
    [InlineData(10)]
    [InlineData(2000)]
    [InlineData(100_000)]
    public async Task An_early_refusal_of_an_expect_continue_body_never_lets_the_next_head_pass_unchecked(int size)
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true).WaitAsync(Timeout);
        await using var upstream = Scripted(gw, (r, _) => r.Method == "POST" ? UpstreamMove.AnswerBeforeBody : UpstreamMove.AnswerAfterBody);
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        using var root = gw.Client(gw.Pki.IssueClient("root", "system:masters"));

        for (var i = 0; i < 3; i++)
        {
            using var post = new HttpRequestMessage(HttpMethod.Post, "/api/v1/namespaces/dev/configmaps") { Content = new StringContent(new string('y', size)) };
            post.Headers.ExpectContinue = true;
            using var refused = await jane.SendAsync(post).WaitAsync(Timeout);
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            using var next = await root.GetAsync($"/api/v1/namespaces/dev/pods?i={i}").WaitAsync(Timeout);
            Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        }

        AssertEveryHeadWasRewritten(upstream);
        Assert.Equal(3, upstream.Requests.Count(r => r.Target.Contains("?i=", StringComparison.Ordinal)));
        await AssertRegistrationsEndAsync(gw.Host.Snapshots.Current.UpstreamClient.Identities);
    }

    // Guard: a client that announces 100 body bytes, sends 10 and hangs up must not leave a pooled connection whose filter
    // still waits for 90 bytes of "body".
    [Fact]
    public async Task A_client_that_hangs_up_mid_body_leaves_no_connection_expecting_the_rest()
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true).WaitAsync(Timeout);
        await using var upstream = Scripted(gw, (_, _) => UpstreamMove.AnswerAfterBody);
        using var root = gw.Client(gw.Pki.IssueClient("root", "system:masters"));
        using (var warm = await root.GetAsync("/api/v1/namespaces/dev/pods?warm").WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode);
        }

        await using (var tls = await RawHttps.ConnectAsync(gw, gw.Pki.IssueClient("jane", "developers")))
        {
            await tls.WriteAsync("POST /api/v1/namespaces/dev/configmaps HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n0123456789"u8.ToArray()).AsTask().WaitAsync(Timeout);
            await tls.FlushAsync().WaitAsync(Timeout);
            // Wait until the gateway has forwarded the head (and so holds a connection in "body" state), then hang up.
            var deadline = DateTime.UtcNow + Timeout;
            while (!upstream.Wire.Any(w => w.Contains("POST /api/v1/namespaces/dev/configmaps", StringComparison.Ordinal)) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }
        }
        for (var i = 0; i < 5; i++)
        {
            using var next = await root.GetAsync($"/api/v1/namespaces/dev/pods?i={i}").WaitAsync(Timeout);
            Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        }

        AssertEveryHeadWasRewritten(upstream);
        Assert.Equal(5, upstream.Requests.Count(r => r.Target.Contains("?i=", StringComparison.Ordinal)));
    }

    // Guard: SocketsHttpHandler retries a request on a new connection when the pooled one turns out dead; the nonce must
    // still be registered then (same identity), and be gone once the request ends.
    [Fact]
    public async Task A_retry_on_a_fresh_connection_carries_the_same_identity_and_no_nonce_outlives_it()
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true).WaitAsync(Timeout);
        var died = 0;
        await using var upstream = Scripted(gw, (r, _) =>
            r.Target.Contains("die", StringComparison.Ordinal) && Interlocked.Exchange(ref died, 1) == 0 ? UpstreamMove.CloseWithoutAnswer : UpstreamMove.AnswerAfterBody);
        using var root = gw.Client(gw.Pki.IssueClient("root", "system:masters"));
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers", "qa"));
        using (var warm = await root.GetAsync("/api/v1/namespaces/dev/pods?warm").WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode);
        }

        using var response = await jane.GetAsync("/api/v1/namespaces/dev/pods?die").WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var attempts = upstream.Requests.Where(r => r.Target.EndsWith("?die", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, attempts.Count);
        Assert.NotEqual(attempts[0].Connection, attempts[1].Connection);
        Assert.All(attempts, a =>
        {
            Assert.Equal(["jane"], a.Values("Impersonate-User"));
            Assert.Equal(["developers", "qa"], a.Values("Impersonate-Group"));
        });
        AssertEveryHeadWasRewritten(upstream);
        await AssertRegistrationsEndAsync(gw.Host.Snapshots.Current.UpstreamClient.Identities);
    }

    // Guard (functional): a WebSocket over HTTP/2 extended CONNECT is an upgrade too; it gets its own HTTP/1.1 connection
    // upstream with the user's identity, and the tunnel works.
    [Fact]
    public async Task A_websocket_over_http2_extended_connect_is_tunnelled_with_the_users_identity()
    {
        await using var gw = await GatewayTestHost.StartAsync().WaitAsync(Timeout);
        var certificate = gw.Pki.IssueClient("jane", "developers");
        using var handler = new SocketsHttpHandler
        {
            SslOptions = new System.Net.Security.SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && gw.ValidateServer(cert),
                ClientCertificates = [certificate],
                LocalCertificateSelectionCallback = (_, _, _, _, _) => certificate,
            },
        };
        using var invoker = new HttpMessageInvoker(handler);
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("v5.channel.k8s.io");
        socket.Options.HttpVersion = HttpVersion.Version20;
        socket.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        socket.Options.CollectHttpResponseDetails = true;
        using var cancel = new CancellationTokenSource(Timeout);

        await socket.ConnectAsync(new Uri($"wss://{gw.Uri.Authority}/api/v1/namespaces/dev/pods/p1/exec?command=echo"), invoker, cancel.Token).WaitAsync(Timeout);
        await socket.SendAsync(new byte[] { 0, (byte)'h', (byte)'i' }, WebSocketMessageType.Binary, true, cancel.Token).WaitAsync(Timeout);
        var buffer = new byte[64];
        var received = await socket.ReceiveAsync(buffer, cancel.Token).WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.OK, socket.HttpStatusCode); // 200 to an extended CONNECT: the client side was HTTP/2
        Assert.Equal(new byte[] { 0, (byte)'h', (byte)'i' }, buffer[..received.Count]);
        var seen = Assert.Single(gw.Upstream.Requests);
        Assert.Equal(["jane"], seen.Values("Impersonate-User"));
        Assert.Equal(["developers"], seen.Values("Impersonate-Group"));
        // The nonce lives as long as the tunnel; once both sides closed it is gone.
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cancel.Token).WaitAsync(Timeout);
        await AssertRegistrationsEndAsync(gw.Host.Snapshots.Current.UpstreamClient.Identities);
    }

    // Guard (functional): an IPv6 server in the kubeconfig: bracketed Host, connection and TLS to the address.
    [Fact]
    public async Task An_ipv6_kubeconfig_server_is_reached_with_its_bracketed_authority_as_Host()
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true).WaitAsync(Timeout);
        await using var upstream = Scripted(gw, (_, _) => UpstreamMove.AnswerAfterBody, IPAddress.IPv6Loopback);
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));

        using var response = await jane.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = Assert.Single(upstream.Requests);
        Assert.StartsWith("[::1]:", seen.Values("Host").Single(), StringComparison.Ordinal);
        Assert.Equal(["jane"], seen.Values("Impersonate-User"));
    }

    // Guard: concurrent requests of different users share the pool and the nonce registry; every request upstream must
    // carry exactly its own user's lines.
    [Fact]
    public async Task Concurrent_requests_of_different_users_each_carry_exactly_their_own_identity()
    {
        // 120 requests at once open up to 120 upstream TLS connections: on a loaded 2-core machine that takes longer than the
        // host's default 2s upstream.requestTimeout, which would answer 504 and prove nothing about identities.
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true, requestTimeout: "25s").WaitAsync(Timeout);
        var users = Enumerable.Range(0, 6).Select(n => (Name: $"user{n}", Group: $"team{n}")).ToArray();
        var clients = users.Select(u => gw.Client(gw.Pki.IssueClient(u.Name, u.Group))).ToArray();
        try
        {
            await Task.WhenAll(users.SelectMany((u, n) => Enumerable.Range(0, 20).Select(async i =>
            {
                using var response = await clients[n].GetAsync($"/api/v1/namespaces/dev/pods?u={u.Name}&i={i}").WaitAsync(Timeout);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            })));
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }

        var seen = gw.Raw.Requests.Where(r => r.Target.Contains("?u=", StringComparison.Ordinal)).ToList();
        Assert.Equal(120, seen.Count);
        foreach (var request in seen)
        {
            var user = request.Target.Split("?u=")[1].Split('&')[0];
            Assert.Empty(request.Anomalies);
            Assert.Equal([user], request.Values("Impersonate-User"));
            Assert.Equal(["team" + user["user".Length..]], request.Values("Impersonate-Group"));
            Assert.Empty(request.NamesLike("x-portcullis"));
        }
        await AssertRegistrationsEndAsync(gw.Host.Snapshots.Current.UpstreamClient.Identities);
    }

    // Guard: a reload swaps the upstream client (new pool, new marker name, new registry) while a watch is streaming on
    // the old one; the watch keeps its identity and registration until it ends, and new requests use the new client.
    [Fact]
    public async Task A_reload_mid_watch_keeps_the_watch_on_its_own_client_and_registration()
    {
        await using var gw = await GatewayTestHost.StartAsync().WaitAsync(Timeout);
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        var before = gw.Host.Snapshots.Current.UpstreamClient;
        using var watch = await jane.GetAsync("/api/v1/namespaces/dev/pods?watch=true", HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeout);
        using var events = new StreamReader(await watch.Content.ReadAsStreamAsync().WaitAsync(Timeout));
        Assert.Contains("\"one\"", await events.ReadLineAsync().WaitAsync(Timeout), StringComparison.Ordinal);

        Assert.Empty(gw.Host.Snapshots.Reload());
        var after = gw.Host.Snapshots.Current.UpstreamClient;
        using var root = gw.Client(gw.Pki.IssueClient("root", "system:masters"));
        using var plain = await root.GetAsync("/api/v1/namespaces/dev/pods?after-reload").WaitAsync(Timeout);

        Assert.NotSame(before, after);
        Assert.NotEqual(before.Identities.MarkerName, after.Identities.MarkerName);
        Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
        Assert.True(before.Identities.Pending >= 1, "the watch in flight on the old client lost its registration"); // (a probe may hold one too)
        gw.Upstream.SecondWatchEvent.SetResult();
        Assert.Contains("\"two\"", await events.ReadLineAsync().WaitAsync(Timeout), StringComparison.Ordinal);
        Assert.Null(await events.ReadLineAsync().WaitAsync(Timeout)); // the stream ended
        await AssertRegistrationsEndAsync(before.Identities);
        await AssertRegistrationsEndAsync(after.Identities);
        Assert.All(gw.Upstream.Requests, r => Assert.Single(r.Values("Impersonate-User")));
        Assert.Equal(["root"], Assert.Single(gw.Upstream.Requests, r => r.PathAndQuery.EndsWith("?after-reload", StringComparison.Ordinal)).Values("Impersonate-User"));
    }

    private const string BearerSubprotocol = "base64url.bearer.authorization.k8s.io.";

    private static string SubprotocolToken(string token) => BearerSubprotocol + System.Buffers.Text.Base64Url.EncodeToString(System.Text.Encoding.UTF8.GetBytes(token));

    private static string WebSocketExec(string extraHeaders) =>
        "GET /api/v1/namespaces/dev/pods/p1/exec?command=sh HTTP/1.1\nHost: localhost\nConnection: Upgrade\nUpgrade: websocket\n" +
        "Sec-WebSocket-Version: 13\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n" + extraHeaders + "\n";

    // Hole: the deny list matched the digest of the Authorization bearer token even when that token failed and the
    // WebSocket-subprotocol token authenticated; a revoked token behind any invalid bearer reached the upstream as its user.
    [Fact]
    public async Task A_deny_listed_subprotocol_token_behind_an_invalid_bearer_token_is_still_denied()
    {
        var digest = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("token-jane"u8));
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true,
            denyList: $"apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries:\n- tokenSHA256: {digest}\n  reason: leaked in a gist\n").WaitAsync(Timeout);
        var protocols = $"Sec-WebSocket-Protocol: v5.channel.k8s.io, {SubprotocolToken("token-jane")}\n";

        var alone = await RawHttps.SendAndReadHeadAsync(gw, null, WebSocketExec(protocols));
        var behindGarbage = await RawHttps.SendAndReadHeadAsync(gw, null, WebSocketExec("Authorization: Bearer not-a-token\n" + protocols));

        Assert.StartsWith("HTTP/1.1 403", alone);
        Assert.StartsWith("HTTP/1.1 403", behindGarbage);
        Assert.Empty(gw.Raw.Requests);
    }

    // Hole: in Passthrough the client's Authorization header went upstream even when it was not what authenticated the
    // request: the gateway checked jane (subprotocol token) while the upstream acted for a token the gateway had refused.
    [Fact]
    public async Task Passthrough_forwards_only_the_bearer_token_that_authenticated_the_request()
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true, identity: "Passthrough").WaitAsync(Timeout);
        await using var upstream = Scripted(gw, (_, _) => UpstreamMove.AnswerAfterBody);
        var protocols = $"Sec-WebSocket-Protocol: v5.channel.k8s.io, {SubprotocolToken("token-jane")}\n";

        var smuggled = await RawHttps.SendAndReadHeadAsync(gw, null, WebSocketExec("Authorization: Bearer token-the-gateway-refuses\n" + protocols));
        var own = await RawHttps.SendAndReadHeadAsync(gw, null, WebSocketExec("Authorization: Bearer token-jane\n"));

        Assert.StartsWith("HTTP/1.1 200", smuggled); // authenticated as jane by the subprotocol token, then forwarded
        Assert.StartsWith("HTTP/1.1 200", own);
        Assert.DoesNotContain(upstream.Wire, bytes => bytes.Contains("token-the-gateway-refuses", StringComparison.Ordinal));
        Assert.Equal(2, upstream.Requests.Count);
        Assert.Equal(["Bearer token-jane"], upstream.Requests.SelectMany(r => r.Values("Authorization")));
    }

    // Guard: in Passthrough a client certificate beside a token of another user must not let the gateway check the
    // certificate's user (deny list, network scopes, RBAC) while the upstream acts for the token's: the chain's rule
    // that both must name the same user makes it a 401.
    [Fact]
    public async Task Passthrough_refuses_a_client_certificate_beside_a_token_and_forwards_nothing()
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true, identity: "Passthrough").WaitAsync(Timeout);

        var response = await RawHttps.SendAsync(gw, gw.Pki.IssueClient("jane", "developers"),
            "GET /api/v1/namespaces/dev/pods HTTP/1.1\nHost: localhost\nAuthorization: Bearer token-root\nConnection: close\n\n");

        Assert.StartsWith("HTTP/1.1 401", response);
        Assert.Empty(gw.Raw.Requests);
    }

    // Hole: in Passthrough an allowed kubectl --as was authorized by the gateway for the impersonated user, but the
    // Impersonate-* headers were stripped, so the upstream acted for the token's own user: the identity the gateway
    // decided and the one the upstream used differed.
    [Fact]
    public async Task Passthrough_sends_the_impersonation_the_gateway_authorized_so_the_upstream_acts_for_the_same_user()
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true, identity: "Passthrough", modes: "[RBAC]").WaitAsync(Timeout);
        await using var upstream = Scripted(gw, (_, _) => UpstreamMove.AnswerAfterBody);
        // tokens.csv: token-root is root in system:masters, who may impersonate; two group lines, as kubectl sends them.
        var response = await RawHttps.SendAsync(gw, null,
            "GET /api/v1/namespaces/dev/pods HTTP/1.1\nHost: localhost\nAuthorization: Bearer token-root\nImpersonate-User: jane\n" +
            "Impersonate-Group: developers\nImpersonate-Group: qa\nImpersonate-Extra-Reason: on-call\nConnection: close\n\n");

        Assert.StartsWith("HTTP/1.1 200", response);
        var seen = Assert.Single(upstream.Requests);
        Assert.Equal(["Bearer token-root"], seen.Values("Authorization"));
        Assert.Equal(["jane"], seen.Values("Impersonate-User"));
        Assert.Equal(["developers", "qa"], seen.Values("Impersonate-Group")); // as requested: nothing the gateway derived
        Assert.Equal(["on-call"], seen.Values("Impersonate-Extra-reason"));
        Assert.Empty(seen.NamesLike("x-remote-"));
    }

    /// <summary>A certificate of the test CA (the kubeconfig's CA) with the given subject, EKU and subjectAltNames.</summary>
    private static X509Certificate2 IssueFromKubeconfigCa(GatewayTestHost gw, string subject, string eku, string? dnsName, IPAddress? address)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName(subject), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(eku)], false));
        if (dnsName is not null || address is not null)
        {
            var san = new SubjectAlternativeNameBuilder();
            if (dnsName is not null)
            {
                san.AddDnsName(dnsName);
            }
            if (address is not null)
            {
                san.AddIpAddress(address);
            }
            request.CertificateExtensions.Add(san.Build());
        }
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using var signed = request.Create(gw.Pki.Certificate, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), serial);
        using var withKey = signed.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    private const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    // Hole: with a kubeconfig CA the upstream certificate's chain was built without the serverAuth EKU, so any client
    // certificate of the cluster CA with a matching subjectAltName passed as kube-apiserver (client-go refuses it). Whoever
    // holds one and sits on the path gets the gateway's requests, and its bearer token when it uses one.
    [Fact]
    public async Task A_client_certificate_of_the_kubeconfig_CA_is_not_accepted_as_the_upstream()
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true).WaitAsync(Timeout);
        await using var impostor = RawUpstream.Start(IssueFromKubeconfigCa(gw, "CN=system:node:worker-1", ClientAuth, null, IPAddress.Loopback), gw.Pki.Certificate);
        Retarget(gw, impostor.Uri);
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));

        using var response = await jane.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Empty(impostor.Requests);
    }

    // Hole: a certificate without subjectAltName was accepted by its Common Name; client-go (Go 1.15+) ignores the CN.
    [Fact]
    public async Task An_upstream_certificate_that_names_the_server_only_in_its_common_name_is_not_accepted()
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true, upstreamDnsName: "apiserver.internal",
            upstreamClusterExtra: "tls-server-name: apiserver.internal").WaitAsync(Timeout);
        await using var impostor = RawUpstream.Start(IssueFromKubeconfigCa(gw, "CN=apiserver.internal", ServerAuth, null, null), gw.Pki.Certificate);
        Retarget(gw, impostor.Uri);
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));

        using var response = await jane.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Empty(impostor.Requests);
    }

    // Guard for the fix above: a proper serving certificate (serverAuth, the name in subjectAltName) still works, by DNS
    // name through tls-server-name and by IP address.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_serving_certificate_with_the_name_in_its_subjectAltName_is_accepted(bool byName)
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true, upstreamDnsName: "apiserver.internal",
            upstreamClusterExtra: byName ? "tls-server-name: apiserver.internal" : "").WaitAsync(Timeout);
        await using var real = RawUpstream.Start(
            IssueFromKubeconfigCa(gw, "CN=kube-apiserver", ServerAuth, byName ? "apiserver.internal" : null, byName ? null : IPAddress.Loopback), gw.Pki.Certificate);
        Retarget(gw, real.Uri);
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));

        using var response = await jane.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Single(real.Requests);
    }

    // Hole: the path of the kubeconfig's server (https://rancher.example/k8s/clusters/c-1, as path-routing fronts use) was
    // dropped, so every request — with the gateway's credentials — went to the front's own API at its root instead of to
    // the cluster; client-go puts the server's path before every request path.
    [Fact]
    public async Task A_kubeconfig_server_with_a_path_gets_every_request_under_that_path()
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true).WaitAsync(Timeout);
        await using var upstream = new ScriptedUpstream(gw.Pki.IssueServer("localhost"), gw.Pki.Certificate, (_, _) => UpstreamMove.AnswerAfterBody);
        Retarget(gw, new Uri(upstream.Uri, "/k8s/clusters/c-1"));
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));

        using var response = await jane.GetAsync("/api/v1/namespaces/dev/pods?limit=1").WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = Assert.Single(upstream.Requests, r => r.Target.Contains("/api/", StringComparison.Ordinal));
        Assert.Equal("/k8s/clusters/c-1/api/v1/namespaces/dev/pods?limit=1", seen.Target);
        Assert.Equal([upstream.Uri.Authority], seen.Values("Host"));
        Assert.DoesNotContain(upstream.Requests, r => !r.Target.StartsWith("/k8s/clusters/c-1/", StringComparison.Ordinal));
    }

    // Hole (configuration): RequestHeader mode with a token-only upstream kubeconfig. kube-apiserver reads X-Remote-* only
    // from a client certificate its --requestheader-client-ca-file trusts; without one it ignores those lines and the
    // token makes every request the gateway's own account. The gateway accepted that configuration.
    [Fact]
    public async Task RequestHeader_mode_without_a_client_certificate_towards_the_upstream_is_refused()
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true, identity: "RequestHeader").WaitAsync(Timeout);
        await using var upstream = new ScriptedUpstream(gw.Pki.IssueServer("localhost"), gw.Pki.Certificate, (_, _) => UpstreamMove.AnswerAfterBody);
        var path = Path.Combine(gw.Dir, "upstream.kubeconfig");
        var kubeconfig = File.ReadAllText(path).Replace(gw.Raw.Uri.ToString(), upstream.Uri.ToString(), StringComparison.Ordinal);
        var users = kubeconfig.IndexOf("users:", StringComparison.Ordinal);
        var contexts = kubeconfig.IndexOf("contexts:", StringComparison.Ordinal);
        File.WriteAllText(path, kubeconfig[..users] + "users:\n- name: gateway\n  user:\n    token: gateway-service-account-token\n" + kubeconfig[contexts..]);

        var errors = gw.Host.Snapshots.Reload();

        Assert.Contains(errors, e => e.ToString().Contains("RequestHeader", StringComparison.Ordinal) && e.ToString().Contains("client certificate", StringComparison.Ordinal));
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        using var response = await jane.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode); // the previous configuration still serves
        Assert.DoesNotContain(upstream.Wire, bytes => bytes.Contains("gateway-service-account-token", StringComparison.Ordinal));
    }
}
