using System.Text;
using System.Text.Json.Nodes;
using static Portcullis.Audit.Tests.TestSupport;

namespace Portcullis.Audit.Tests;

/// <summary>
/// Issue 13, findings 6 and 7 at the level of the audit record: whitespace, nesting and invalid UTF-8 neither hide a
/// request object from the event nor throw; a size limit that stops capture says so with audit.k8s.io/truncated.
/// </summary>
public sealed class RequestObjectFidelityTests
{
    private static (AuditSink Sink, MemoryBackend Backend) NewSink(string level = "Request")
    {
        var backend = new MemoryBackend();
        var policy = AuditPolicyLoader.Parse($"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: {level}\n", "policy.yaml");
        return (new AuditSink(policy, [backend]), backend);
    }

    private static AuditRequest Create(AuditSink sink, int maxObjectBytes = AuditRequest.DefaultMaxObjectBytes) =>
        sink.BeginRequest("id", "/api/v1/namespaces/kube-system/configmaps", "create", User("jane", "developers"), ["10.0.0.1"], "test",
            Request("POST", "/api/v1/namespaces/kube-system/configmaps"), DateTime.UtcNow, maxObjectBytes);

    private static string Prepare(byte[] json) => Encoding.UTF8.GetString(AuditEventSerializer.PrepareObject(json, omitManagedFields: true).Span);

    private static string Nested(int depth, string leaf) =>
        """{"metadata":{"name":"deep"},"data":""" + string.Concat(Enumerable.Repeat("{\"a\":", depth)) + leaf + new string('}', depth) + "}";

    private static async Task<JsonObject> EventAsync(AuditRequest audit, MemoryBackend backend)
    {
        await audit.EmitAsync(AuditStage.ResponseComplete).WithTimeout();
        return JsonNode.Parse(Assert.Single(backend.Lines()), documentOptions: new System.Text.Json.JsonDocumentOptions { MaxDepth = 256 })!.AsObject();
    }

    [Fact]
    public void Whitespace_padding_is_removed_from_the_recorded_object_but_strings_are_kept()
    {
        var padded = "{\"metadata\":" + new string(' ', 110 * 1024) + "{\"name\":\"a  b\"},\n\t\"data\" : { \"k\" : [ 1 , 2 ] } }";

        Assert.Equal("""{"metadata":{"name":"a  b"},"data":{"k":[1,2]}}""", Prepare(Encoding.UTF8.GetBytes(padded)));
    }

    [Fact]
    public void Nesting_is_accepted_as_deep_as_kube_apiserver_decodes_it()
    {
        Assert.Equal(Nested(70, "1"), Prepare(Encoding.UTF8.GetBytes(Nested(70, "1"))));
        Assert.Equal(Nested(9990, "1"), Prepare(Encoding.UTF8.GetBytes(Nested(9990, "1"))));
        // Go's encoding/json refuses past 10000 levels ("exceeded max depth"), so kube-apiserver has no object to record.
        Assert.Equal("", Prepare(Encoding.UTF8.GetBytes(Nested(10001, "1"))));
    }

    [Fact]
    public void Invalid_utf8_is_replaced_byte_by_byte_as_gos_decoder_does()
    {
        // 0xFF is never valid; E2 82 is a truncated three-byte sequence: Go's decoder yields one U+FFFD per byte.
        byte[] body = [.. "{\"n\":\"a"u8, 0xFF, .. "b"u8, 0xE2, 0x82, .. "\"}"u8];

        Assert.Equal("{\"n\":\"a\uFFFDb\uFFFD\uFFFD\"}", Prepare(body));
        var valid = "{\"n\":\"é😀\"}"u8.ToArray();
        Assert.True(AuditEventSerializer.ReplaceInvalidUtf8(valid).Span.SequenceEqual(valid));
    }

    [Fact]
    public void Metadata_readers_never_throw_on_invalid_utf8_or_deep_nesting()
    {
        byte[] badName = [.. "{\"metadata\":{\"name\":\"bad-utf8-"u8, 0xFF, .. "\"}}"u8];
        byte[] badStatus = [.. "{\"kind\":\"Status\",\"message\":\"x"u8, 0xFF, .. "\",\"code\":422}"u8];

        Assert.Equal(("", "", "", ""), AuditResponseStatusParser.ReadMetadata(badName));
        Assert.Equal(new AuditResponseStatus(422), AuditResponseStatusParser.FromBody(422, badStatus));
        var deepBeforeMetadata = "{\"spec\":" + string.Concat(Enumerable.Repeat("{\"a\":", 70)) + "1" + new string('}', 70) + ",\"metadata\":{\"name\":\"late\"}}";
        Assert.Equal("late", AuditResponseStatusParser.ReadMetadata(Encoding.UTF8.GetBytes(deepBeforeMetadata)).Name);
    }

    [Fact]
    public async Task An_invalid_utf8_name_is_recorded_as_kube_apiserver_decodes_it()
    {
        var (sink, backend) = NewSink();
        var audit = Create(sink);
        byte[] body = [.. "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"bad-utf8-"u8, 0xFF, .. "\"}}"u8];
        audit.SetRequestObject(body);

        var e = await EventAsync(audit, backend);

        Assert.Equal("bad-utf8-\uFFFD", e["objectRef"]!["name"]!.GetValue<string>());
        Assert.Equal("bad-utf8-\uFFFD", e["requestObject"]!["metadata"]!["name"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_deeply_nested_create_keeps_its_object_and_name()
    {
        var (sink, backend) = NewSink();
        var audit = Create(sink);
        audit.SetRequestObject(Encoding.UTF8.GetBytes(Nested(70, "\"leaf\"")));

        var e = await EventAsync(audit, backend);

        Assert.Equal("deep", e["objectRef"]!["name"]!.GetValue<string>());
        JsonNode node = e["requestObject"]!["data"]!;
        for (var i = 0; i < 70; i++)
        {
            node = node["a"]!;
        }
        Assert.Equal("leaf", node.GetValue<string>());
    }

    [Fact]
    public async Task Objects_over_the_limit_are_left_out_with_kube_apiservers_truncated_annotation()
    {
        var (sink, backend) = NewSink("RequestResponse");
        var audit = Create(sink, maxObjectBytes: 1024);
        var padded = Encoding.UTF8.GetBytes("{\"metadata\":{\"name\":\"small\"}" + new string(' ', 4096) + "}");
        audit.SetRequestObject(padded); // 4 KiB on the wire, 29 bytes recorded: within the limit
        audit.SetResponseObject(Encoding.UTF8.GetBytes("{\"data\":\"" + new string('x', 2048) + "\"}"));

        var e = await EventAsync(audit, backend);

        Assert.Equal("small", e["requestObject"]!["metadata"]!["name"]!.GetValue<string>());
        Assert.False(e.ContainsKey("responseObject"));
        Assert.Equal("true", e["annotations"]!["audit.k8s.io/truncated"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_body_refused_for_its_size_is_marked_truncated_at_Request_level_only()
    {
        var (sink, backend) = NewSink();
        var audit = Create(sink);
        audit.SetRequestObjectTruncated();
        var e = await EventAsync(audit, backend);
        Assert.Equal("true", e["annotations"]!["audit.k8s.io/truncated"]!.GetValue<string>());

        var (metadataSink, metadataBackend) = NewSink("Metadata");
        var metadata = Create(metadataSink);
        metadata.SetRequestObjectTruncated();
        Assert.False((await EventAsync(metadata, metadataBackend)).ContainsKey("annotations"));
    }

    [Fact]
    public async Task A_request_refused_before_authentication_is_one_ResponseComplete_event_without_a_user()
    {
        var (sink, backend) = NewSink();
        await sink.AuditRefusedRequestAsync("id", "/api/v1/namespaces/a/../kube-system/secrets", "get", ["10.0.0.1"], "curl",
            Authorization.RequestInfoParser.NonResource("get", "/api/v1/namespaces/a/../kube-system/secrets"), DateTime.UtcNow,
            new AuditResponseStatus(400, "Failure", "dot segment", "BadRequest"),
            [new(AuditAnnotations.RejectedBy, "http"), new(AuditAnnotations.RejectReason, "dot segment")]).WithTimeout();

        var e = JsonNode.Parse(Assert.Single(backend.Lines()))!.AsObject();
        Assert.Equal("ResponseComplete", e["stage"]!.GetValue<string>());
        Assert.Empty(e["user"]!.AsObject());
        Assert.False(e.ContainsKey("objectRef"));
        Assert.Equal(400, e["responseStatus"]!["code"]!.GetValue<int>());
        Assert.Equal("BadRequest", e["responseStatus"]!["reason"]!.GetValue<string>());
        Assert.Equal("http", e["annotations"]!["portcullis.dev/rejected-by"]!.GetValue<string>());
        Assert.Equal("dot segment", e["annotations"]!["portcullis.dev/reason"]!.GetValue<string>());
    }
}
