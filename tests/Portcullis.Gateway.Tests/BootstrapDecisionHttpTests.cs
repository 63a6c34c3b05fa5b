using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Portcullis.Authorization.Tests;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// One gateway with <c>modes: [RBAC]</c> over the real bootstrap policy (Portcullis.Authorization.Tests/fixtures/rbac,
/// attribution in its SOURCES.md, plus fixtures/rbac-local), copied into this test's output by the project reference.
/// Anonymous access is on so the <c>system:unauthenticated</c> rows can be sent without a credential.
/// </summary>
public sealed class BootstrapGatewayFixture : IAsyncLifetime
{
    private readonly ConcurrentDictionary<string, HttpClient> _clients = new(StringComparer.Ordinal);

    public GatewayTestHost Gateway { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var fixtures = BootstrapDecisionTable.FixturesDirectory;
        var rbac = Path.Combine(fixtures, "rbac");
        var local = Path.Combine(fixtures, "rbac-local");
        Assert.True(File.Exists(Path.Combine(rbac, "cluster-roles.yaml")), $"bootstrap fixtures missing in {rbac}");
        Gateway = await GatewayTestHost.StartAsync(modes: "[RBAC]", anonymous: "{enabled: true}", rbacManifests: $"['{rbac}', '{local}']")
            .WaitAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>
    /// A client that authenticates as the row's user: no credential for <c>system:anonymous</c>, otherwise a client
    /// certificate with CN = user and one O per group (<c>system:authenticated</c> is added by the gateway). Service
    /// account users get a certificate too: authorization sees only the user name and groups, not how they were proven.
    /// </summary>
    public HttpClient ClientFor(BootstrapDecision row) =>
        _clients.GetOrAdd(row.User + "|" + row.Groups, _ =>
        {
            var groups = row.Groups.Split(',', StringSplitOptions.RemoveEmptyEntries);
            if (row.User == "system:anonymous" && groups.Contains("system:unauthenticated"))
            {
                return Gateway.Client();
            }
            return Gateway.Client(Gateway.Pki.IssueClient(row.User, [.. groups.Where(g => g != "system:authenticated")]));
        });

    public async Task DisposeAsync()
    {
        foreach (var client in _clients.Values)
        {
            client.Dispose();
        }
        if (Gateway is not null)
        {
            await Gateway.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        }
    }
}

/// <summary>
/// Issue 5: the bootstrap decision table (the same rows <c>explain</c> and the Core tests check) sent as HTTP requests
/// through the gateway. Allowed rows must reach the upstream and come back 2xx; denied rows must be answered 403 by the
/// gateway and never reach the upstream. Requests are matched to what the upstream saw by a per-request Audit-ID, so
/// the rows are independent of each other and of their order.
/// </summary>
public sealed class BootstrapDecisionHttpTests(BootstrapGatewayFixture fixture) : IClassFixture<BootstrapGatewayFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    public static TheoryData<int, string> Rows()
    {
        var data = new TheoryData<int, string>();
        for (var i = 0; i < BootstrapDecisionTable.All.Count; i++)
        {
            data.Add(i, BootstrapDecisionTable.All[i].ToString());
        }
        return data;
    }

    [Fact]
    public void The_table_has_at_least_60_decisions_both_ways()
    {
        Assert.True(BootstrapDecisionTable.All.Count >= 60);
        Assert.Contains(BootstrapDecisionTable.All, r => r.Allowed);
        Assert.Contains(BootstrapDecisionTable.All, r => !r.Allowed);
    }

    [Theory]
    [MemberData(nameof(Rows))]
    public async Task The_gateway_decides_as_the_table_says(int index, string row)
    {
        var decision = BootstrapDecisionTable.All[index];
        var auditId = $"bootstrap-{index}-{Guid.NewGuid():N}";
        using var request = new HttpRequestMessage(new HttpMethod(decision.Method), decision.Target);
        request.Headers.Add("Audit-ID", auditId);
        request.Content = Body(decision);

        // Watches stay open: read the headers only.
        using var response = await fixture.ClientFor(decision).SendAsync(request, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeout);
        var reachedUpstream = fixture.Gateway.Upstream.Requests.Any(r => r.Values("Audit-ID").Contains(auditId));

        if (decision.Allowed)
        {
            if (!response.IsSuccessStatusCode)
            {
                Assert.Fail($"{row}: {(int)response.StatusCode} {await ReadAsync(response)}"); // never read an allowed watch's body
            }
            if (decision.Target.EndsWith("/selfsubjectrulesreviews", StringComparison.Ordinal))
            {
                // kubectl auth can-i --list is always answered by the gateway (SelfSubjectRulesReviewTests)
                Assert.True(response.StatusCode == HttpStatusCode.Created && !reachedUpstream, $"{row}: {(int)response.StatusCode}, reached the upstream: {reachedUpstream}");
                return;
            }
            Assert.True(reachedUpstream, $"{row}: the 2xx did not come from the upstream");
            return;
        }
        var body = await ReadAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{row}: {(int)response.StatusCode} {body}");
        Assert.False(reachedUpstream, $"{row}: a denied request reached the upstream");
        var status = JsonNode.Parse(body)!;
        Assert.Equal("Forbidden", (string?)status["reason"]);
        var message = (string?)status["message"] ?? "";
        var user = decision.User;
        Assert.Contains($"User \"{user}\" cannot ", message, StringComparison.Ordinal);
        if (decision.Reason.Length > 0)
        {
            Assert.Contains(decision.Reason, message, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// Bodies for writes. The SelfSubjectAccessReview row carries a real review (of <c>get /healthz</c>, which every
    /// user may) and the SelfSubjectRulesReview row one with a namespace, because the gateway reads reviews itself; see
    /// SelfSubjectAccessReviewTests and SelfSubjectRulesReviewTests.
    /// </summary>
    private static StringContent? Body(BootstrapDecision decision)
    {
        if (decision.Method is not ("POST" or "PUT" or "PATCH"))
        {
            return null;
        }
        var json = decision.Target.EndsWith("/selfsubjectaccessreviews", StringComparison.Ordinal)
            ? """{"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1","spec":{"nonResourceAttributes":{"path":"/healthz","verb":"get"}}}"""
            : decision.Target.EndsWith("/selfsubjectrulesreviews", StringComparison.Ordinal)
            ? """{"kind":"SelfSubjectRulesReview","apiVersion":"authorization.k8s.io/v1","spec":{"namespace":"default"}}"""
            : "{}";
        var content = new StringContent(json, Encoding.UTF8);
        content.Headers.ContentType = new(decision.Method == "PATCH" ? "application/merge-patch+json" : "application/json");
        return content;
    }

    private static async Task<string> ReadAsync(HttpResponseMessage response) =>
        await response.Content.ReadAsStringAsync().WaitAsync(Timeout);
}
