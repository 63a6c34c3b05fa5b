using System.Net;
using Portcullis.Gateway.Tests.Infrastructure;
using static Portcullis.Gateway.Tests.AuditFidelityTests;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue 15, <c>admission.rateLimits</c> and <c>admission.longRunning.maxPerUser</c> on real Kestrel: a user's burst
/// refused with a 429 Status and <c>Retry-After</c> while another user is served, and the N+1th open watch of one user
/// refused while another user's watch opens; audited and counted.
/// </summary>
public sealed class RateLimitTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private const string Policy = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n";

    private static Task<GatewayTestHost> StartAsync(string admission) =>
        GatewayTestHost.StartAsync(admission + "audit:\n  policyFile: audit-policy.yaml\n  log: {path: audit.log, mode: blocking}\n",
            files: new() { ["audit-policy.yaml"] = Policy }, requestTimeout: "60s", time: new SteppedClock()).WaitAsync(Timeout);

    [Fact]
    public async Task A_users_burst_is_refused_with_Retry_After_while_another_user_is_served()
    {
        await using var gw = await StartAsync("admission:\n  rateLimits:\n  - {type: User, qps: 0.5, burst: 3}\n");
        using var jane = gw.Client(gw.Pki.IssueClient("jane"));
        using var bob = gw.Client(gw.Pki.IssueClient("bob"));

        for (var i = 0; i < 3; i++)
        {
            using var ok = await jane.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        using (var refused = await jane.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.Equal("""{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Too many requests: rate limit reached on type User for key jane","reason":"TooManyRequests","code":429}""",
                (await refused.Content.ReadAsStringAsync()).TrimEnd('\n'));
            Assert.Equal("2", Assert.Single(refused.Headers.GetValues("Retry-After"))); // 0.5 qps: a token in 2 s
        }
        using (var served = await bob.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        }
        Assert.Equal(4, gw.Upstream.Requests.Count(r => r.PathAndQuery == "/api/v1/namespaces/dev/pods"));

        using var admin = new HttpClient { BaseAddress = gw.AdminUri };
        var metrics = await admin.GetStringAsync("/metrics").WaitAsync(Timeout);
        Assert.Contains("portcullis_ratelimit_rejected_total{type=\"ratelimit:User\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("portcullis_requests_rejected_total{layer=\"ratelimit\",code=\"429\"} 1", metrics, StringComparison.Ordinal);
        var e = Assert.Single(await EventsAfterStopAsync(gw), e => Code(e) == 429);
        Assert.Equal("ratelimit", Annotation(e, "portcullis.dev/rejected-by"));
        Assert.Equal("Too many requests: rate limit reached on type User for key jane", Annotation(e, "portcullis.dev/reason"));
    }

    [Fact]
    public async Task The_third_open_watch_of_one_user_is_refused_while_another_users_watch_opens()
    {
        await using var gw = await StartAsync("admission:\n  longRunning: {maxPerUser: 2}\n");
        using var jane = gw.Client(gw.Pki.IssueClient("jane"));
        using var bob = gw.Client(gw.Pki.IssueClient("bob"));
        const string watch = "/api/v1/namespaces/dev/pods?watch=true";

        var first = await jane.GetAsync(watch, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeout);
        using var second = await jane.GetAsync(watch, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeout);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);

        using (var third = await jane.GetAsync(watch, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
            Assert.Contains("\"message\":\"Too many requests: 2 long-running requests of user jane are open (admission.longRunning.maxPerUser)\"",
                await third.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.Equal("1", Assert.Single(third.Headers.GetValues("Retry-After")));
        }
        using (var bobs = await bob.GetAsync(watch, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.OK, bobs.StatusCode);
        }
        // a short request of jane is not long-running: served
        using (var list = await jane.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        }

        // jane closes one watch: once the gateway has seen it end, a new one opens
        first.Dispose();
        var deadline = DateTime.UtcNow + Timeout;
        while (true)
        {
            using var again = await jane.GetAsync(watch, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeout);
            if (again.StatusCode == HttpStatusCode.OK)
            {
                break;
            }
            Assert.Equal(HttpStatusCode.TooManyRequests, again.StatusCode);
            Assert.True(DateTime.UtcNow < deadline, "jane's closed watch was never released");
            await Task.Delay(50);
        }

        using var admin = new HttpClient { BaseAddress = gw.AdminUri };
        var metrics = await admin.GetStringAsync("/metrics").WaitAsync(Timeout);
        Assert.Matches("portcullis_ratelimit_rejected_total\\{type=\"long-running\"\\} [1-9]", metrics);
        Assert.Contains("portcullis_ratelimit_rejected_total{type=\"ratelimit:User\"} 0", metrics, StringComparison.Ordinal);
    }
}
