using System.Text.Json;
using Portcullis.Gateway.Tests.Infrastructure;
using static Portcullis.Gateway.Tests.AuditFidelityTests;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue 13, finding 11: requests the gateway refuses before authentication (a dot-segment path, too many or too large
/// headers) are in the audit log, refused by <c>http</c> with the reason; only what Kestrel refuses by itself is not.
/// </summary>
public sealed class RefusedRequestAuditTests
{
    [Fact]
    public async Task A_dot_segment_path_refused_with_400_is_audited_as_refused_by_http()
    {
        await using var gw = await StartAsync();

        var response = await RawHttps.SendAsync(gw, null,
            "GET /api/v1/namespaces/dev/../kube-system/secrets HTTP/1.1\nHost: localhost\nUser-Agent: attack-suite\nConnection: close\n\n");

        Assert.StartsWith("HTTP/1.1 400", response);
        Assert.Empty(gw.Upstream.Requests);
        var e = Assert.Single(await EventsAfterStopAsync(gw));
        Assert.Equal("ResponseComplete", e.GetProperty("stage").GetString());
        Assert.Equal("/api/v1/namespaces/dev/../kube-system/secrets", e.GetProperty("requestURI").GetString());
        Assert.Equal("get", e.GetProperty("verb").GetString());
        Assert.Empty(e.GetProperty("user").EnumerateObject());
        Assert.Equal("attack-suite", e.GetProperty("userAgent").GetString());
        Assert.Equal(400, Code(e));
        Assert.Equal("BadRequest", e.GetProperty("responseStatus").GetProperty("reason").GetString());
        Assert.Equal("http", Annotation(e, "portcullis.dev/rejected-by"));
        Assert.Equal("the request path contains a dot segment (. or ..)", Annotation(e, "portcullis.dev/reason"));
    }

    [Theory]
    [InlineData(150, 10, "^the request has 152 header lines; the gateway accepts at most 100$")]
    [InlineData(1, 70 * 1024, "^the request headers take 717[0-9][0-9] bytes; the gateway accepts at most 65536$")]
    public async Task Too_many_or_too_large_headers_are_refused_with_431_and_audited(int lines, int valueLength, string reason)
    {
        await using var gw = await StartAsync();
        var value = new string('v', valueLength);
        var headers = string.Concat(Enumerable.Range(0, lines).Select(i => $"X-Pad-{i}: {value}\n"));

        var response = await RawHttps.SendAsync(gw, gw.Pki.IssueClient("jane", "developers"),
            $"GET /api/v1/namespaces/dev/pods HTTP/1.1\nHost: localhost\n{headers}Connection: close\n\n");

        Assert.StartsWith("HTTP/1.1 431 Request Header Fields Too Large", response);
        Assert.EndsWith("\r\n\r\n431 Request Header Fields Too Large", response);
        Assert.Empty(gw.Upstream.Requests);
        var e = Assert.Single(await EventsAfterStopAsync(gw));
        Assert.Equal(431, Code(e));
        Assert.Equal("list", e.GetProperty("verb").GetString());
        Assert.Empty(e.GetProperty("user").EnumerateObject()); // refused before authentication
        Assert.Equal("http", Annotation(e, "portcullis.dev/rejected-by"));
        Assert.Matches(reason, Annotation(e, "portcullis.dev/reason"));
    }

    [Fact]
    public async Task Headers_beyond_Kestrels_hard_limit_get_Kestrels_431_and_no_event()
    {
        await using var gw = await StartAsync();
        var headers = string.Concat(Enumerable.Range(0, 2100).Select(i => $"X-Pad-{i}: v\n"));

        var response = await RawHttps.SendAsync(gw, null, $"GET /api/v1/namespaces/dev/pods HTTP/1.1\nHost: localhost\n{headers}Connection: close\n\n");

        Assert.StartsWith("HTTP/1.1 431", response);
        Assert.Empty(await EventsAfterStopAsync(gw)); // documented in docs/gateway.md: Kestrel refuses before any layer runs
    }
}
