using System.Net;
using System.Text;
using Portcullis.Gateway.Tests.Infrastructure;
using static Portcullis.Gateway.Tests.AuditFidelityTests;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue 15, EventRateLimit in the gateway on real Kestrel: the kubernetes.io AdmissionConfiguration, bursts per
/// namespace, per user and per source-and-object refused at the configured numbers with kube-apiserver's exact 429
/// Status, only creates and updates of core events counted, audited and metered, and a hot reload of the limits file.
/// </summary>
public sealed class EventRateLimitTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    // The buckets read the host's timestamps: this clock's stand still until a test moves them, so no bucket refills
    // while a slow machine runs the test (timers and the wall clock stay the system's).
    private const string Limits = """
        apiVersion: eventratelimit.admission.k8s.io/v1alpha1
        kind: Configuration
        limits:
        - {type: Namespace, qps: 1, burst: 6}
        - {type: User, qps: 1, burst: 4}
        - {type: SourceAndObject, qps: 1, burst: 2}
        """;

    private const string Admission = """
        apiVersion: apiserver.config.k8s.io/v1
        kind: AdmissionConfiguration
        plugins:
        - name: EventRateLimit
          path: eventconfig.yaml
        ...
        """;

    private const string Policy = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n";

    private static Task<GatewayTestHost> StartAsync(string limits = Limits, TimeProvider? time = null) =>
        GatewayTestHost.StartAsync("admission:\n  admissionControlConfigFile: admission/admission.yaml\naudit:\n  policyFile: audit-policy.yaml\n  log: {path: audit.log, mode: blocking}\n",
            files: new() { ["admission/admission.yaml"] = Admission, ["admission/eventconfig.yaml"] = limits, ["audit-policy.yaml"] = Policy }, time: time ?? new SteppedClock()).WaitAsync(Timeout);

    private static StringContent Event(string ns, string involved, string component = "kubelet") => new(
        $$$"""{"apiVersion":"v1","kind":"Event","metadata":{"generateName":"e-","namespace":"{{{ns}}}"},"reason":"Test","source":{"component":"{{{component}}}","host":"node-1"},"involvedObject":{"kind":"Pod","namespace":"{{{ns}}}","name":"{{{involved}}}","uid":"u-{{{involved}}}","apiVersion":"v1"}}""",
        Encoding.UTF8, "application/json");

    private static async Task<HttpStatusCode> CreateAsync(HttpClient client, string ns, string involved, string component = "kubelet")
    {
        using var response = await client.PostAsync($"/api/v1/namespaces/{ns}/events", Event(ns, involved, component)).WaitAsync(Timeout);
        return response.StatusCode;
    }

    private static async Task AssertRefusedAsync(HttpClient client, string ns, string involved, string message, string component = "kubelet")
    {
        using var response = await client.PostAsync($"/api/v1/namespaces/{ns}/events", Event(ns, involved, component)).WaitAsync(Timeout);
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal($$"""{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"{{message}}","reason":"TooManyRequests","code":429}""",
            (await response.Content.ReadAsStringAsync()).TrimEnd('\n'));
        Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
        Assert.False(response.Headers.Contains("Retry-After")); // kube-apiserver's EventRateLimit sends none
    }

    [Fact]
    public async Task Bursts_per_source_and_object_per_user_and_per_namespace_are_refused_at_the_configured_numbers()
    {
        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane"));
        using var bob = gw.Client(gw.Pki.IssueClient("bob"));
        using var carol = gw.Client(gw.Pki.IssueClient("carol"));

        // SourceAndObject burst 2: the third event about pod web from the same source is refused
        Assert.Equal(HttpStatusCode.OK, await CreateAsync(jane, "a", "web"));
        Assert.Equal(HttpStatusCode.OK, await CreateAsync(jane, "a", "web"));
        await AssertRefusedAsync(jane, "a", "web", "Too many requests: limit reached on type SourceAndObject for key kubeletnode-1Podawebu-webv1");
        // User burst 4: jane has taken 3 tokens; one more, then refused (another object, so only User fails)
        Assert.Equal(HttpStatusCode.OK, await CreateAsync(jane, "a", "db"));
        await AssertRefusedAsync(jane, "b", "cache", "Too many requests: limit reached on type User for key jane");
        // Namespace burst 6: namespace a has taken 4 tokens (refused requests take tokens too); bob adds 2, then refused
        Assert.Equal(HttpStatusCode.OK, await CreateAsync(bob, "a", "x1"));
        Assert.Equal(HttpStatusCode.OK, await CreateAsync(bob, "a", "x2"));
        await AssertRefusedAsync(bob, "a", "x3", "Too many requests: limit reached on type Namespace for key a");
        // several limits at once: the message lists them
        await AssertRefusedAsync(jane, "a", "web", "Too many requests: [limit reached on type Namespace for key a, limit reached on type User for key jane, limit reached on type SourceAndObject for key kubeletnode-1Podawebu-webv1]");
        // another user in another namespace is unaffected; reads and other resources are never counted
        Assert.Equal(HttpStatusCode.OK, await CreateAsync(carol, "c", "web"));
        using (var list = await jane.GetAsync("/api/v1/namespaces/a/events").WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        }
        using (var pod = await jane.PostAsync("/api/v1/namespaces/a/configmaps", new StringContent("{}", Encoding.UTF8, "application/json")).WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.OK, pod.StatusCode);
        }
        using (var newer = await jane.PostAsync("/apis/events.k8s.io/v1/namespaces/a/events", Event("a", "web")).WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.OK, newer.StatusCode); // events.k8s.io is another group, as in kube-apiserver
        }
        using (var dry = await jane.PostAsync("/api/v1/namespaces/a/events?dryRun=All", Event("a", "web")).WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.OK, dry.StatusCode);
        }
        // an update (PATCH) counts: namespace a is empty
        using (var patch = await bob.PatchAsync("/api/v1/namespaces/a/events/e-1", new StringContent("{}", Encoding.UTF8, "application/merge-patch+json")).WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, patch.StatusCode);
        }

        Assert.Equal(6, gw.Upstream.Requests.Count(r => r.Method == "POST" && r.PathAndQuery.StartsWith("/api/v1/namespaces/", StringComparison.Ordinal) && r.PathAndQuery.Contains("/events", StringComparison.Ordinal) && !r.PathAndQuery.Contains("dryRun", StringComparison.Ordinal)));
        var metrics = await MetricsAsync(gw);
        Assert.Contains("portcullis_ratelimit_rejected_total{type=\"eventratelimit:SourceAndObject\"} 2", metrics, StringComparison.Ordinal);
        Assert.Contains("portcullis_ratelimit_rejected_total{type=\"eventratelimit:User\"} 2", metrics, StringComparison.Ordinal);
        Assert.Contains("portcullis_ratelimit_rejected_total{type=\"eventratelimit:Namespace\"} 3", metrics, StringComparison.Ordinal);
        Assert.Contains("portcullis_ratelimit_rejected_total{type=\"eventratelimit:Server\"} 0", metrics, StringComparison.Ordinal);
        Assert.Contains("portcullis_requests_rejected_total{layer=\"eventratelimit\",code=\"429\"} 5", metrics, StringComparison.Ordinal);

        var refused = (await EventsAfterStopAsync(gw)).Where(e => Code(e) == 429).ToList();
        Assert.Equal(5, refused.Count);
        Assert.All(refused, e => Assert.Equal("eventratelimit", Annotation(e, "portcullis.dev/rejected-by")));
        Assert.Contains(refused, e => Annotation(e, "portcullis.dev/reason") == "Too many requests: limit reached on type User for key jane");
    }

    [Fact]
    public async Task A_changed_limits_file_is_applied_on_reload()
    {
        await using var gw = await StartAsync("apiVersion: eventratelimit.admission.k8s.io/v1alpha1\nkind: Configuration\nlimits:\n- {type: Server, qps: 1, burst: 1}\n");
        using var jane = gw.Client(gw.Pki.IssueClient("jane"));
        Assert.Equal(HttpStatusCode.OK, await CreateAsync(jane, "a", "p1"));
        await AssertRefusedAsync(jane, "a", "p2", "Too many requests: limit reached on type Server for key ");

        File.WriteAllText(Path.Combine(gw.Dir, "admission", "eventconfig.yaml"),
            "apiVersion: eventratelimit.admission.k8s.io/v1alpha1\nkind: Configuration\nlimits:\n- {type: Server, qps: 1, burst: 50}\n");
        await UntilMetricAsync(gw, "portcullis_config_reloads_total 1");
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(HttpStatusCode.OK, await CreateAsync(jane, "a", "q" + i));
        }
    }

    [Fact]
    public async Task A_bucket_refills_at_qps_on_the_hosts_clock()
    {
        var clock = new SteppedClock();
        await using var gw = await StartAsync("apiVersion: eventratelimit.admission.k8s.io/v1alpha1\nkind: Configuration\nlimits:\n- {type: User, qps: 2, burst: 1}\n", clock);
        using var jane = gw.Client(gw.Pki.IssueClient("jane"));
        Assert.Equal(HttpStatusCode.OK, await CreateAsync(jane, "a", "p1"));
        await AssertRefusedAsync(jane, "a", "p2", "Too many requests: limit reached on type User for key jane");
        clock.Advance(TimeSpan.FromMilliseconds(400));
        await AssertRefusedAsync(jane, "a", "p3", "Too many requests: limit reached on type User for key jane");
        clock.Advance(TimeSpan.FromMilliseconds(100)); // 2 qps: a token every 500 ms
        Assert.Equal(HttpStatusCode.OK, await CreateAsync(jane, "a", "p4"));
    }

    private static async Task<string> MetricsAsync(GatewayTestHost gw)
    {
        using var admin = new HttpClient { BaseAddress = gw.AdminUri };
        return await admin.GetStringAsync("/metrics").WaitAsync(Timeout);
    }

    private static async Task UntilMetricAsync(GatewayTestHost gw, string line)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!(await MetricsAsync(gw)).Contains(line, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting for {line}");
            }
            await Task.Delay(50);
        }
    }
}
