using System.Net;
using System.Text.Json;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue #13 finding 3: an identity with CR/LF must never be written on the wire. A client certificate whose CN or O a
/// CSR signer let through is refused with 401 (audited with the reason), and Impersonate-* values that could not be
/// forwarded unchanged are 400; in both cases the upstream sees nothing.
/// </summary>
public sealed class IdentityInjectionTests
{
    private const string Policy = """
        apiVersion: audit.k8s.io/v1
        kind: Policy
        omitStages: [RequestReceived]
        rules:
        - level: Metadata
        """;

    // AlwaysAllow: before the fix, these identities were authorized and forwarded, so the upstream recorded the request.
    private static Task<GatewayTestHost> StartAsync() =>
        GatewayTestHost.StartAsync("audit:\n  policyFile: audit-policy.yaml\n  log:\n    path: audit.log\n    mode: blocking",
            files: new() { ["audit-policy.yaml"] = Policy });

    private static List<JsonElement> Events(GatewayTestHost gw) =>
        [.. File.ReadAllLines(Path.Combine(gw.Dir, "audit.log")).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement)];

    public static TheoryData<string, string[], string> Certificates => new()
    {
        { "eve\r\nImpersonate-Group: system:masters", ["developers"], "x509: user name contains a control character (U+000D)" },
        { "eve", ["developers", "dev\r\n\r\nDELETE /api/v1/namespaces/kube-system/pods HTTP/1.1\r\nHost: upstream\r\n\r\n"], "x509: group 2 contains a control character (U+000D)" },
        { "admin ", ["developers"], "x509: user name ends with whitespace (U+0020)" },
    };

    [Theory]
    [MemberData(nameof(Certificates))]
    public async Task Client_certificate_naming_an_unforwardable_identity_is_401_audited_and_never_forwarded(string cn, string[] groups, string reason)
    {
        await using var gw = await StartAsync();
        using (var client = gw.Client(gw.Pki.IssueClient(cn, groups)))
        {
            using var response = await client.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            var body = await response.Content.ReadAsStringAsync().WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Contains("\"reason\":\"Unauthorized\"", body, StringComparison.Ordinal);
            Assert.DoesNotContain("control character", body, StringComparison.Ordinal); // the reason is for the audit log, not the client
        }
        await gw.Host.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Empty(gw.Upstream.Requests);
        var e = Assert.Single(Events(gw));
        Assert.Equal("ResponseStarted", e.GetProperty("stage").GetString());
        Assert.Equal(401, e.GetProperty("responseStatus").GetProperty("code").GetInt32());
        Assert.False(e.GetProperty("user").TryGetProperty("username", out _));
        Assert.Equal(reason, e.GetProperty("annotations").GetProperty("portcullis.dev/authentication").GetString());
        var log = File.ReadAllText(Path.Combine(gw.Dir, "audit.log"));
        Assert.DoesNotContain("system:masters", log, StringComparison.Ordinal);
        Assert.DoesNotContain("DELETE", log, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> ImpersonationHeaders => new()
    {
        { "Impersonate-User: jane\nImpersonate-Group: dev\tops", "invalid impersonation header Impersonate-Group: its value contains a control character (U+0009)" },
        { "Impersonate-User: jane\nImpersonate-Extra-a%0D%0AImpersonate-Group: system:masters", "invalid impersonation header Impersonate-Extra-a%0D%0AImpersonate-Group: its decoded extra key contains a control character (U+000D)" },
        { "Impersonate-User: jane\nImpersonate-Extra-scopes%20: view", "invalid impersonation header Impersonate-Extra-scopes%20: its decoded extra key ends with whitespace (U+0020)" },
        { "Impersonate-User: jane\u007F", "invalid impersonation header Impersonate-User: its value contains a control character (U+007F)" }, // Kestrel lets DEL through
    };

    [Theory]
    [MemberData(nameof(ImpersonationHeaders))]
    public async Task Impersonation_values_that_cannot_be_forwarded_unchanged_are_400_and_never_forwarded(string headers, string message)
    {
        await using var gw = await StartAsync();
        // root is in system:masters, so it may impersonate anyone: only the values themselves are wrong.
        var response = await RawHttps.SendAsync(gw, null,
            $"GET /api/v1/namespaces/dev/pods HTTP/1.1\nHost: localhost\nAuthorization: Bearer token-root\n{headers}\nConnection: close\n\n");

        Assert.StartsWith("HTTP/1.1 400", response, StringComparison.Ordinal);
        Assert.Contains(message, response, StringComparison.Ordinal);
        Assert.Empty(gw.Upstream.Requests);
    }
}
