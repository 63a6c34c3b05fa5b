using System.Text;

namespace Portcullis.Audit.Tests;

public sealed class ObjectAndStatusTests
{
    private static string Prepare(string json, bool omitManagedFields = true) =>
        Encoding.UTF8.GetString(AuditEventSerializer.PrepareObject(Encoding.UTF8.GetBytes(json), omitManagedFields).Span);

    [Theory]
    [InlineData("""{"metadata":{"managedFields":[{"a":1}],"name":"x"}}""", """{"metadata":{"name":"x"}}""")]
    [InlineData("""{"metadata":{"name":"x","managedFields":[{"a":1}]}}""", """{"metadata":{"name":"x"}}""")]
    [InlineData("""{"metadata":{"name":"x", "managedFields" : [ ] , "uid":"u"}}""", """{"metadata":{"name":"x","uid":"u"}}""")]
    [InlineData("""{"metadata":{"managedFields":null}}""", """{"metadata":{}}""")]
    [InlineData("""{"spec":{"managedFields":[1]},"metadata":{"name":"x"}}""", """{"spec":{"managedFields":[1]},"metadata":{"name":"x"}}""")]
    [InlineData("""{"kind":"PodList","items":[{"metadata":{"name":"a","managedFields":[{}]}},{"metadata":{"managedFields":[{}],"name":"b"}}]}""",
        """{"kind":"PodList","items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]}""")]
    [InlineData("""{"data":{"metadata":{"managedFields":1}}}""", """{"data":{"metadata":{"managedFields":1}}}""")]
    public void ManagedFields_are_cut_only_from_object_and_item_metadata(string input, string expected) =>
        Assert.Equal(expected, Prepare(input));

    [Fact]
    public void ManagedFields_stay_when_the_policy_keeps_them() =>
        Assert.Equal("""{"metadata":{"managedFields":[]}}""", Prepare("""{"metadata":{"managedFields":[]}}""", omitManagedFields: false));

    [Theory]
    [InlineData("")]
    [InlineData("[1,2]")]
    [InlineData("\"text\"")]
    [InlineData("{\"a\":")]
    [InlineData("{\"a\":1} {\"b\":2}")]
    [InlineData("k8s\0protobuf")]
    public void Anything_but_one_JSON_object_is_left_out(string input) => Assert.Equal("", Prepare(input));

    [Fact]
    public void Pretty_printed_bodies_are_compacted_as_kube_apiserver_records_them_without_touching_strings() =>
        Assert.Equal("""{"a":"x  y","b":[1,2],"c":"q\" {"}""", Prepare("{\r\n  \"a\": \"x  y\",\n  \"b\": [1,\n\t2],  \"c\" : \"q\\\" {\"\n}\n"));

    [Fact]
    public void An_EventRateLimit_429_Status_keeps_retryAfterSeconds()
    {
        var status = AuditResponseStatusParser.FromBody(429, """
            {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"limit reached on type Namespace for key dev","reason":"TooManyRequests","details":{"retryAfterSeconds":1},"code":429}
            """u8);

        Assert.Equal(new AuditResponseStatus(429, "Failure", "limit reached on type Namespace for key dev", "TooManyRequests",
            new AuditStatusDetails(RetryAfterSeconds: 1)), status);
        var e = new AuditEvent
        {
            Level = AuditLevel.Metadata,
            AuditId = "a",
            Stage = AuditStage.ResponseComplete,
            RequestUri = "/api/v1/namespaces/dev/events",
            Verb = "create",
            ResponseStatus = status,
            RequestReceivedTimestamp = DateTime.UnixEpoch,
            StageTimestamp = DateTime.UnixEpoch,
        };
        Assert.Contains("""
            "responseStatus":{"metadata":{},"status":"Failure","message":"limit reached on type Namespace for key dev","reason":"TooManyRequests","details":{"retryAfterSeconds":1},"code":429}
            """, AuditEventSerializer.SerializeToString(e), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"kind":"Pod","status":{"phase":"Running"}}""")]
    [InlineData("{\"kind\":\"Status\"")]
    [InlineData("""<html>Status</html>""")]
    public void A_body_that_is_not_a_Status_gives_only_the_code(string body) =>
        Assert.Equal(new AuditResponseStatus(503), AuditResponseStatusParser.FromBody(503, Encoding.UTF8.GetBytes(body)));

    [Fact]
    public void Metadata_is_read_from_the_top_level_object_only()
    {
        var (name, ns, uid, rv) = AuditResponseStatusParser.ReadMetadata("""
            {"spec":{"metadata":{"name":"inner"}},"metadata":{"name":"web","namespace":"dev","uid":"u-1","resourceVersion":"7","labels":{"name":"x"}}}
            """u8);

        Assert.Equal(("web", "dev", "u-1", "7"), (name, ns, uid, rv));
    }

    [Fact]
    public void EventList_wraps_the_events_as_kube_apiservers_webhook_body()
    {
        var e = new AuditEvent
        {
            Level = AuditLevel.None,
            AuditId = "a",
            Stage = AuditStage.Panic,
            RequestUri = "/",
            Verb = "get",
            RequestReceivedTimestamp = DateTime.UnixEpoch,
            StageTimestamp = DateTime.UnixEpoch,
        };
        var body = Encoding.UTF8.GetString(AuditEventSerializer.SerializeEventList([e, e]));

        var one = AuditEventSerializer.SerializeToString(e);
        Assert.Equal("{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{},\"items\":[" + one + "," + one + "]}", body);
        Assert.Equal("{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{},\"items\":[]}",
            Encoding.UTF8.GetString(AuditEventSerializer.SerializeEventList([])));
    }
}
