using System.Net;
using System.Text;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue 13, findings 1, 2, 4, 5 and 10, checked where they matter: at an upstream that records the raw bytes it
/// receives. No client byte may reach the upstream wire except as the validated value of a header the gateway chose to
/// forward; the identity lines are exactly the ones the gateway decided; the Host and TLS server name are the upstream's.
/// </summary>
public sealed class UpstreamWireTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>The identity lines kube-apiserver reads, in wire order, and nothing that looks like one.</summary>
    private static void AssertIdentity(RawRequest seen, string prefix, string user, params string[] groups)
    {
        Assert.Empty(seen.Anomalies);
        var userHeader = prefix == "Impersonate-" ? "Impersonate-User" : "X-Remote-User";
        var groupHeader = prefix == "Impersonate-" ? "Impersonate-Group" : "X-Remote-Group";
        Assert.Equal([user], seen.Values(userHeader));
        Assert.Equal(groups, seen.Values(groupHeader));
        var other = prefix == "Impersonate-" ? "x-remote-" : "impersonate-";
        Assert.Empty(seen.NamesLike(other));
        Assert.Empty(seen.NamesLike("x-portcullis"));
        Assert.DoesNotContain(seen.Lines, l => l.Value.Contains("system:masters", StringComparison.Ordinal) && !groups.Contains("system:masters"));
    }

    // Finding 1: the gateway's former private marker, in every spelling, is just another client header to strip.
    public static TheoryData<string> MarkerHeaders => new()
    {
        "X-Portcullis-Split-Impersonate-User: admin\nX-Portcullis-Split-Impersonate-Group: system%3Amasters",
        "x-portcullis-split-impersonate-user: admin\nx-portcullis-split-impersonate-group: system:masters",
        "X_Portcullis_Split_Impersonate-User: admin\nX_Portcullis_Split_Impersonate-Group: system%3Amasters",
        "X-Portcullis-Split-X-Remote-User: admin\nX-Portcullis-Split-X-Remote-Group: system%3Amasters",
        "X-Portcullis-Identity: admin",
    };

    [Theory]
    [MemberData(nameof(MarkerHeaders))]
    public async Task A_marker_header_from_the_client_never_becomes_an_identity_line_over_http1(string headers)
    {
        await using var gw = await GatewayTestHost.StartAsync(modes: "[RBAC]", rawUpstream: true).WaitAsync(Timeout);

        var response = await RawHttps.SendAsync(gw, gw.Pki.IssueClient("jane", "developers"),
            $"GET /api/v1/namespaces/dev/pods HTTP/1.1\nHost: localhost\n{headers}\nConnection: close\n\n");

        Assert.StartsWith("HTTP/1.1 200", response);
        AssertIdentity(Assert.Single(gw.Raw.Requests), "Impersonate-", "jane", "developers");
    }

    [Theory]
    [InlineData("Impersonate")]
    [InlineData("RequestHeader")]
    public async Task A_marker_header_from_the_client_never_becomes_an_identity_line_over_http2(string identity)
    {
        await using var gw = await GatewayTestHost.StartAsync(modes: "[RBAC]", identity: identity, rawUpstream: true).WaitAsync(Timeout);
        using var client = gw.Client(gw.Pki.IssueClient("jane", "developers"), version: HttpVersion.Version20);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/namespaces/dev/pods") { Version = HttpVersion.Version20 };
        foreach (var real in new[] { "Impersonate-User", "Impersonate-Group", "X-Remote-User", "X-Remote-Group" })
        {
            request.Headers.TryAddWithoutValidation("X-Portcullis-Split-" + real, real.EndsWith("User", StringComparison.Ordinal) ? "admin" : "system%3Amasters");
        }

        using var response = await client.SendAsync(request).WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version20, response.Version);
        AssertIdentity(Assert.Single(gw.Raw.Requests), identity == "Impersonate" ? "Impersonate-" : "X-Remote-", "jane", "developers");
    }

    // Finding 2: an encoded CR LF in a header value was decoded into the wire and smuggled a second request.
    [Theory]
    [InlineData("X-Portcullis-Split-X")]
    [InlineData("X-Portcullis-Split-Impersonate-Group")]
    [InlineData("X-Anything")]
    public async Task An_encoded_CRLF_in_a_header_value_never_smuggles_a_second_request(string name)
    {
        await using var gw = await GatewayTestHost.StartAsync(modes: "[RBAC]", rawUpstream: true).WaitAsync(Timeout);
        const string Smuggled = "a%0D%0A%0D%0ADELETE%20/api/v1/namespaces/kube-system/secrets/etcd-key%20HTTP/1.1%0D%0AHost%3A%20x%0D%0AImpersonate-User%3A%20admin%0D%0AImpersonate-Group%3A%20system%3Amasters%0D%0AX-Pad%3A%20z";

        var response = await RawHttps.SendAsync(gw, gw.Pki.IssueClient("jane", "developers"),
            $"GET /api/v1/namespaces/dev/pods HTTP/1.1\nHost: localhost\n{name}: {Smuggled}\nConnection: close\n\n");

        Assert.StartsWith("HTTP/1.1 200", response);
        var seen = Assert.Single(gw.Raw.Requests);
        Assert.Equal("GET", seen.Method);
        Assert.DoesNotContain("DELETE", seen.HeadText.Replace(Smuggled, "", StringComparison.Ordinal), StringComparison.Ordinal);
        AssertIdentity(seen, "Impersonate-", "jane", "developers");
    }

    // Finding 4: a refused upgrade left its pooled connection in pass-through mode; the next requests lost their groups.
    [Fact]
    public async Task A_refused_upgrade_leaves_no_state_behind_for_the_next_hundred_requests()
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true).WaitAsync(Timeout);
        var jane = gw.Pki.IssueClient("jane", "developers", "qa");
        var root = gw.Pki.IssueClient("root", "system:masters");

        var refused = await RawHttps.SendAndReadHeadAsync(gw, jane,
            "GET /api/v1/namespaces/dev/pods/nope/exec?command=sh&stdin=true HTTP/1.1\nHost: localhost\nConnection: Upgrade\nUpgrade: SPDY/3.1\nX-Stream-Protocol-Version: v4.channel.k8s.io\n\n");
        Assert.StartsWith("HTTP/1.1 404", refused);

        using var asRoot = gw.Client(root);
        using var asJane = gw.Client(jane);
        for (var i = 0; i < 100; i++)
        {
            using var response = await (i % 2 == 0 ? asRoot : asJane).GetAsync($"/api/v1/namespaces/dev/pods?i={i}").WaitAsync(Timeout);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var seen = gw.Raw.Requests.Where(r => r.Target.Contains("?i=", StringComparison.Ordinal)).ToList();
        Assert.Equal(100, seen.Count);
        foreach (var request in seen)
        {
            Assert.Empty(request.Anomalies);
            Assert.Empty(request.NamesLike("x-portcullis"));
            var i = int.Parse(request.Target[(request.Target.IndexOf("?i=", StringComparison.Ordinal) + 3)..], System.Globalization.CultureInfo.InvariantCulture);
            if (i % 2 == 0)
            {
                Assert.Equal(["root"], request.Values("Impersonate-User"));
                Assert.Equal(["system:masters"], request.Values("Impersonate-Group"));
            }
            else
            {
                Assert.Equal(["jane"], request.Values("Impersonate-User"));
                Assert.Equal(["developers", "qa"], request.Values("Impersonate-Group"));
            }
        }
        // The refused upgrade's connection was not reused for any of them.
        var upgradeConnection = Assert.Single(gw.Raw.Requests, r => r.Target.Contains("/exec", StringComparison.Ordinal)).Connection;
        Assert.DoesNotContain(seen, r => r.Connection == upgradeConnection);
    }

    // Finding 5: another user's token rode along in the subprotocol list of a plain request.
    [Theory]
    [InlineData("base64url.bearer.authorization.k8s.io.dG9rZW4tcm9vdA")]
    [InlineData("v4.channel.k8s.io, base64url.bearer.authorization.k8s.io.dG9rZW4tcm9vdA")]
    [InlineData("base64url.bearer.authorization.k8s.io.dG9rZW4tcm9vdA, v4.channel.k8s.io")]
    public async Task A_bearer_subprotocol_entry_never_reaches_the_upstream_on_a_plain_request(string protocols)
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true).WaitAsync(Timeout);

        var response = await RawHttps.SendAsync(gw, gw.Pki.IssueClient("jane", "developers"),
            $"GET /api/v1/namespaces/dev/pods HTTP/1.1\nHost: localhost\nSec-WebSocket-Protocol: {protocols}\nConnection: close\n\n");

        Assert.StartsWith("HTTP/1.1 200", response);
        var seen = Assert.Single(gw.Raw.Requests);
        Assert.DoesNotContain("bearer.authorization.k8s.io", seen.HeadText, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("dG9rZW4tcm9vdA", seen.HeadText, StringComparison.Ordinal);
        var kept = seen.Values("Sec-WebSocket-Protocol").SelectMany(v => v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(protocols.Contains("v4", StringComparison.Ordinal) ? ["v4.channel.k8s.io"] : Array.Empty<string>(), kept);
        AssertIdentity(seen, "Impersonate-", "jane", "developers");
    }

    // Finding 10: the client chose the upstream's Host, TLS server name and certificate check.
    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task The_upstream_Host_and_server_name_come_from_the_kubeconfig_not_the_client(string version)
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true).WaitAsync(Timeout);
        using var client = gw.Client(gw.Pki.IssueClient("jane", "developers"), version: Version.Parse(version), hostName: "gateway.example.com");

        using var response = await client.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = Assert.Single(gw.Raw.Requests);
        Assert.Equal([gw.Raw.Uri.Authority], seen.Values("Host"));
        Assert.DoesNotContain("gateway.example.com", seen.HeadText, StringComparison.OrdinalIgnoreCase);
        Assert.True(string.IsNullOrEmpty(seen.ServerName), $"no SNI for an IP address server, got {seen.ServerName}");
    }

    [Fact]
    public async Task The_kubeconfig_tls_server_name_is_the_upstream_server_name_and_the_Host_stays_the_server()
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true, upstreamDnsName: "apiserver.internal",
            upstreamClusterExtra: "tls-server-name: apiserver.internal").WaitAsync(Timeout);
        using var client = gw.Client(gw.Pki.IssueClient("jane", "developers"), hostName: "gateway.example.com");

        using var response = await client.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = Assert.Single(gw.Raw.Requests);
        Assert.Equal("apiserver.internal", seen.ServerName);
        Assert.Equal([gw.Raw.Uri.Authority], seen.Values("Host"));
    }

    // Deliver 1: a client header value the upstream's parser would read differently is refused, not forwarded.
    [Theory]
    [InlineData("X-Note: a\u0001b")]
    [InlineData("X-Note: a\u007Fb")]
    [InlineData("X-Note: a\u000Bb")]
    public async Task A_client_header_value_with_a_control_character_is_refused_and_not_forwarded(string header)
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true).WaitAsync(Timeout);

        var response = await RawHttps.SendAsync(gw, gw.Pki.IssueClient("jane", "developers"),
            $"GET /api/v1/namespaces/dev/pods HTTP/1.1\nHost: localhost\n{header}\nConnection: close\n\n");

        Assert.StartsWith("HTTP/1.1 400", response);
        Assert.Empty(gw.Raw.Requests);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Bodies_that_look_like_headers_are_forwarded_byte_for_byte(bool chunked)
    {
        await using var gw = await GatewayTestHost.StartAsync(rawUpstream: true).WaitAsync(Timeout);
        using var client = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        const string Body = "{\"a\":\"\r\n\r\nGET / HTTP/1.1\r\nImpersonate-User: admin\r\n\r\n0\r\n\r\n\"}";
        using var content = chunked ? (HttpContent)new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(Body))) : new StringContent(Body, Encoding.UTF8);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/namespaces/dev/configmaps") { Content = content };
        request.Headers.TransferEncodingChunked = chunked;

        using var response = await client.SendAsync(request).WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = Assert.Single(gw.Raw.Requests);
        Assert.Equal(Body, Encoding.UTF8.GetString(seen.Body));
        AssertIdentity(seen, "Impersonate-", "jane", "developers");
    }
}
