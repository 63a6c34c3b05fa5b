using System.Net;
using System.Text.Json;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

public sealed class AuditLayerTests
{
    private const string Policy = """
        apiVersion: audit.k8s.io/v1
        kind: Policy
        omitStages: [RequestReceived]
        rules:
        - level: None
          nonResourceURLs: ["/healthz*"]
        - level: Metadata
          resources: [{group: "", resources: [secrets]}]
        - level: RequestResponse
          verbs: [create]
        - level: Metadata
        """;

    private static async Task<GatewayTestHost> StartAsync(string mode = "blocking")
    {
        return await GatewayTestHost.StartAsync($"audit:\n  policyFile: audit-policy.yaml\n  log:\n    path: audit.log\n    mode: {mode}",
            modes: "[RBAC]", files: new() { ["audit-policy.yaml"] = Policy });
    }

    private static List<JsonElement> Events(GatewayTestHost gw) =>
        [.. File.ReadAllLines(Path.Combine(gw.Dir, "audit.log")).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement)];

    [Fact]
    public async Task Allowed_denied_and_unauthenticated_requests_are_audited_as_kube_apiserver_does()
    {
        await using var gw = await StartAsync();
        using (var jane = gw.Client(gw.Pki.IssueClient("jane", "developers")))
        {
            using var ok = await jane.GetAsync("/api/v1/namespaces/dev/pods");
            using var forbidden = await jane.GetAsync("/api/v1/namespaces/prod/secrets/db");
            using var created = await jane.PostAsync("/api/v1/namespaces/dev/configmaps",
                new StringContent("""{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c1"}}""", System.Text.Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        }
        using (var anonymous = gw.Client())
        using (var unauthorized = await anonymous.GetAsync("/api/v1/namespaces"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, unauthorized.StatusCode);
        }
        await gw.Host.StopAsync();

        var events = Events(gw);
        Assert.Equal(4, events.Count);
        var list = events[0];
        Assert.Equal("Event", list.GetProperty("kind").GetString());
        Assert.Equal("audit.k8s.io/v1", list.GetProperty("apiVersion").GetString());
        Assert.Equal("ResponseComplete", list.GetProperty("stage").GetString());
        Assert.Equal("list", list.GetProperty("verb").GetString());
        Assert.Equal("jane", list.GetProperty("user").GetProperty("username").GetString());
        Assert.Contains("system:authenticated", list.GetProperty("user").GetProperty("groups").EnumerateArray().Select(g => g.GetString()));
        Assert.Equal(["127.0.0.1"], list.GetProperty("sourceIPs").EnumerateArray().Select(g => g.GetString()!).ToArray());
        Assert.Equal("allow", list.GetProperty("annotations").GetProperty("authorization.k8s.io/decision").GetString());
        Assert.Equal(200, list.GetProperty("responseStatus").GetProperty("code").GetInt32());

        var denied = events[1];
        Assert.Equal("Metadata", denied.GetProperty("level").GetString());
        Assert.Equal("forbid", denied.GetProperty("annotations").GetProperty("authorization.k8s.io/decision").GetString());
        Assert.Equal(403, denied.GetProperty("responseStatus").GetProperty("code").GetInt32());
        Assert.Equal("secrets", denied.GetProperty("objectRef").GetProperty("resource").GetString());

        var create = events[2];
        Assert.Equal("RequestResponse", create.GetProperty("level").GetString());
        Assert.Equal("c1", create.GetProperty("requestObject").GetProperty("metadata").GetProperty("name").GetString());
        Assert.Equal("PodList", create.GetProperty("responseObject").GetProperty("kind").GetString()); // what the test upstream answers

        var unauthenticated = events[3];
        Assert.Equal("ResponseStarted", unauthenticated.GetProperty("stage").GetString());
        Assert.Equal(JsonValueKind.Object, unauthenticated.GetProperty("user").ValueKind);
        Assert.False(unauthenticated.GetProperty("user").TryGetProperty("username", out _));
        Assert.Equal(401, unauthenticated.GetProperty("responseStatus").GetProperty("code").GetInt32());

        Assert.All(events, e => Assert.True(Guid.TryParse(e.GetProperty("auditID").GetString(), out _)));
        Assert.DoesNotContain("token", string.Join("\n", File.ReadAllLines(Path.Combine(gw.Dir, "audit.log"))), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Watch_gets_ResponseStarted_and_ResponseComplete_and_the_audit_id_matches_the_header()
    {
        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        string auditId;
        using (var watch = await jane.GetAsync("/api/v1/namespaces/dev/pods?watch=true", HttpCompletionOption.ResponseHeadersRead))
        {
            auditId = watch.Headers.GetValues("Audit-ID").Single();
            var reader = new StreamReader(await watch.Content.ReadAsStreamAsync());
            Assert.NotNull(await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)));
            gw.Upstream.SecondWatchEvent.SetResult();
            Assert.NotNull(await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Null(await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)));
        }
        await gw.Host.StopAsync();

        var stages = Events(gw).Where(e => e.GetProperty("auditID").GetString() == auditId).Select(e => e.GetProperty("stage").GetString()!).ToArray();
        Assert.Equal(["ResponseStarted", "ResponseComplete"], stages);
    }

    [Theory]
    [InlineData("blocking")]
    [InlineData("batch")]
    public async Task Every_accepted_request_is_in_the_log_after_a_graceful_stop(string mode)
    {
        await using var gw = await StartAsync(mode);
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        var codes = new System.Collections.Concurrent.ConcurrentBag<HttpStatusCode>();
        await Parallel.ForEachAsync(Enumerable.Range(0, 200), new ParallelOptions { MaxDegreeOfParallelism = 20 }, async (i, ct) =>
        {
            using var r = await jane.GetAsync($"/api/v1/namespaces/dev/pods?i={i}", ct);
            codes.Add(r.StatusCode);
        }).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.All(codes, c => Assert.Equal(HttpStatusCode.OK, c));

        await gw.Host.StopAsync();

        var events = Events(gw);
        Assert.Equal(200, events.Count);
        Assert.Equal(200, events.Select(e => e.GetProperty("auditID").GetString()).Distinct().Count());
    }
}
