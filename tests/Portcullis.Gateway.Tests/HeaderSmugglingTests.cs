using System.Net;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>spec/bad-inputs.md §1 items 1–5: no client-supplied identity header ever reaches the upstream.</summary>
public sealed class HeaderSmugglingTests : IAsyncLifetime
{
    private GatewayTestHost _gw = null!;

    // RBAC: jane (group developers) may read pods but may not impersonate anyone.
    public async Task InitializeAsync() => _gw = await GatewayTestHost.StartAsync(modes: "[RBAC]");

    public async Task DisposeAsync() => await _gw.DisposeAsync();

    private void AssertUpstreamSawOnlyGatewayIdentity(string user)
    {
        var seen = Assert.Single(_gw.Upstream.Requests);
        Assert.Equal([user], seen.Values("Impersonate-User"));
        Assert.DoesNotContain(seen.Headers.Keys, k => k.Replace('_', '-').StartsWith("x-remote-", StringComparison.OrdinalIgnoreCase));
        Assert.Empty(seen.Values("Impersonate-Uid"));
        Assert.DoesNotContain(seen.Headers.Keys, k => k.Contains("Impersonate_", StringComparison.OrdinalIgnoreCase) || k.StartsWith("Impersonate-Extra-", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain("system:masters", seen.Values("Impersonate-Group"));
        Assert.Empty(seen.Values("Authorization"));
    }

    // Impersonate-* headers are kubectl --as: authorized by L4 as kube-apiserver does, never passed on.
    [Theory]
    [InlineData("Impersonate-User: admin", 403)]
    [InlineData("impersonate-user: admin", 403)]
    [InlineData("IMPERSONATE-USER: admin", 403)]
    [InlineData("Impersonate-User: system:serviceaccount:kube-system:default", 403)]
    [InlineData("Impersonate-User: admin\nImpersonate-Group: system:masters", 403)]
    [InlineData("Impersonate-Group: system:masters", 400)]
    [InlineData("Impersonate-Uid: 0", 400)]
    [InlineData("Impersonate-Extra-scopes: all", 400)]
    [InlineData("Impersonate-Extra-originaluser.jetstack.io-user: admin", 400)]
    [InlineData("Impersonate-User: \nImpersonate-Group: g", 400)]
    public async Task Impersonation_without_the_right_is_refused_and_never_forwarded(string header, int code)
    {
        var response = await RawHttps.SendAsync(_gw, _gw.Pki.IssueClient("jane", "developers"),
            $"GET /api/v1/pods HTTP/1.1\nHost: localhost\n{header}\nConnection: close\n\n");

        Assert.StartsWith($"HTTP/1.1 {code}", response);
        if (code == 403)
        {
            Assert.Contains("User \\\"jane\\\" cannot impersonate resource", response);
        }
        Assert.Empty(_gw.Upstream.Requests);
    }

    [Fact]
    public async Task Impersonation_allowed_for_system_masters_forwards_the_impersonated_user()
    {
        var response = await RawHttps.SendAsync(_gw, _gw.Pki.IssueClient("root", "system:masters"),
            "GET /api/v1/pods HTTP/1.1\nHost: localhost\nImpersonate-User: jane\nImpersonate-Group: developers\nImpersonate-Group: qa\nConnection: close\n\n");

        Assert.StartsWith("HTTP/1.1 200", response);
        var seen = Assert.Single(_gw.Upstream.Requests);
        Assert.Equal(["jane"], seen.Values("Impersonate-User"));
        Assert.Equal(["developers", "qa"], seen.Values("Impersonate-Group"));
    }

    // Lookalike and requestheader names are not impersonation: they are stripped and the request runs as jane.
    public static TheoryData<string> SmuggledHeaders => new()
    {
        "Impersonate_User: admin",
        "impersonate_group: system:masters",
        "Impersonate_Extra_scopes: all",
        "X-Remote-User: admin",
        "x-remote-group: system:masters",
        "X_Remote_User: admin",
        "X-Remote-Extra-scopes: all",
        "X-Remote-Uid: 0",
    };

    [Theory]
    [MemberData(nameof(SmuggledHeaders))]
    public async Task Identity_header_from_the_client_never_reaches_the_upstream(string header)
    {
        var response = await RawHttps.SendAsync(_gw, _gw.Pki.IssueClient("jane", "developers"),
            $"GET /api/v1/pods HTTP/1.1\nHost: localhost\n{header}\nConnection: close\n\n");

        Assert.StartsWith("HTTP/1.1 200", response);
        AssertUpstreamSawOnlyGatewayIdentity("jane");
        Assert.Equal(["developers"], _gw.Upstream.Requests[0].Values("Impersonate-Group"));
    }

    [Fact]
    public async Task Repeated_identity_headers_are_all_removed()
    {
        var repeated = string.Concat(Enumerable.Range(0, 40).Select(i => $"Impersonate_Group: g{i}\nX-Remote-User: u{i}\n"));
        var response = await RawHttps.SendAsync(_gw, _gw.Pki.IssueClient("jane", "developers"),
            $"GET /api/v1/pods HTTP/1.1\nHost: localhost\n{repeated}Connection: close\n\n");

        Assert.StartsWith("HTTP/1.1 200", response);
        AssertUpstreamSawOnlyGatewayIdentity("jane");
    }

    [Fact]
    public async Task A_thousand_repeated_impersonation_headers_are_refused_with_431()
    {
        var repeated = string.Concat(Enumerable.Range(0, 1000).Select(i => $"Impersonate-Group: g{i}\n"));
        var response = await RawHttps.SendAsync(_gw, _gw.Pki.IssueClient("jane", "developers"),
            $"GET /api/v1/pods HTTP/1.1\nHost: localhost\n{repeated}Connection: close\n\n");

        Assert.StartsWith("HTTP/1.1 431", response);
        Assert.Empty(_gw.Upstream.Requests);
    }

    [Fact]
    public async Task Http2_lowercase_identity_headers_are_removed()
    {
        using var client = _gw.Client(_gw.Pki.IssueClient("jane", "developers"), version: HttpVersion.Version20);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/pods") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        request.Headers.TryAddWithoutValidation("impersonate_user", "admin");
        request.Headers.TryAddWithoutValidation("x-remote-group", "system:masters");
        request.Headers.TryAddWithoutValidation("x-forwarded-for", "10.0.0.1");

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(response.Version == HttpVersion.Version20, $"answered over HTTP/{response.Version}");
        AssertUpstreamSawOnlyGatewayIdentity("jane");
        Assert.Equal(["127.0.0.1"], _gw.Upstream.Requests[0].Values("X-Forwarded-For"));
    }

    [Theory]
    [InlineData("Connection: Impersonate-User")]
    [InlineData("Connection: impersonate-group, x-trace")]
    [InlineData("Connection: Impersonate-Extra-scopes")]
    [InlineData("Connection: Authorization")]
    [InlineData("Connection: X-Remote-User")]
    [InlineData("Connection: Audit-ID")]
    [InlineData("Connection:  IMPERSONATE_USER , x-trace")]
    [InlineData("Connection: x-trace\nConnection: Impersonate-Uid")]
    public async Task Connection_nominating_an_identity_header_is_refused_with_400(string connection)
    {
        var response = await RawHttps.SendAsync(_gw, _gw.Pki.IssueClient("jane", "developers"),
            $"GET /api/v1/pods HTTP/1.1\nHost: localhost\n{connection}\n\n");

        Assert.StartsWith("HTTP/1.1 400", response);
        Assert.Contains("\"reason\":\"BadRequest\"", response);
        Assert.Contains("may not nominate", response);
        Assert.Empty(_gw.Upstream.Requests);
    }

    // Kestrel collapses a Connection header whose only known token is keep-alive, close or Upgrade to that token before
    // application code runs, so these nominations cannot be seen. The attack still fails: the gateway removes every
    // identity header and then sets its own, and never forwards Connection.
    [Theory]
    [InlineData("Connection: keep-alive, impersonate-user, impersonate-group\nImpersonate_User: admin")]
    [InlineData("Connection: close, Impersonate-User\nX-Remote-User: admin")]
    [InlineData("Connection: Upgrade, x-remote-user\nX-Remote-User: admin")]
    [InlineData("Connection:  IMPERSONATE_USER ,close")]
    public async Task Connection_nomination_hidden_by_kestrel_cannot_strip_the_gateways_identity(string connection)
    {
        var response = await RawHttps.SendAndReadHeadAsync(_gw, _gw.Pki.IssueClient("jane", "developers"),
            $"GET /api/v1/pods HTTP/1.1\nHost: localhost\n{connection}\n\n");

        Assert.StartsWith("HTTP/1.1 200", response);
        AssertUpstreamSawOnlyGatewayIdentity("jane");
        Assert.Equal(["developers"], _gw.Upstream.Requests[0].Values("Impersonate-Group"));
        Assert.DoesNotContain(_gw.Upstream.Requests[0].Values("Connection"), v => v.Contains("mpersonate", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task Upgrade_with_nominated_identity_headers_keeps_the_gateways_identity()
    {
        var response = await RawHttps.SendAndReadHeadAsync(_gw, _gw.Pki.IssueClient("jane", "developers"),
            "GET /api/v1/namespaces/dev/pods/p1/exec?command=id HTTP/1.1\nHost: localhost\nConnection: Upgrade, x-remote-user, impersonate-user\nUpgrade: SPDY/3.1\nX-Remote-User: admin\nImpersonate_User: admin\n\n");

        Assert.StartsWith("HTTP/1.1 403", response); // the test upstream refuses upgrades
        AssertUpstreamSawOnlyGatewayIdentity("jane");
    }

    [Fact]
    public async Task Other_connection_nominated_headers_are_dropped_before_forwarding()
    {
        var response = await RawHttps.SendAsync(_gw, _gw.Pki.IssueClient("jane", "developers"),
            "GET /api/v1/pods HTTP/1.1\nHost: localhost\nX-Trace: 1\nConnection: X-Trace, keep-alive\nConnection: close\n\n");

        Assert.StartsWith("HTTP/1.1 200", response);
        Assert.Empty(_gw.Upstream.Requests[0].Values("X-Trace"));
    }

    [Theory]
    [InlineData("X-Forwarded-For: 10.9.9.9")]
    [InlineData("Forwarded: for=10.9.9.9")]
    [InlineData("X-Real-IP: 10.9.9.9")]
    public async Task Spoofed_forwarding_headers_are_replaced_by_the_real_peer(string header)
    {
        var response = await RawHttps.SendAsync(_gw, _gw.Pki.IssueClient("jane", "developers"),
            $"GET /api/v1/pods HTTP/1.1\nHost: localhost\n{header}\nConnection: close\n\n");

        Assert.StartsWith("HTTP/1.1 200", response);
        var seen = Assert.Single(_gw.Upstream.Requests);
        Assert.Equal(["127.0.0.1"], seen.Values("X-Forwarded-For"));
        Assert.Empty(seen.Values("Forwarded"));
        Assert.Empty(seen.Values("X-Real-IP"));
    }

    [Fact]
    public async Task Obs_fold_continuation_is_rejected_by_the_server()
    {
        var response = await RawHttps.SendAsync(_gw, _gw.Pki.IssueClient("jane", "developers"),
            "GET /api/v1/pods HTTP/1.1\nHost: localhost\nX-Note: a\n Impersonate-User: admin\nConnection: close\n\n");

        Assert.StartsWith("HTTP/1.1 400", response);
        Assert.Empty(_gw.Upstream.Requests);
    }
}
