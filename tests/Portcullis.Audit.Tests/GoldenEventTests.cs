using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Portcullis.Authentication;
using Portcullis.Http;
using static Portcullis.Audit.Tests.TestSupport;

namespace Portcullis.Audit.Tests;

public sealed class GoldenEventTests
{
    private static readonly DateTime Received = new(2026, 11, 28, 19, 20, 0, 123, 456, DateTimeKind.Utc);
    private static readonly DateTime Done = Received.AddTicks(25_120); // +2.512 ms

    private const string EveryStagePolicy = """
        apiVersion: audit.k8s.io/v1
        kind: Policy
        rules:
        - level: RequestResponse
          resources:
          - group: apps
            resources: ["deployments"]
        - level: Request
          resources:
          - group: ""
            resources: ["pods/exec"]
        - level: Metadata
        """;

    private static readonly UserInfo Alice = UserInfo.Create("alice", ["dev", "system:authenticated"], "uid-1",
        new Dictionary<string, IReadOnlyList<string>> { ["scopes.example.com"] = ["read", "write"] });

    private static (AuditSink Sink, MemoryBackend Backend) NewSink(string policyYaml = EveryStagePolicy)
    {
        var backend = new MemoryBackend();
        return (new AuditSink(AuditPolicyLoader.Parse(policyYaml, "policy.yaml"), [backend]), backend);
    }

    private static AuditRequest Begin(AuditSink sink, string method, string uri, UserInfo? user = null) =>
        sink.BeginRequest("8c1d0b2e-0000-4000-8000-000000000001", uri, Request(method, uri).Verb, user ?? Alice,
            ["10.0.0.7", "192.168.1.1"], "kubectl/v1.32.4 (linux/amd64) kubernetes/abc1234", Request(method, uri), Received);

    /// <summary>Parses an event line, drops auditID and timestamps, and returns the rest for field-by-field comparison.</summary>
    private static JsonObject Strip(string line, bool checkTimestamps = true)
    {
        var o = JsonNode.Parse(line)!.AsObject();
        if (checkTimestamps)
        {
            Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", o["requestReceivedTimestamp"]!.GetValue<string>());
            Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", o["stageTimestamp"]!.GetValue<string>());
        }
        o.Remove("auditID");
        o.Remove("requestReceivedTimestamp");
        o.Remove("stageTimestamp");
        return o;
    }

    private static void AssertFields(string expected, string actual)
    {
        var e = Strip(expected, checkTimestamps: false);
        var a = Strip(actual);
        Assert.Equal(e.Select(p => p.Key), a.Select(p => p.Key)); // same fields in the same order
        foreach (var (key, value) in e)
        {
            Assert.True(JsonNode.DeepEquals(value, a[key]), $"field {key}: expected {value?.ToJsonString()} got {a[key]?.ToJsonString()}");
        }
    }

    [Fact]
    public async Task Get_at_Metadata_is_byte_for_byte_kube_apiservers_event()
    {
        var (sink, backend) = NewSink();
        var audit = Begin(sink, "GET", "/api/v1/namespaces/default/pods/web-1");
        audit.AddAnnotation("authorization.k8s.io/reason", "RBAC: allowed by ClusterRoleBinding \"view-all\" of ClusterRole \"view\" to User \"alice\"");
        audit.AddAnnotation("authorization.k8s.io/decision", "allow");
        Assert.False((await audit.EmitAsync(AuditStage.RequestReceived).WithTimeout()).RejectRequest);
        audit.SetResponseStatusFromBody(200, """{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1"}}"""u8);
        audit.SetResponseObject(Encoding.UTF8.GetBytes("""{"kind":"Pod"}""")); // ignored at Metadata
        await audit.EmitAsync(AuditStage.ResponseComplete, Done).WithTimeout();

        var lines = backend.Lines();
        Assert.Equal(2, lines.Count);
        Assert.Equal(
            """{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"8c1d0b2e-0000-4000-8000-000000000001","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods/web-1","verb":"get","user":{"username":"alice","uid":"uid-1","groups":["dev","system:authenticated"],"extra":{"scopes.example.com":["read","write"]}},"sourceIPs":["10.0.0.7","192.168.1.1"],"userAgent":"kubectl/v1.32.4 (linux/amd64) kubernetes/abc1234","objectRef":{"resource":"pods","namespace":"default","name":"web-1","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-11-28T19:20:00.123456Z","stageTimestamp":"2026-11-28T19:20:00.125968Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \"view-all\" of ClusterRole \"view\" to User \"alice\""}}""",
            lines[1]);
        Assert.Contains("\"stage\":\"RequestReceived\"", lines[0], StringComparison.Ordinal);
        Assert.Contains("\"stageTimestamp\":\"2026-11-28T19:20:00.123456Z\"", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("responseStatus", lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task List_has_an_objectRef_without_name()
    {
        var (sink, backend) = NewSink();
        var audit = Begin(sink, "GET", "/api/v1/namespaces/default/pods?limit=500");
        audit.SetResponseStatus(200);
        await audit.EmitAsync(AuditStage.ResponseComplete, Done).WithTimeout();

        AssertFields("""
            {"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"x","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods?limit=500","verb":"list","user":{"username":"alice","uid":"uid-1","groups":["dev","system:authenticated"],"extra":{"scopes.example.com":["read","write"]}},"sourceIPs":["10.0.0.7","192.168.1.1"],"userAgent":"kubectl/v1.32.4 (linux/amd64) kubernetes/abc1234","objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-11-28T19:20:00.123456Z","stageTimestamp":"2026-11-28T19:20:00.123456Z"}
            """, Assert.Single(backend.Lines()));
    }

    [Fact]
    public async Task Watch_emits_RequestReceived_ResponseStarted_and_ResponseComplete()
    {
        var (sink, backend) = NewSink();
        var audit = Begin(sink, "GET", "/apis/apps/v1/namespaces/default/deployments?watch=true&resourceVersion=10");
        await audit.EmitAsync(AuditStage.RequestReceived).WithTimeout();
        audit.SetResponseStatus(200);
        await audit.EmitAsync(AuditStage.ResponseStarted, Received.AddMilliseconds(1)).WithTimeout();
        await audit.EmitAsync(AuditStage.ResponseStarted).WithTimeout(); // at most once
        await audit.EmitAsync(AuditStage.ResponseComplete, Done).WithTimeout();

        var lines = backend.Lines();
        Assert.Equal(["RequestReceived", "ResponseStarted", "ResponseComplete"],
            lines.Select(l => JsonNode.Parse(l)!["stage"]!.GetValue<string>()));
        AssertFields("""
            {"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"x","stage":"ResponseStarted","requestURI":"/apis/apps/v1/namespaces/default/deployments?watch=true\u0026resourceVersion=10","verb":"watch","user":{"username":"alice","uid":"uid-1","groups":["dev","system:authenticated"],"extra":{"scopes.example.com":["read","write"]}},"sourceIPs":["10.0.0.7","192.168.1.1"],"userAgent":"kubectl/v1.32.4 (linux/amd64) kubernetes/abc1234","objectRef":{"resource":"deployments","namespace":"default","apiGroup":"apps","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-11-28T19:20:00.123456Z","stageTimestamp":"2026-11-28T19:20:00.123456Z"}
            """, lines[1]);
        Assert.Contains("?watch=true\\u0026resourceVersion=10", lines[1], StringComparison.Ordinal); // Go escapes &
    }

    [Fact]
    public async Task ResponseStarted_is_not_emitted_for_a_request_that_is_not_long_running()
    {
        var (sink, backend) = NewSink();
        var audit = Begin(sink, "GET", "/api/v1/namespaces/default/pods/web-1");
        await audit.EmitAsync(AuditStage.ResponseStarted).WithTimeout();
        await audit.EmitAsync(AuditStage.ResponseComplete).WithTimeout();

        var line = Assert.Single(backend.Lines());
        Assert.Contains("\"responseStatus\":{\"metadata\":{},\"status\":\"Success\",\"message\":\"Connection closed early\",\"code\":200}", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_at_RequestResponse_carries_both_bodies_compacted_and_without_managedFields()
    {
        var (sink, backend) = NewSink("""
            apiVersion: audit.k8s.io/v1
            kind: Policy
            omitManagedFields: true
            omitStages: ["RequestReceived"]
            rules:
            - level: RequestResponse
            """);
        var audit = Begin(sink, "POST", "/apis/apps/v1/namespaces/default/deployments?fieldManager=kubectl-client-side-apply");
        Assert.True(audit.WantsRequestObject);
        Assert.True(audit.WantsResponseObject);
        audit.AddAnnotation("authorization.k8s.io/decision", "allow");
        audit.AddAnnotation("authorization.k8s.io/reason", "");
        await audit.EmitAsync(AuditStage.RequestReceived).WithTimeout();
        audit.SetRequestObject(Encoding.UTF8.GetBytes("""
            {
              "apiVersion": "apps/v1",
              "kind": "Deployment",
              "metadata": {"name": "web", "labels": {"tier": "<front&back>"}},
              "spec": {"replicas": 2}
            }
            """));
        audit.SetResponseStatusFromBody(201, """{"kind":"Deployment","apiVersion":"apps/v1"}"""u8);
        audit.SetResponseObject(Encoding.UTF8.GetBytes("""{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"default","uid":"u-1","managedFields":[{"manager":"kubectl","operation":"Update"}],"resourceVersion":"42"},"spec":{"replicas":2}}"""));
        await audit.EmitAsync(AuditStage.ResponseComplete, Done).WithTimeout();

        var line = Assert.Single(backend.Lines());
        AssertFields("""
            {"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"x","stage":"ResponseComplete","requestURI":"/apis/apps/v1/namespaces/default/deployments?fieldManager=kubectl-client-side-apply","verb":"create","user":{"username":"alice","uid":"uid-1","groups":["dev","system:authenticated"],"extra":{"scopes.example.com":["read","write"]}},"sourceIPs":["10.0.0.7","192.168.1.1"],"userAgent":"kubectl/v1.32.4 (linux/amd64) kubernetes/abc1234","objectRef":{"resource":"deployments","namespace":"default","name":"web","apiGroup":"apps","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},"requestObject":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"tier":"<front&back>"}},"spec":{"replicas":2}},"responseObject":{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"default","uid":"u-1","resourceVersion":"42"},"spec":{"replicas":2}},"requestReceivedTimestamp":"x","stageTimestamp":"x","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}
            """.Replace("\"x\",\"stageTimestamp\":\"x\"", "\"2026-11-28T19:20:00.123456Z\",\"stageTimestamp\":\"2026-11-28T19:20:00.123456Z\"", StringComparison.Ordinal), line);
        Assert.DoesNotContain('\n', line);
        Assert.DoesNotContain("managedFields", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Failed_authentication_is_one_ResponseStarted_event_with_an_empty_user()
    {
        var (sink, backend) = NewSink("""
            apiVersion: audit.k8s.io/v1
            kind: Policy
            rules:
            - level: None
              userGroups: ["system:unauthenticated", "system:authenticated"]
            - level: Metadata
            """);
        var uri = "/api/v1/namespaces/kube-system/secrets";
        var result = await sink.AuditFailedAuthenticationAsync("id-401", uri, "list", ["203.0.113.9"], "curl/8.5.0",
            Request("GET", uri), Received, stageTimestamp: Done).WithTimeout();

        Assert.False(result.Failed);
        Assert.Equal(
            """{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"id-401","stage":"ResponseStarted","requestURI":"/api/v1/namespaces/kube-system/secrets","verb":"list","user":{},"sourceIPs":["203.0.113.9"],"userAgent":"curl/8.5.0","objectRef":{"resource":"secrets","namespace":"kube-system","apiVersion":"v1"},"responseStatus":{"metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401},"requestReceivedTimestamp":"2026-11-28T19:20:00.123456Z","stageTimestamp":"2026-11-28T19:20:00.125968Z"}""",
            Assert.Single(backend.Lines()));
    }

    [Fact]
    public async Task Failed_authentication_emits_nothing_when_the_policy_omits_ResponseStarted()
    {
        var (sink, backend) = NewSink("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [ResponseStarted]\nrules:\n- level: Metadata\n");
        using var counts = new AuditCounts(sink.Metrics);

        await sink.AuditFailedAuthenticationAsync("id", "/api", "get", [], "", Request("GET", "/api"), Received).WithTimeout();

        Assert.Empty(backend.Events);
        Assert.Equal(1, counts.LevelCount(AuditLevel.Metadata));
    }

    [Fact]
    public async Task Forbidden_takes_the_Status_fields_from_the_403_body()
    {
        var (sink, backend) = NewSink();
        var audit = Begin(sink, "GET", "/api/v1/namespaces/default/pods", UserInfo.Create("system:admin", ["system:masters", "system:authenticated"]));
        audit.SetImpersonatedUser(UserInfo.Create("bob", ["system:authenticated"]));
        audit.AddAnnotation("authorization.k8s.io/decision", "forbid");
        audit.AddAnnotation("authorization.k8s.io/reason", "");
        var body = Status.Failure("pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"",
            "Forbidden", new StatusDetails(Kind: "pods"), 403);
        audit.SetResponseStatusFromBody(403, body);
        await audit.EmitAsync(AuditStage.ResponseComplete, Done).WithTimeout();

        AssertFields("""
            {"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"x","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"list","user":{"username":"system:admin","groups":["system:masters","system:authenticated"]},"impersonatedUser":{"username":"bob","groups":["system:authenticated"]},"sourceIPs":["10.0.0.7","192.168.1.1"],"userAgent":"kubectl/v1.32.4 (linux/amd64) kubernetes/abc1234","objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},"responseStatus":{"metadata":{},"status":"Failure","message":"pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"","reason":"Forbidden","details":{"kind":"pods"},"code":403},"requestReceivedTimestamp":"x","stageTimestamp":"x","annotations":{"authorization.k8s.io/decision":"forbid","authorization.k8s.io/reason":""}}
            """, Assert.Single(backend.Lines()));
    }

    [Fact]
    public async Task Too_many_requests_from_APF_is_a_bare_code_with_the_gateway_annotation()
    {
        var (sink, backend) = NewSink();
        var audit = Begin(sink, "GET", "/api/v1/namespaces/default/configmaps");
        audit.AddAnnotation(AuditAnnotations.RejectedBy, "apf");
        audit.AddAnnotation(AuditAnnotations.RejectReason, "queue-full");
        audit.SetResponseStatusFromBody(429, "Too many requests, please try again later.\n"u8);
        await audit.EmitAsync(AuditStage.ResponseComplete, Done).WithTimeout();

        var o = Strip(Assert.Single(backend.Lines()));
        Assert.Equal("""{"metadata":{},"code":429}""", o["responseStatus"]!.ToJsonString());
        Assert.Equal("""{"portcullis.dev/reason":"queue-full","portcullis.dev/rejected-by":"apf"}""", o["annotations"]!.ToJsonString());
    }

    [Fact]
    public async Task Exec_is_long_running_and_audits_the_upgrade()
    {
        var (sink, backend) = NewSink();
        var uri = "/api/v1/namespaces/default/pods/web-1/exec?command=sh&stdin=true&tty=true";
        var audit = Begin(sink, "POST", uri);
        await audit.EmitAsync(AuditStage.RequestReceived).WithTimeout();
        audit.SetResponseStatus(101);
        await audit.EmitAsync(AuditStage.ResponseStarted, Received.AddMilliseconds(30)).WithTimeout();
        await audit.EmitAsync(AuditStage.ResponseComplete, Done.AddSeconds(5)).WithTimeout();

        var lines = backend.Lines();
        Assert.Equal(3, lines.Count);
        AssertFields("""
            {"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"x","stage":"ResponseStarted","requestURI":"/api/v1/namespaces/default/pods/web-1/exec?command=sh&stdin=true&tty=true","verb":"create","user":{"username":"alice","uid":"uid-1","groups":["dev","system:authenticated"],"extra":{"scopes.example.com":["read","write"]}},"sourceIPs":["10.0.0.7","192.168.1.1"],"userAgent":"kubectl/v1.32.4 (linux/amd64) kubernetes/abc1234","objectRef":{"resource":"pods","namespace":"default","name":"web-1","apiVersion":"v1","subresource":"exec"},"responseStatus":{"metadata":{},"code":101},"requestReceivedTimestamp":"x","stageTimestamp":"x"}
            """, lines[1]);
    }

    [Fact]
    public async Task Panic_has_kube_apiservers_status()
    {
        var (sink, backend) = NewSink();
        var audit = Begin(sink, "GET", "/api/v1/namespaces/default/pods/web-1");
        await audit.EmitPanicAsync("index out of range", Done).WithTimeout();

        var o = Strip(Assert.Single(backend.Lines()));
        Assert.Equal("Panic", o["stage"]!.GetValue<string>());
        Assert.Equal("""{"metadata":{},"status":"Failure","message":"APIServer panic'd: index out of range","reason":"InternalError","code":500}""",
            o["responseStatus"]!.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
    }

    [Fact]
    public void Field_order_matches_a_real_kube_apiserver_event_from_the_fixtures()
    {
        var fixture = File.ReadAllText(Fixture("falco-k8s-audit/create_kube_system_secret.json")).Trim();
        var fixtureNode = JsonNode.Parse(fixture)!.AsObject();
        var e = new AuditEvent
        {
            Level = AuditLevel.Metadata,
            AuditId = fixtureNode["auditID"]!.GetValue<string>(),
            Stage = AuditStage.ResponseComplete,
            RequestUri = "/api/v1/namespaces/kube-system/secrets",
            Verb = "create",
            User = UserInfo.Create("admin", ["system:masters", "system:authenticated"]),
            SourceIps = ["127.0.0.1"],
            UserAgent = "kubeadm/v1.16.2 (linux/amd64) kubernetes/c97fe50",
            ObjectRef = new AuditObjectReference("secrets", "kube-system", "bootstrap-token-ne7bxu", "", "v1"),
            ResponseStatus = new AuditResponseStatus(201),
            RequestReceivedTimestamp = new DateTime(2020, 3, 24, 18, 53, 49, 23, 18, DateTimeKind.Utc),
            StageTimestamp = new DateTime(2020, 3, 24, 18, 53, 49, 25, 530, DateTimeKind.Utc),
            Annotations = [new("authorization.k8s.io/decision", "allow"), new("authorization.k8s.io/reason", "")],
        };

        Assert.Equal(fixture, AuditEventSerializer.SerializeToString(e));
    }

    [Fact]
    public void Field_order_of_a_full_event_follows_the_fixture_log_lines()
    {
        // For every real v1 line, the keys it shares with our full event come in the same relative order.
        var realLines = File.ReadLines(Fixture("audit2rbac/demo.log"))
            .Append(File.ReadAllText(Fixture("falco-k8s-audit/create_kube_system_secret.json")))
            .Select(l => JsonNode.Parse(l)!.AsObject().Select(p => p.Key).ToList())
            .ToList();
        var ours = JsonNode.Parse(AuditEventSerializer.SerializeToString(new AuditEvent
        {
            Level = AuditLevel.RequestResponse,
            AuditId = "a",
            Stage = AuditStage.ResponseComplete,
            RequestUri = "/api/v1/namespaces/d/pods",
            Verb = "create",
            User = Alice,
            ImpersonatedUser = UserInfo.Create("bob"),
            SourceIps = ["::1"],
            UserAgent = "ua",
            ObjectRef = new AuditObjectReference("pods", "d", "p", "", "v1"),
            ResponseStatus = new AuditResponseStatus(201),
            RequestObject = "{}"u8.ToArray(),
            ResponseObject = "{}"u8.ToArray(),
            RequestReceivedTimestamp = Received,
            StageTimestamp = Done,
            Annotations = [new("k", "v")],
        }))!.AsObject().Select(p => p.Key).ToList();

        foreach (var real in realLines)
        {
            Assert.Equal(real.Where(ours.Contains), ours.Where(real.Contains));
        }
        var covered = realLines.SelectMany(r => r).ToHashSet();
        Assert.Contains("impersonatedUser", covered);
        Assert.Contains("annotations", covered);
        Assert.Contains("userAgent", covered);
    }

    [Fact]
    public void Strings_are_escaped_as_Go_does()
    {
        var e = new AuditEvent
        {
            Level = AuditLevel.Metadata,
            AuditId = "a",
            Stage = AuditStage.ResponseComplete,
            RequestUri = "/x?a=<b>&c=\u2028\"\\\u0001\b\f\n\r\té😀\uD800x\u001f",
            Verb = "get",
            RequestReceivedTimestamp = Received,
            StageTimestamp = Received,
        };

        Assert.Contains("\"requestURI\":\"/x?a=\\u003cb\\u003e\\u0026c=\\u2028\\\"\\\\\\u0001\\b\\f\\n\\r\\té😀\\ufffdx\\u001f\"",
            AuditEventSerializer.SerializeToString(e), StringComparison.Ordinal);
    }

    [Fact]
    public async Task User_agents_longer_than_1024_characters_are_truncated()
    {
        var (sink, backend) = NewSink();
        var uri = "/api/v1/namespaces/default/pods/p";
        var audit = sink.BeginRequest("id", uri, "get", Alice, [], new string('a', 1500), Request("GET", uri), Received);
        await audit.EmitAsync(AuditStage.ResponseComplete).WithTimeout();

        var ua = JsonNode.Parse(Assert.Single(backend.Lines()))!["userAgent"]!.GetValue<string>();
        Assert.Equal(new string('a', 1024) + "...TRUNCATED", ua);
    }

    [Fact]
    public async Task Oversized_bodies_are_left_out_and_annotated()
    {
        var (sink, backend) = NewSink("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n");
        var audit = Begin(sink, "POST", "/api/v1/namespaces/default/configmaps");
        var big = Encoding.UTF8.GetBytes("{\"data\":{\"k\":\"" + new string('x', audit.MaxObjectBytes) + "\"}}");
        audit.SetRequestObject(big);
        audit.SetResponseObject("not json"u8.ToArray());
        await audit.EmitAsync(AuditStage.ResponseComplete).WithTimeout();

        var o = JsonNode.Parse(Assert.Single(backend.Lines()))!.AsObject();
        Assert.False(o.ContainsKey("requestObject"));
        Assert.False(o.ContainsKey("responseObject"));
        Assert.Equal("true", o["annotations"]!["audit.k8s.io/truncated"]!.GetValue<string>());
    }

    [Fact]
    public async Task Annotations_keep_the_first_value_and_are_safe_to_add_concurrently()
    {
        var (sink, backend) = NewSink();
        var audit = Begin(sink, "GET", "/api/v1/namespaces/default/pods/p");
        await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 100; i++)
            {
                audit.AddAnnotation($"portcullis.dev/k{i}", t.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }))).WithTimeout();
        await audit.EmitAsync(AuditStage.ResponseComplete).WithTimeout();

        var annotations = JsonNode.Parse(Assert.Single(backend.Lines()))!["annotations"]!.AsObject();
        Assert.Equal(100, annotations.Count);
        Assert.Equal(annotations.Select(a => a.Key).Order(StringComparer.Ordinal), annotations.Select(a => a.Key));
    }

    [Fact]
    public async Task Level_None_and_omitted_stages_emit_nothing()
    {
        var (sink, backend) = NewSink("""
            apiVersion: audit.k8s.io/v1
            kind: Policy
            omitStages: ["RequestReceived"]
            rules:
            - level: None
              users: ["system:kube-proxy"]
            - level: Metadata
              omitStages: ["ResponseComplete"]
            """);
        using var counts = new AuditCounts(sink.Metrics);
        var proxy = Begin(sink, "GET", "/api/v1/endpoints", UserInfo.Create("system:kube-proxy"));
        Assert.Same(AuditRequest.Disabled, proxy);
        await proxy.EmitAsync(AuditStage.ResponseComplete).WithTimeout();
        var other = Begin(sink, "GET", "/api/v1/endpoints");
        await other.EmitAsync(AuditStage.RequestReceived).WithTimeout();
        await other.EmitAsync(AuditStage.ResponseComplete).WithTimeout();
        await other.EmitPanicAsync("boom").WithTimeout();

        Assert.Equal("Panic", JsonNode.Parse(Assert.Single(backend.Lines()))!["stage"]!.GetValue<string>());
        Assert.Equal(1, counts.LevelCount(AuditLevel.None));
        Assert.Equal(1, counts.LevelCount(AuditLevel.Metadata));
        Assert.Equal(1, counts.EventsTotal);
    }

    [Fact]
    public async Task A_blocking_strict_failure_at_RequestReceived_rejects_the_request_and_is_counted()
    {
        var strict = new MemoryBackend(AuditMode.BlockingStrict) { Fail = true };
        var sink = new AuditSink(AuditPolicyLoader.Parse("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n", "p.yaml"), [strict]);
        using var counts = new AuditCounts(sink.Metrics);
        var audit = Begin(sink, "GET", "/api/v1/namespaces/default/pods/p");

        var received = await audit.EmitAsync(AuditStage.RequestReceived).WithTimeout();
        var complete = await audit.EmitAsync(AuditStage.ResponseComplete).WithTimeout();

        Assert.True(received.RejectRequest);
        Assert.True(received.StrictFailure);
        Assert.True(complete.Failed);
        Assert.False(complete.RejectRequest);
        Assert.Equal(1, counts.RequestsRejected);
        Assert.Equal("failed to store audit event", AuditWriteResult.FailedToStoreMessage);
    }
}
