using System.Net;
using System.Text.RegularExpressions;
using Portcullis.Admission.Flowcontrol;
using Portcullis.Gateway.Tests.Infrastructure;
using static Portcullis.Gateway.Tests.AuditFidelityTests;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue 15, API Priority and Fairness in the gateway, on real Kestrel: the PF headers, kube-apiserver's 429, fairness
/// between users of one priority level under a flood, exempt requests during a flood, watches holding a seat only while
/// they start. The upstream's <c>/hold</c> keeps each request until the test releases it, so nothing depends on timing.
/// </summary>
public sealed partial class PriorityAndFairnessTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    // 8 seats: Σ shares = 0 (exempt) + 5 (catch-all) + 10 (tenants) + 5 (batch) = 20 → tenants 4, batch 2, catch-all 2.
    private const string Objects = """
        apiVersion: flowcontrol.apiserver.k8s.io/v1
        kind: PriorityLevelConfiguration
        metadata: {name: tenants}
        spec:
          type: Limited
          limited:
            nominalConcurrencyShares: 10
            limitResponse:
              type: Queue
              queuing: {queues: 64, handSize: 1, queueLengthLimit: 50}
        ---
        apiVersion: flowcontrol.apiserver.k8s.io/v1
        kind: FlowSchema
        metadata: {name: tenants}
        spec:
          matchingPrecedence: 500
          priorityLevelConfiguration: {name: tenants}
          distinguisherMethod: {type: ByUser}
          rules:
          - subjects: [{kind: User, user: {name: jane}}, {kind: User, user: {name: bob}}]
            resourceRules: [{verbs: ["*"], apiGroups: ["*"], resources: ["*"], clusterScope: true, namespaces: ["*"]}]
            nonResourceRules: [{verbs: ["*"], nonResourceURLs: ["*"]}]
        ---
        apiVersion: flowcontrol.apiserver.k8s.io/v1beta3
        kind: PriorityLevelConfiguration
        metadata: {name: batch-low}
        spec:
          type: Limited
          limited:
            nominalConcurrencyShares: 5
            limitResponse: {type: Reject}
        ---
        apiVersion: flowcontrol.apiserver.k8s.io/v1beta3
        kind: FlowSchema
        metadata: {name: batch-jobs-low-priority}
        spec:
          matchingPrecedence: 400
          priorityLevelConfiguration: {name: batch-low}
          distinguisherMethod: {type: ByUser}
          rules:
          - subjects: [{kind: User, user: {name: batch}}]
            resourceRules: [{verbs: ["*"], apiGroups: ["*"], resources: ["*"], namespaces: ["*"]}]
            nonResourceRules: [{verbs: ["*"], nonResourceURLs: ["*"]}]
        """;

    private const string Apf = """
        admission:
          priorityAndFairness:
            maxRequestsInflight: 6
            maxMutatingRequestsInflight: 2
            suggestedObjects: false
            configFiles: [apf.yaml]
        audit:
          policyFile: audit-policy.yaml
          log: {path: audit.log, mode: blocking}
        """;

    private const string Policy = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n";

    private static Task<GatewayTestHost> StartAsync(string extra = Apf) =>
        GatewayTestHost.StartAsync(extra, files: new() { ["apf.yaml"] = Objects, ["audit-policy.yaml"] = Policy }, requestTimeout: "60s").WaitAsync(Timeout);

    private static string Uid(string kind, string name) => FlowcontrolBootstrap.StableUid(kind, name);

    [Fact]
    public async Task Every_classified_response_names_its_flow_schema_and_priority_level_and_long_running_ones_bypass()
    {
        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        using var root = gw.Client(gw.Pki.IssueClient("root", "system:masters"));
        using var carol = gw.Client(gw.Pki.IssueClient("carol"));

        using var served = await jane.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout);
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(Uid("FlowSchema", "tenants"), Single(served, "X-Kubernetes-PF-FlowSchema-UID"));
        Assert.Equal(Uid("PriorityLevelConfiguration", "tenants"), Single(served, "X-Kubernetes-PF-PriorityLevel-UID"));

        using var exempt = await root.GetAsync("/api/v1/namespaces").WaitAsync(Timeout);
        Assert.Equal(Uid("FlowSchema", "exempt"), Single(exempt, "X-Kubernetes-PF-FlowSchema-UID"));
        Assert.Equal(Uid("PriorityLevelConfiguration", "exempt"), Single(exempt, "X-Kubernetes-PF-PriorityLevel-UID"));

        using var catchAll = await carol.GetAsync("/version").WaitAsync(Timeout);
        Assert.Equal(Uid("FlowSchema", "catch-all"), Single(catchAll, "X-Kubernetes-PF-FlowSchema-UID"));

        // logs (long-running, not a watch) bypass APF as in kube-apiserver: no headers
        using var logs = await jane.GetAsync("/api/v1/namespaces/dev/pods/p/log?follow=true").WaitAsync(Timeout);
        Assert.Equal(HttpStatusCode.OK, logs.StatusCode);
        Assert.False(logs.Headers.Contains("X-Kubernetes-PF-FlowSchema-UID"));

        var metrics = await MetricsAsync(gw);
        Assert.Contains("apiserver_flowcontrol_nominal_limit_seats{priority_level=\"tenants\"} 4", metrics, StringComparison.Ordinal);
        Assert.Contains("apiserver_flowcontrol_nominal_limit_seats{priority_level=\"batch-low\"} 2", metrics, StringComparison.Ordinal);
        Assert.Contains("apiserver_flowcontrol_nominal_limit_seats{priority_level=\"exempt\"} 0", metrics, StringComparison.Ordinal);
        Assert.Contains("apiserver_flowcontrol_dispatched_requests_total{flow_schema=\"tenants\",priority_level=\"tenants\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("apiserver_flowcontrol_dispatched_requests_total{flow_schema=\"exempt\",priority_level=\"exempt\"} 1", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Turned_off_it_classifies_nothing()
    {
        await using var gw = await GatewayTestHost.StartAsync("admission:\n  priorityAndFairness:\n    enabled: false\n").WaitAsync(Timeout);
        using var jane = gw.Client(gw.Pki.IssueClient("jane"));
        using var response = await jane.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(response.Headers.Contains("X-Kubernetes-PF-FlowSchema-UID"));
    }

    [Fact]
    public async Task A_full_Reject_level_answers_kube_apiservers_429_audited_and_counted()
    {
        await using var gw = await StartAsync();
        using var batch = gw.Client(gw.Pki.IssueClient("batch"));
        var held = Enumerable.Range(0, 2).Select(_ => batch.GetAsync("/hold")).ToList();
        await UntilAsync(() => gw.Upstream.Holding == 2, "both seats of batch-low taken");

        using var refused = await batch.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("Too many requests, please try again later.\n", await refused.Content.ReadAsStringAsync());
        Assert.Equal("text/plain; charset=utf-8", refused.Content.Headers.ContentType!.ToString());
        Assert.Equal("1", Single(refused, "Retry-After"));
        Assert.Equal("nosniff", Single(refused, "X-Content-Type-Options"));
        Assert.Matches("^[0-9a-f-]{36}$", Single(refused, "Audit-ID"));
        Assert.Equal(Uid("FlowSchema", "batch-jobs-low-priority"), Single(refused, "X-Kubernetes-PF-FlowSchema-UID"));
        Assert.Equal(Uid("PriorityLevelConfiguration", "batch-low"), Single(refused, "X-Kubernetes-PF-PriorityLevel-UID"));
        Assert.DoesNotContain(gw.Upstream.Requests, r => r.PathAndQuery.StartsWith("/api/v1/namespaces/dev/pods", StringComparison.Ordinal));

        var metrics = await MetricsAsync(gw);
        Assert.Contains("apiserver_flowcontrol_rejected_requests_total{flow_schema=\"batch-jobs-low-priority\",priority_level=\"batch-low\",reason=\"concurrency-limit\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("apiserver_flowcontrol_current_executing_requests{flow_schema=\"batch-jobs-low-priority\",priority_level=\"batch-low\"} 2", metrics, StringComparison.Ordinal);
        Assert.Contains("portcullis_requests_rejected_total{layer=\"apf\",code=\"429\"} 1", metrics, StringComparison.Ordinal);

        gw.Upstream.Hold.Release(2);
        foreach (var r in await Task.WhenAll(held).WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            r.Dispose();
        }
        var e = Assert.Single(await EventsAfterStopAsync(gw), e => Code(e) == 429);
        Assert.Equal("apf", Annotation(e, "portcullis.dev/rejected-by"));
        Assert.Equal("concurrency-limit: flow schema batch-jobs-low-priority, priority level batch-low", Annotation(e, "portcullis.dev/reason"));
    }

    [Fact]
    public async Task A_flood_from_one_user_does_not_starve_another_user_of_the_same_level()
    {
        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane"));
        using var bob = gw.Client(gw.Pki.IssueClient("bob"));
        // handSize 1: each user's flow has one queue of 64; theirs differ
        Assert.NotEqual(ShuffleShardDealer.FlowHash("tenants", "jane") % 64, ShuffleShardDealer.FlowHash("tenants", "bob") % 64);

        var flood = Enumerable.Range(0, 12).Select(_ => jane.GetAsync("/hold")).ToList();
        await UntilAsync(() => gw.Upstream.Holding == 4, "the flood holding tenants' 4 seats");
        await UntilMetricAsync(gw, "apiserver_flowcontrol_current_inqueue_requests{flow_schema=\"tenants\",priority_level=\"tenants\"} 8");

        var bobs = bob.GetAsync("/api/v1/namespaces/dev/pods");
        await UntilMetricAsync(gw, "apiserver_flowcontrol_current_inqueue_requests{flow_schema=\"tenants\",priority_level=\"tenants\"} 9");
        Assert.False(bobs.IsCompleted); // every seat is busy: bob waits in his own queue

        // The flood's four running requests end. Its queue is charged for the time they ran, so bob's request, in a
        // queue of its own, has the smaller virtual finish time and gets a seat before the eight jane queued earlier.
        gw.Upstream.Hold.Release(4);
        using var served = await bobs.WaitAsync(Timeout);
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(Uid("FlowSchema", "tenants"), Single(served, "X-Kubernetes-PF-FlowSchema-UID"));
        Assert.True(flood.Count(t => !t.IsCompleted) >= 8, "bob was served while the flood was still held");

        gw.Upstream.Hold.Release(100);
        foreach (var r in await Task.WhenAll(flood).WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode); // queued, never refused
            r.Dispose();
        }
        var metrics = await MetricsAsync(gw);
        Assert.Contains("apiserver_flowcontrol_dispatched_requests_total{flow_schema=\"tenants\",priority_level=\"tenants\"} 13", metrics, StringComparison.Ordinal);
        Assert.DoesNotMatch(RejectedTenants(), metrics);
        Assert.Contains("apiserver_flowcontrol_request_wait_duration_seconds_count{flow_schema=\"tenants\",priority_level=\"tenants\",execute=\"true\"} 13", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_flood_in_a_limited_level_does_not_delay_an_exempt_request()
    {
        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane"));
        using var root = gw.Client(gw.Pki.IssueClient("root", "system:masters"));
        var flood = Enumerable.Range(0, 12).Select(_ => jane.GetAsync("/hold")).ToList();
        await UntilMetricAsync(gw, "apiserver_flowcontrol_current_inqueue_requests{flow_schema=\"tenants\",priority_level=\"tenants\"} 8");

        using var exempt = await root.GetAsync("/api/v1/namespaces/kube-system/pods").WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(HttpStatusCode.OK, exempt.StatusCode);
        Assert.Equal(Uid("PriorityLevelConfiguration", "exempt"), Single(exempt, "X-Kubernetes-PF-PriorityLevel-UID"));
        Assert.All(flood, t => Assert.False(t.IsCompleted));
        gw.Upstream.Hold.Release(100);
        foreach (var r in await Task.WhenAll(flood).WaitAsync(Timeout))
        {
            r.Dispose();
        }
    }

    [Fact]
    public async Task A_watch_holds_its_seat_only_while_it_starts()
    {
        await using var gw = await StartAsync();
        using var batch = gw.Client(gw.Pki.IssueClient("batch"));
        // batch-low has 2 seats and rejects: three open watches would be refused if each kept its seat
        var watches = new List<HttpResponseMessage>();
        for (var i = 0; i < 3; i++)
        {
            var watch = await batch.GetAsync("/api/v1/namespaces/dev/pods?watch=true", HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeout);
            Assert.Equal(HttpStatusCode.OK, watch.StatusCode);
            Assert.Equal(Uid("FlowSchema", "batch-jobs-low-priority"), Single(watch, "X-Kubernetes-PF-FlowSchema-UID"));
            watches.Add(watch);
        }
        var metrics = await MetricsAsync(gw);
        Assert.Contains("apiserver_flowcontrol_current_executing_requests{flow_schema=\"batch-jobs-low-priority\",priority_level=\"batch-low\"} 0", metrics, StringComparison.Ordinal);
        Assert.Contains("apiserver_flowcontrol_dispatched_requests_total{flow_schema=\"batch-jobs-low-priority\",priority_level=\"batch-low\"} 3", metrics, StringComparison.Ordinal);
        gw.Upstream.SecondWatchEvent.TrySetResult();
        foreach (var w in watches)
        {
            w.Dispose();
        }
    }

    [Fact]
    public async Task A_reload_builds_new_levels_and_drops_no_queued_request()
    {
        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane"));
        var flood = Enumerable.Range(0, 6).Select(_ => jane.GetAsync("/hold")).ToList();
        await UntilMetricAsync(gw, "apiserver_flowcontrol_current_inqueue_requests{flow_schema=\"tenants\",priority_level=\"tenants\"} 2");

        // tenants 10 → 20 shares: Σ 30, ceil(8 × 20 / 30) = 6 seats
        File.WriteAllText(Path.Combine(gw.Dir, "apf.yaml"), Objects.Replace("nominalConcurrencyShares: 10", "nominalConcurrencyShares: 20", StringComparison.Ordinal));
        await UntilMetricAsync(gw, "apiserver_flowcontrol_nominal_limit_seats{priority_level=\"tenants\"} 6");

        // the new levels serve new requests at once (their queues are empty) ...
        using var fresh = await jane.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout);
        Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);
        // ... while the two requests queued before the reload still wait in the old queues, and get their seats there
        Assert.Equal(4, gw.Upstream.Holding);
        gw.Upstream.Hold.Release(100);
        foreach (var r in await Task.WhenAll(flood).WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            r.Dispose();
        }
        Assert.DoesNotMatch(RejectedTenants(), await MetricsAsync(gw));
    }

    // 8 seats: Σ shares = 5 (catch-all) + 10 + 10 = 25 → tenants 4 (may borrow 100 %: up to 8), lender 4 (lends all:
    // down to 0, starts at 4 − 4 / 2 = 2), catch-all 2; Σ nominal 10.
    private const string Borrowing = """
        apiVersion: flowcontrol.apiserver.k8s.io/v1
        kind: PriorityLevelConfiguration
        metadata: {name: tenants}
        spec:
          type: Limited
          limited:
            nominalConcurrencyShares: 10
            borrowingLimitPercent: 100
            limitResponse:
              type: Queue
              queuing: {queues: 64, handSize: 1, queueLengthLimit: 50}
        ---
        apiVersion: flowcontrol.apiserver.k8s.io/v1
        kind: PriorityLevelConfiguration
        metadata: {name: lender}
        spec:
          type: Limited
          limited:
            nominalConcurrencyShares: 10
            lendablePercent: 100
            limitResponse: {type: Reject}
        ---
        apiVersion: flowcontrol.apiserver.k8s.io/v1
        kind: FlowSchema
        metadata: {name: tenants}
        spec:
          matchingPrecedence: 500
          priorityLevelConfiguration: {name: tenants}
          distinguisherMethod: {type: ByUser}
          rules:
          - subjects: [{kind: User, user: {name: jane}}]
            resourceRules: [{verbs: ["*"], apiGroups: ["*"], resources: ["*"], clusterScope: true, namespaces: ["*"]}]
            nonResourceRules: [{verbs: ["*"], nonResourceURLs: ["*"]}]
        """;

    [Fact]
    public async Task A_busy_level_borrows_an_idle_levels_seats_at_the_next_10_second_adjustment()
    {
        // requestTimeout 240 s: a queued request may wait a minute, longer than the adjustment period.
        await using var gw = await GatewayTestHost.StartAsync(Apf, files: new() { ["apf.yaml"] = Borrowing, ["audit-policy.yaml"] = Policy },
            requestTimeout: "240s").WaitAsync(Timeout);
        var before = await MetricsAsync(gw);
        Assert.Contains("apiserver_flowcontrol_current_limit_seats{priority_level=\"lender\"} 2", before, StringComparison.Ordinal);
        Assert.Contains("apiserver_flowcontrol_lower_limit_seats{priority_level=\"lender\"} 0", before, StringComparison.Ordinal);
        Assert.Contains("apiserver_flowcontrol_upper_limit_seats{priority_level=\"tenants\"} 8", before, StringComparison.Ordinal);
        using var jane = gw.Client(gw.Pki.IssueClient("jane"));
        var flood = Enumerable.Range(0, 12).Select(_ => jane.GetAsync("/hold")).ToList();
        await UntilAsync(() => gw.Upstream.Holding == 4, "the flood holding tenants' 4 nominal seats");
        await UntilMetricAsync(gw, "apiserver_flowcontrol_current_inqueue_requests{flow_schema=\"tenants\",priority_level=\"tenants\"} 8");

        // At the next adjustment (at most 10 s on the host's clock) tenants' demand of 12 seats borrows lender's idle
        // seats up to tenants' upper limit of 8, and four queued requests get them at once.
        await UntilAsync(() => gw.Upstream.Holding == 8, "tenants borrowing up to its upper limit of 8 seats");
        var after = await MetricsAsync(gw);
        Assert.Contains("apiserver_flowcontrol_current_limit_seats{priority_level=\"tenants\"} 8", after, StringComparison.Ordinal);
        Assert.Contains("apiserver_flowcontrol_current_limit_seats{priority_level=\"lender\"} 0", after, StringComparison.Ordinal);
        Assert.Contains("apiserver_flowcontrol_current_executing_seats{flow_schema=\"tenants\",priority_level=\"tenants\"} 8", after, StringComparison.Ordinal);
        Assert.Contains("apiserver_flowcontrol_demand_seats_high_watermark{priority_level=\"tenants\"} 12", after, StringComparison.Ordinal);
        Assert.Equal(8, gw.Upstream.Holding); // no further than the upper limit

        gw.Upstream.Hold.Release(100);
        foreach (var r in await Task.WhenAll(flood).WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            r.Dispose();
        }
    }

    private static string Single(HttpResponseMessage response, string header) =>
        Assert.Single(response.Headers.TryGetValues(header, out var values) ? values : response.Content.Headers.TryGetValues(header, out var content) ? content : []);

    private static async Task<string> MetricsAsync(GatewayTestHost gw)
    {
        using var admin = new HttpClient { BaseAddress = gw.AdminUri };
        return await admin.GetStringAsync("/metrics").WaitAsync(Timeout);
    }

    private static async Task UntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting for {what}");
            }
            await Task.Delay(20);
        }
    }

    private static async Task UntilMetricAsync(GatewayTestHost gw, string line)
    {
        var deadline = DateTime.UtcNow + Timeout;
        string metrics;
        while (!(metrics = await MetricsAsync(gw)).Contains(line, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting for {line}; have:\n{string.Join('\n', metrics.Split('\n').Where(l => l.StartsWith("apiserver_flowcontrol_current", StringComparison.Ordinal)))}");
            }
            await Task.Delay(20);
        }
    }

    [GeneratedRegex("apiserver_flowcontrol_rejected_requests_total\\{flow_schema=\"tenants\"")]
    private static partial Regex RejectedTenants();
}
