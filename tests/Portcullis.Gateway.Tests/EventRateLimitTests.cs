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

    private const string SourceAndObjectOnly = "apiVersion: eventratelimit.admission.k8s.io/v1alpha1\nkind: Configuration\nlimits:\n- {type: SourceAndObject, qps: 1, burst: 2}\n";

    // The SourceAndObject key comes from the body the gateway read, whatever its framing and encoding: events about
    // different objects or from different sources are limited separately, the same source and object together.
    [Theory]
    [InlineData("json", "chunked")]
    [InlineData("json", "h2")]
    [InlineData("protobuf", "length")]
    [InlineData("protobuf", "chunked")]
    [InlineData("protobuf", "h2")]
    [InlineData("yaml", "chunked")]
    public async Task Source_and_object_is_keyed_from_the_body_whatever_its_framing_and_encoding(string encoding, string framing)
    {
        await using var gw = await StartAsync(SourceAndObjectOnly);
        using var jane = gw.Client(gw.Pki.IssueClient("jane"), version: framing == "h2" ? HttpVersion.Version20 : HttpVersion.Version11);

        async Task<HttpResponseMessage> SendAsync(string involved, string component)
        {
            var (body, type) = encoding switch
            {
                "protobuf" => (ProtobufEvent("a", involved, component), "application/vnd.kubernetes.protobuf"),
                "yaml" => (Encoding.UTF8.GetBytes($"apiVersion: v1\nkind: Event\nmetadata: {{generateName: e-, namespace: a}}\nreason: Test\nsource: {{component: {component}, host: node-1}}\ninvolvedObject: {{kind: Pod, namespace: a, name: {involved}, uid: u-{involved}, apiVersion: v1}}\n"), "application/yaml"),
                _ => (Encoding.UTF8.GetBytes(await Event("a", involved, component).ReadAsStringAsync()), "application/json"),
            };
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/namespaces/a/events")
            {
                Content = framing == "length" ? new ByteArrayContent(body) : new UnsizedContent(body),
                Version = jane.DefaultRequestVersion,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(type);
            var response = await jane.SendAsync(request).WaitAsync(Timeout);
            Assert.Equal(framing == "h2" ? HttpVersion.Version20 : HttpVersion.Version11, response.Version);
            return response;
        }

        using (var first = await SendAsync("web", "kubelet"))
        using (var second = await SendAsync("web", "kubelet"))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        }
        using (var third = await SendAsync("web", "kubelet"))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
            Assert.Contains("limit reached on type SourceAndObject for key kubeletnode-1Podawebu-webv1", await third.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var otherObject = await SendAsync("db", "kubelet"))
        using (var otherSource = await SendAsync("web", "scheduler"))
        {
            Assert.Equal(HttpStatusCode.OK, otherObject.StatusCode);
            Assert.Equal(HttpStatusCode.OK, otherSource.StatusCode);
        }
        if (framing != "length")
        {
            // the upstream got the bodies unframed by a length, as the client sent them
            Assert.All(gw.Upstream.Requests.Where(r => r.Method == "POST"), r => Assert.Empty(r.Values("Content-Length")));
        }
    }

    // Hostile bodies (a JSON string that is not UTF-8 threw out of the middleware as a 500; YAML nested a million deep
    // overflowed the stack and ended the process; an alias bomb used as a mapping key never finished) are the empty key:
    // forwarded, then limited together in the one bucket of unreadable bodies.
    public static TheoryData<string, byte[], string> HostileBodies() => new()
    {
        { "non-UTF-8 JSON", [.. "{\"source\":{\"component\":\""u8, 0xC3, 0x28, 0xFF, .. "\"},\"involvedObject\":{\"kind\":\"Pod\"}}"u8], "application/json" },
        { "deep YAML", Encoding.ASCII.GetBytes(new string('[', 1_000_000) + new string(']', 1_000_000)), "application/yaml" },
        { "YAML alias bomb as a key", Encoding.ASCII.GetBytes("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + string.Concat(Enumerable.Range(1, 29).Select(i => $"a{i}: &a{i} [{string.Join(", ", Enumerable.Repeat($"*a{i - 1}", 10))}]\n")) + "? *a29\n: boom\n"), "application/yaml" },
        { "protobuf magic and garbage", [.. "k8s\0"u8, 0x12, .. Enumerable.Repeat((byte)0xFF, 10), 0x01], "application/vnd.kubernetes.protobuf" },
    };

    [Theory]
    [MemberData(nameof(HostileBodies))]
    public async Task A_hostile_body_is_forwarded_under_the_empty_key_never_a_500(string name, byte[] body, string type)
    {
        await using var gw = await StartAsync(SourceAndObjectOnly);
        using var jane = gw.Client(gw.Pki.IssueClient("jane"));
        async Task<(HttpStatusCode, string)> SendAsync()
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(type);
            using var response = await jane.PostAsync("/api/v1/namespaces/a/events", content).WaitAsync(Timeout);
            return (response.StatusCode, await response.Content.ReadAsStringAsync().WaitAsync(Timeout));
        }
        Assert.Equal(HttpStatusCode.OK, (await SendAsync()).Item1);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync()).Item1);
        var (code, text) = await SendAsync();
        Assert.True(code == HttpStatusCode.TooManyRequests, $"{name}: {code}");
        Assert.Contains("limit reached on type SourceAndObject for key \"", text, StringComparison.Ordinal);
    }

    // A patch's object is the stored event, which the gateway does not see: the event it patches stands for its source
    // and object, so patches of one event are limited together and another event's are not.
    [Fact]
    public async Task Patches_of_one_event_share_a_bucket_and_another_events_do_not()
    {
        await using var gw = await StartAsync(SourceAndObjectOnly);
        using var jane = gw.Client(gw.Pki.IssueClient("jane"));
        async Task<HttpStatusCode> PatchAsync(string name)
        {
            var patch = new StringContent("{\"count\":2,\"lastTimestamp\":\"2026-12-05T18:00:00Z\"}", Encoding.UTF8, "application/strategic-merge-patch+json");
            using var response = await jane.PatchAsync($"/api/v1/namespaces/a/events/{name}", patch).WaitAsync(Timeout);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.OK, await PatchAsync("web.1"));
        Assert.Equal(HttpStatusCode.OK, await PatchAsync("web.1"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await PatchAsync("web.1"));
        Assert.Equal(HttpStatusCode.OK, await PatchAsync("db.1"));
        using var refused = await jane.PatchAsync("/api/v1/namespaces/a/events/web.1", new StringContent("{}", Encoding.UTF8, "application/merge-patch+json")).WaitAsync(Timeout);
        Assert.Contains("limit reached on type SourceAndObject for key a/web.1", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    // core/v1 Event in Kubernetes protobuf: "k8s\0" + runtime.Unknown {1 typeMeta {1 apiVersion, 2 kind}, 2 raw}, raw the
    // Event {1 metadata {3 namespace}, 2 involvedObject {1 kind, 2 namespace, 3 name, 4 uid, 5 apiVersion}, 3 reason,
    // 5 source {1 component, 2 host}} (k8s.io/api core/v1 generated.proto).
    private static byte[] ProtobufEvent(string ns, string involved, string component)
    {
        var raw = Message(
            Field(1, Message(Field(3, ns))),
            Field(2, Message(Field(1, "Pod"), Field(2, ns), Field(3, involved), Field(4, "u-" + involved), Field(5, "v1"))),
            Field(3, "Test"),
            Field(5, Message(Field(1, component), Field(2, "node-1"))));
        return [.. "k8s\0"u8, .. Message(Field(1, Message(Field(1, "v1"), Field(2, "Event"))), Field(2, raw))];

        static byte[] Message(params byte[][] fields) => [.. fields.SelectMany(f => f)];
        static byte[] Field(int number, object value)
        {
            var bytes = value as byte[] ?? Encoding.UTF8.GetBytes((string)value);
            var head = new List<byte> { (byte)(number << 3 | 2) };
            for (var n = (uint)bytes.Length; ; n >>= 7)
            {
                if (n < 0x80)
                {
                    head.Add((byte)n);
                    break;
                }
                head.Add((byte)(n & 0x7F | 0x80));
            }
            return [.. head, .. bytes];
        }
    }

    /// <summary>A body of no announced length: HTTP/1.1 sends it chunked, HTTP/2 as DATA frames without content-length.</summary>
    private sealed class UnsizedContent(byte[] body) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            // two writes, so the body arrives in more than one chunk or frame
            await stream.WriteAsync(body.AsMemory(0, body.Length / 2));
            await stream.FlushAsync();
            await stream.WriteAsync(body.AsMemory(body.Length / 2));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = -1;
            return false;
        }
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
