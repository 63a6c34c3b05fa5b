using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Portcullis.Gateway.Tests.Infrastructure;
using Portcullis.Network;
using static Portcullis.Gateway.Tests.AuditFidelityTests;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue 16, item 2: <c>network.trustedProxies</c> (X-Forwarded-For and Forwarded believed only from those peers, the
/// client used for allow/deny, bans and audit) and <c>network.proxyProtocol</c> (PROXY v1/v2 read before TLS from trusted
/// peers, refused from others). Real Kestrel, real TLS; 127.0.0.1 is the proxy, 127.0.0.2 another peer on loopback.
/// </summary>
public sealed class TrustedProxyTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private static readonly IPAddress Other = IPAddress.Parse("127.0.0.2");
    private const string AuditPolicy = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n";

    private static Task<GatewayTestHost> StartAsync(string network, bool rawUpstream = false) =>
        GatewayTestHost.StartAsync($"network:\n{network}audit:\n  policyFile: audit-policy.yaml\n  log:\n    path: audit.log\n    mode: blocking\n",
            files: new() { ["audit-policy.yaml"] = AuditPolicy }, rawUpstream: rawUpstream);

    private static string[] SourceIps(JsonElement e) => [.. e.GetProperty("sourceIPs").EnumerateArray().Select(i => i.GetString()!)];

    private static JsonElement EventOf(List<JsonElement> events, string path) =>
        Assert.Single(events, e => e.GetProperty("requestURI").GetString() == path);

    [Fact]
    public async Task X_forwarded_for_from_a_trusted_peer_is_the_client_in_the_audit_event_and_upstream()
    {
        await using var gw = await StartAsync("  trustedProxies: [127.0.0.1/32]\n").WaitAsync(Timeout);
        using var proxy = gw.Client(gw.Pki.IssueClient("jane", "developers"), localAddress: IPAddress.Loopback);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/namespaces/dev/pods?via=proxy");
        request.Headers.Add("X-Forwarded-For", "1.2.3.4, 203.0.113.9"); // 1.2.3.4: written by the client, not believed
        using var response = await proxy.SendAsync(request).WaitAsync(Timeout);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        Assert.Equal(["203.0.113.9, 127.0.0.1"], Assert.Single(gw.Upstream.Requests).Values("X-Forwarded-For"));
        var e = EventOf(await EventsAfterStopAsync(gw), "/api/v1/namespaces/dev/pods?via=proxy");
        Assert.Equal(["203.0.113.9", "127.0.0.1"], SourceIps(e)); // kube-apiserver's order: the chain, then the peer
    }

    [Fact]
    public async Task Forwarding_headers_from_an_untrusted_peer_are_ignored_and_never_reach_the_upstream()
    {
        await using var gw = await StartAsync("  trustedProxies: [127.0.0.1/32]\n", rawUpstream: true).WaitAsync(Timeout);
        using var other = gw.Client(gw.Pki.IssueClient("jane", "developers"), localAddress: Other);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/namespaces/dev/pods?via=other");
        request.Headers.TryAddWithoutValidation("X-Forwarded-For", "203.0.113.9");
        request.Headers.TryAddWithoutValidation("Forwarded", "for=203.0.113.9;proto=https");
        request.Headers.TryAddWithoutValidation("X-Real-IP", "203.0.113.9");
        request.Headers.TryAddWithoutValidation("X-Forwarded-Host", "evil.example");
        request.Headers.TryAddWithoutValidation("X-Forwarded-Proto", "http");
        request.Headers.TryAddWithoutValidation("X-Forwarded-Port", "80");
        using var response = await other.SendAsync(request).WaitAsync(Timeout);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        // The raw head the upstream read: only the gateway's own X-Forwarded-For, naming the real peer.
        var head = Assert.Single(gw.Raw.Requests).HeadText;
        Assert.DoesNotContain("203.0.113.9", head, StringComparison.Ordinal);
        Assert.DoesNotContain("evil.example", head, StringComparison.Ordinal);
        var forwarding = head.Split("\r\n").Where(l => l.StartsWith("x-forwarded", StringComparison.OrdinalIgnoreCase)
            || l.StartsWith("forwarded", StringComparison.OrdinalIgnoreCase) || l.StartsWith("x-real-ip", StringComparison.OrdinalIgnoreCase));
        Assert.Equal(["X-Forwarded-For: 127.0.0.2"], forwarding);
        var e = EventOf(await EventsAfterStopAsync(gw), "/api/v1/namespaces/dev/pods?via=other");
        Assert.Equal(["127.0.0.2"], SourceIps(e));
    }

    [Fact]
    public async Task Forwarded_header_names_the_client_and_an_unreadable_one_is_refused_not_blamed_on_the_proxy()
    {
        await using var gw = await StartAsync("  trustedProxies: [127.0.0.1/32]\n").WaitAsync(Timeout);
        var jane = gw.Pki.IssueClient("jane", "developers");
        var ok = await RawHttps.SendAsync(gw, jane,
            "GET /api/v1/namespaces/dev/pods?f=1 HTTP/1.1\nHost: localhost\nForwarded: for=\"[2001:db8:cafe::17]:4711\";proto=https, for=127.0.0.1\nConnection: close\n\n").WaitAsync(Timeout);
        Assert.StartsWith("HTTP/1.1 200", ok, StringComparison.Ordinal);
        var junk = await RawHttps.SendAsync(gw, jane,
            "GET /api/v1/namespaces/dev/pods?f=2 HTTP/1.1\nHost: localhost\nForwarded: for=198.51.100.7, for=unknown\nConnection: close\n\n").WaitAsync(Timeout);
        Assert.StartsWith("HTTP/1.1 400", junk, StringComparison.Ordinal);
        // nginx appends X-Forwarded-For and passes the client's own Forwarded through: two different clients, refused.
        var spoof = await RawHttps.SendAsync(gw, jane,
            "GET /api/v1/namespaces/dev/pods?f=3 HTTP/1.1\nHost: localhost\nForwarded: for=10.0.0.1\nX-Forwarded-For: 198.51.100.7\nConnection: close\n\n").WaitAsync(Timeout);
        Assert.StartsWith("HTTP/1.1 400", spoof, StringComparison.Ordinal);

        Assert.Equal(["2001:db8:cafe::17, 127.0.0.1"], Assert.Single(gw.Upstream.Requests).Values("X-Forwarded-For"));
        var events = await EventsAfterStopAsync(gw);
        Assert.Equal(["2001:db8:cafe::17", "127.0.0.1"], SourceIps(EventOf(events, "/api/v1/namespaces/dev/pods?f=1")));
        var refused = EventOf(events, "/api/v1/namespaces/dev/pods?f=2");
        Assert.Equal("http", Annotation(refused, "portcullis.dev/rejected-by"));
        Assert.Equal(["127.0.0.1"], SourceIps(refused));
    }

    [Fact]
    public async Task Network_deny_applies_to_the_forwarded_client_per_request_and_is_audited()
    {
        await using var gw = await StartAsync("  trustedProxies: [127.0.0.1/32]\n  deny: [203.0.113.0/24]\n").WaitAsync(Timeout);
        using var proxy = gw.Client(gw.Pki.IssueClient("jane", "developers"), localAddress: IPAddress.Loopback);

        using var denied = new HttpRequestMessage(HttpMethod.Get, "/api/v1/namespaces/dev/pods?who=denied");
        denied.Headers.Add("X-Forwarded-For", "203.0.113.9");
        using (var response = await proxy.SendAsync(denied).WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.NotEqual(true, response.Headers.ConnectionClose); // the proxy's connection serves its other clients
        }
        using var allowed = new HttpRequestMessage(HttpMethod.Get, "/api/v1/namespaces/dev/pods?who=allowed");
        allowed.Headers.Add("X-Forwarded-For", "198.51.100.7");
        using (var response = await proxy.SendAsync(allowed).WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Single(gw.Upstream.Requests);
        using (var admin = new HttpClient { BaseAddress = gw.AdminUri })
        {
            Assert.Contains("portcullis_requests_rejected_total{layer=\"network\",code=\"403\"} 1", await admin.GetStringAsync("/metrics").WaitAsync(Timeout), StringComparison.Ordinal);
        }
        var e = EventOf(await EventsAfterStopAsync(gw), "/api/v1/namespaces/dev/pods?who=denied");
        Assert.Equal("network", Annotation(e, "portcullis.dev/rejected-by"));
        Assert.Equal(403, Code(e));
        Assert.Equal(["203.0.113.9", "127.0.0.1"], SourceIps(e));
    }

    [Fact]
    public async Task A_forwarded_client_failing_authentication_is_banned_per_request_and_the_proxy_never_is()
    {
        await using var gw = await StartAsync("  trustedProxies: [127.0.0.1/32]\n  autoBan:\n    enabled: true\n    failures: 3\n    window: 5m\n    duration: 1h\n").WaitAsync(Timeout);
        using var proxy = gw.Client(localAddress: IPAddress.Loopback);
        async Task<HttpResponseMessage> SendAsync(string client, string token)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/namespaces/dev/pods");
            request.Headers.Add("X-Forwarded-For", client);
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            return await proxy.SendAsync(request).WaitAsync(Timeout);
        }

        for (var i = 0; i < 3; i++)
        {
            using var refused = await SendAsync("203.0.113.9", "not-a-token");
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.NotEqual(true, refused.Headers.ConnectionClose);
        }
        // Banned now: even with a good token, on the proxy's same connection, the client is refused.
        using (var banned = await SendAsync("203.0.113.9", "token-jane"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, banned.StatusCode);
        }
        // Another client behind the same proxy, and the proxy itself, still get in.
        using (var other = await SendAsync("198.51.100.7", "token-jane"))
        {
            Assert.Equal(HttpStatusCode.OK, other.StatusCode);
        }
        using var admin = new HttpClient { BaseAddress = gw.AdminUri };
        var bans = JsonDocument.Parse(await admin.GetStringAsync("/bans").WaitAsync(Timeout)).RootElement.GetProperty("bans");
        Assert.Equal(["203.0.113.9"], bans.EnumerateArray().Select(b => b.GetProperty("ip").GetString()!).ToArray());
        Assert.Single(gw.Upstream.Requests);
    }

    [Fact]
    public async Task The_deny_list_source_cidr_and_network_scopes_see_the_forwarded_client()
    {
        await using var gw = await GatewayTestHost.StartAsync(
            "network:\n  trustedProxies: [127.0.0.1/32]\n",
            // The host writes authorization.modes from this value: the scope rides along in that section.
            modes: "[AlwaysAllow]\n  networkScopes:\n  - subjects: [{kind: Group, name: system:masters}]\n    allow: [192.168.1.0/24]",
            denyList: "apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries:\n- sourceCIDR: 203.0.113.0/24\n  reason: hostile range\n").WaitAsync(Timeout);
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"), localAddress: IPAddress.Loopback);
        using var root = gw.Client(gw.Pki.IssueClient("root", "system:masters"), localAddress: IPAddress.Loopback);
        async Task<HttpStatusCode> FromAsync(HttpClient client, string forwardedFor)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/namespaces/dev/pods");
            request.Headers.Add("X-Forwarded-For", forwardedFor);
            using var response = await client.SendAsync(request).WaitAsync(Timeout);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.Forbidden, await FromAsync(jane, "203.0.113.9")); // the deny list's sourceCIDR
        Assert.Equal(HttpStatusCode.OK, await FromAsync(jane, "198.51.100.7"));
        Assert.Equal(HttpStatusCode.Forbidden, await FromAsync(root, "198.51.100.7")); // masters only from 192.168.1.0/24
        Assert.Equal(HttpStatusCode.OK, await FromAsync(root, "192.168.1.20"));
        Assert.Equal(2, gw.Upstream.Requests.Count);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_proxy_protocol_header_from_a_trusted_peer_names_the_real_client(int version)
    {
        await using var gw = await StartAsync("  trustedProxies: [127.0.0.1/32]\n  proxyProtocol: true\n").WaitAsync(Timeout);
        var client = new IPEndPoint(IPAddress.Parse("198.51.100.7"), 51234);
        var header = version == 1
            ? ProxyProtocol.FormatV1(client, new IPEndPoint(IPAddress.Loopback, gw.Uri.Port))
            : ProxyProtocol.FormatV2(client, new IPEndPoint(IPAddress.Loopback, gw.Uri.Port), [0x04, 0x00, 0x02, 0x00, 0x00]); // a NOOP TLV, skipped
        var response = await SendOverProxyAsync(gw, IPAddress.Loopback, header, $"/api/v1/namespaces/dev/pods?v={version}");
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);

        Assert.Equal(["198.51.100.7"], Assert.Single(gw.Upstream.Requests).Values("X-Forwarded-For"));
        var e = EventOf(await EventsAfterStopAsync(gw), $"/api/v1/namespaces/dev/pods?v={version}");
        Assert.Equal(["198.51.100.7"], SourceIps(e));
        Assert.Equal("jane", e.GetProperty("user").GetProperty("username").GetString());
    }

    [Fact]
    public async Task Network_allow_applies_to_the_client_a_proxy_protocol_header_names()
    {
        await using var gw = await StartAsync("  trustedProxies: [127.0.0.1/32]\n  proxyProtocol: true\n  deny: [203.0.113.0/24]\n").WaitAsync(Timeout);
        var header = ProxyProtocol.FormatV2(new IPEndPoint(IPAddress.Parse("203.0.113.9"), 1), new IPEndPoint(IPAddress.Loopback, gw.Uri.Port));
        await AssertClosedWithoutTlsAsync(gw, IPAddress.Loopback, header);
        Assert.Contains("portcullis_network_refused_connections_total{reason=\"network_policy\"} 1", await MetricsAsync(gw), StringComparison.Ordinal);
    }

    public static TheoryData<string, byte[]> Refused => new()
    {
        { "a header from a peer that is not trusted", ProxyProtocol.FormatV1(new IPEndPoint(IPAddress.Parse("198.51.100.7"), 1), new IPEndPoint(IPAddress.Loopback, 443)) },
        { "a v2 header from a peer that is not trusted", ProxyProtocol.FormatV2(new IPEndPoint(IPAddress.Parse("198.51.100.7"), 1), new IPEndPoint(IPAddress.Loopback, 443)) },
        { "a malformed v1 header", "PROXY TCP4 198.51.100.7 127.0.0.1 99999 443\r\n"u8.ToArray() },
        { "a v1 line never ended", Encoding.ASCII.GetBytes("PROXY TCP4 198.51.100.7 " + new string('1', 120)) },
        { "a malformed v2 header", [.. ProxyProtocol.Signature, 0x21, 0x11, 0x00, 0x04, 1, 2, 3, 4] },
        { "an oversized v2 header", [.. ProxyProtocol.Signature, 0x21, 0x11, 0xFF, 0xFF] },
        { "no header from a trusted peer (TLS at once)", [0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x03] },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task Refused_proxy_protocol_headers_close_the_connection_before_tls(string refused, byte[] bytes)
    {
        await using var gw = await StartAsync("  trustedProxies: [127.0.0.1/32]\n  proxyProtocol: true\n").WaitAsync(Timeout);
        var from = refused.Contains("not trusted", StringComparison.Ordinal) ? Other : IPAddress.Loopback;
        await AssertClosedWithoutTlsAsync(gw, from, bytes);
        await AssertEventuallyAsync(async () => (await MetricsAsync(gw)).Contains(
            "portcullis_network_refused_connections_total{reason=\"proxy_protocol\"} 1", StringComparison.Ordinal));
        Assert.Empty(gw.Upstream.Requests);
    }

    [Fact]
    public async Task Another_peer_without_a_header_is_served_as_itself()
    {
        await using var gw = await StartAsync("  trustedProxies: [127.0.0.1/32]\n  proxyProtocol: true\n").WaitAsync(Timeout);
        using var other = gw.Client(gw.Pki.IssueClient("jane", "developers"), localAddress: Other);
        using var response = await other.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["127.0.0.2"], Assert.Single(gw.Upstream.Requests).Values("X-Forwarded-For"));
    }

    [Fact]
    public async Task Real_curl_sends_proxy_v1_and_is_served_from_a_trusted_peer_and_refused_from_another()
    {
        await using var gw = await StartAsync("  trustedProxies: [127.0.0.3/32]\n  proxyProtocol: true\n").WaitAsync(Timeout);
        TestPki.WritePem(gw.Pki.IssueClient("jane", "developers"), Path.Combine(gw.Dir, "jane.crt"), Path.Combine(gw.Dir, "jane.key"));
        var url = new Uri(gw.Uri, "/api/v1/namespaces/dev/pods?curl=1").ToString();

        var (code, output) = await CurlAsync(gw.Dir, "--haproxy-protocol", "--interface", "127.0.0.3", url);
        Assert.True(code == 0, output);
        Assert.EndsWith("200", output.TrimEnd(), StringComparison.Ordinal);

        var (refusedCode, refusedOutput) = await CurlAsync(gw.Dir, "--haproxy-protocol", "--interface", "127.0.0.2", url.Replace("curl=1", "curl=2", StringComparison.Ordinal));
        Assert.True(refusedCode != 0, refusedOutput); // closed before TLS: curl fails the handshake

        Assert.Single(gw.Upstream.Requests);
        var e = EventOf(await EventsAfterStopAsync(gw), "/api/v1/namespaces/dev/pods?curl=1");
        Assert.Equal(["127.0.0.3"], SourceIps(e)); // curl names its own address, the one it connected from
    }

    [Fact]
    public async Task Both_fields_are_reloaded_without_a_restart()
    {
        await using var gw = await GatewayTestHost.StartAsync().WaitAsync(Timeout);
        using var proxy = gw.Client(gw.Pki.IssueClient("jane", "developers"), localAddress: IPAddress.Loopback);
        async Task<string> ForwardedAsync(int i)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/namespaces/dev/pods?i={i}");
            request.Headers.Add("X-Forwarded-For", "203.0.113.9");
            using var response = await proxy.SendAsync(request).WaitAsync(Timeout);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return Assert.Single(gw.Upstream.Requests, r => r.PathAndQuery.EndsWith($"?i={i}", StringComparison.Ordinal)).Values("X-Forwarded-For").Single();
        }
        Assert.Equal("127.0.0.1", await ForwardedAsync(1)); // not trusted yet: the header is ignored

        var swapped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        gw.Host.Snapshots.Swapped += _ => swapped.TrySetResult();
        gw.WriteConfig("network:\n  trustedProxies: [127.0.0.1/32]\n  proxyProtocol: true\n");
        await swapped.Task.WaitAsync(Timeout);

        Assert.Equal("203.0.113.9, 127.0.0.1", await ForwardedAsync(2)); // the open connection's next request
        // proxyProtocol applies to new connections: one from the trusted peer without a header is closed now.
        await AssertClosedWithoutTlsAsync(gw, IPAddress.Loopback, [0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x03]);
        var metrics = await MetricsAsync(gw);
        Assert.DoesNotContain("network.trustedProxies", metrics, StringComparison.Ordinal); // not restart-required
        Assert.DoesNotContain("network.proxyProtocol", metrics, StringComparison.Ordinal);
    }

    // A raw socket from `from`: the PROXY header, then TLS over the same socket and one HTTP/1.1 request.
    private static async Task<string> SendOverProxyAsync(GatewayTestHost gw, IPAddress from, byte[] header, string path)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(from, 0));
        await socket.ConnectAsync(IPAddress.Loopback, gw.Uri.Port).WaitAsync(Timeout);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(header).AsTask().WaitAsync(Timeout);
        var jane = gw.Pki.IssueClient("jane", "developers");
        await using var tls = new SslStream(stream);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && gw.ValidateServer(cert),
            ClientCertificates = [jane],
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        }).WaitAsync(Timeout);
        await tls.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")).AsTask().WaitAsync(Timeout);
        return await RawHttps.ReadToEndAsync(tls);
    }

    // The bytes are sent; the gateway must close the connection without writing a byte (no ServerHello).
    private static async Task AssertClosedWithoutTlsAsync(GatewayTestHost gw, IPAddress from, byte[] bytes)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(from, 0));
        var buffer = new byte[64];
        try
        {
            await socket.ConnectAsync(IPAddress.Loopback, gw.Uri.Port).WaitAsync(Timeout);
            await socket.SendAsync(bytes).WaitAsync(Timeout);
            // Within the header timeout (5 s) at worst, the gateway closes: 0 bytes, or a reset.
            var read = await socket.ReceiveAsync(buffer).WaitAsync(Timeout);
            Assert.Equal(0, read);
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
        {
            // reset: no bytes either
        }
    }

    private static async Task<string> MetricsAsync(GatewayTestHost gw)
    {
        using var admin = new HttpClient { BaseAddress = gw.AdminUri };
        return await admin.GetStringAsync("/metrics").WaitAsync(Timeout);
    }

    private static async Task AssertEventuallyAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition did not hold within " + Timeout);
            await Task.Delay(50);
        }
    }

    private static async Task<(int Code, string Output)> CurlAsync(string dir, params string[] args)
    {
        var info = new ProcessStartInfo("curl", ["-sS", "--max-time", "20", "--cacert", "ca.crt", "--cert", "jane.crt", "--key", "jane.key",
            "-o", "/dev/null", "-w", "%{http_code}", .. args])
        {
            WorkingDirectory = dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        using var curl = Process.Start(info)!;
        curl.StandardInput.Close();
        var stdout = curl.StandardOutput.ReadToEndAsync();
        var stderr = curl.StandardError.ReadToEndAsync();
        await curl.WaitForExitAsync().WaitAsync(Timeout);
        return (curl.ExitCode, await stdout + await stderr);
    }
}
