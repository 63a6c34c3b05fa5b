using System.Net;
using System.Text;
using System.Text.Json;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue 13, findings 6 and 7, through the real gateway: the audit log records what kube-apiserver records, request
/// objects whatever their whitespace, framing, nesting or encoding, with the code the client got.
/// </summary>
public sealed class AuditFidelityTests
{
    private const string Policy = """
        apiVersion: audit.k8s.io/v1
        kind: Policy
        omitStages: [RequestReceived]
        rules:
        - level: Request
        """;

    internal static Task<GatewayTestHost> StartAsync(string extraYaml = "") =>
        GatewayTestHost.StartAsync("audit:\n  policyFile: audit-policy.yaml\n  log:\n    path: audit.log\n    mode: blocking\n" + extraYaml,
            modes: "[RBAC]", files: new() { ["audit-policy.yaml"] = Policy });

    /// <summary>The audit log, read after the gateway stopped (every event is then on disk).</summary>
    internal static async Task<List<JsonElement>> EventsAfterStopAsync(GatewayTestHost gw)
    {
        await gw.Host.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var options = new JsonDocumentOptions { MaxDepth = 256 };
        var log = Path.Combine(gw.Dir, "audit.log");
        if (!File.Exists(log))
        {
            return [];
        }
        return [.. File.ReadAllLines(log).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l, options).RootElement)];
    }

    private static async Task<HttpStatusCode> PostAsync(GatewayTestHost gw, string path, byte[] body)
    {
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var response = await jane.PostAsync(path, content).WaitAsync(TimeSpan.FromSeconds(30));
        return response.StatusCode;
    }

    private static JsonElement Single(List<JsonElement> events, string verb) => Assert.Single(events, e => e.GetProperty("verb").GetString() == verb);

    internal static int Code(JsonElement e) => e.GetProperty("responseStatus").GetProperty("code").GetInt32();

    internal static string? Annotation(JsonElement e, string key) =>
        e.TryGetProperty("annotations", out var a) && a.TryGetProperty(key, out var v) ? v.GetString() : null;

    [Fact]
    public async Task A_create_padded_with_110_KB_of_whitespace_is_recorded_compacted()
    {
        await using var gw = await StartAsync();
        var body = Encoding.UTF8.GetBytes("""{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"padded","namespace":"kube-system"},""" +
            new string(' ', 110 * 1024) + """ "data":{"k":"v"}}""");

        var code = await PostAsync(gw, "/api/v1/namespaces/kube-system/configmaps", body);

        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal(body, Assert.Single(gw.Upstream.Requests).Body); // forwarded as sent
        var events = await EventsAfterStopAsync(gw);
        var create = Single(events, "create");
        var recorded = create.GetProperty("requestObject");
        Assert.Equal("padded", recorded.GetProperty("metadata").GetProperty("name").GetString());
        Assert.Equal("v", recorded.GetProperty("data").GetProperty("k").GetString());
        Assert.True(recorded.GetRawText().Length < 200, "the object is recorded compacted, without the padding");
        Assert.Equal("padded", create.GetProperty("objectRef").GetProperty("name").GetString());
        Assert.Null(Annotation(create, "audit.k8s.io/truncated"));
    }

    [Fact]
    public async Task A_chunked_create_without_Content_Length_is_recorded_with_its_name()
    {
        await using var gw = await StartAsync();
        const string part1 = """{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"chun""";
        const string part2 = """ked","namespace":"kube-system"},"data":{"k":"v"}}""";

        var response = await RawHttps.SendAsync(gw, gw.Pki.IssueClient("jane", "developers"), $"""
            POST /api/v1/namespaces/kube-system/configmaps HTTP/1.1
            Host: localhost
            Content-Type: application/json
            Transfer-Encoding: chunked
            Connection: close

            {part1.Length:x}
            {part1}
            {part2.Length:x}
            {part2}
            0


            """);

        Assert.StartsWith("HTTP/1.1 200", response);
        Assert.Equal(Encoding.UTF8.GetBytes(part1 + part2), Assert.Single(gw.Upstream.Requests).Body);
        var create = Single(await EventsAfterStopAsync(gw), "create");
        Assert.Equal("chunked", create.GetProperty("objectRef").GetProperty("name").GetString());
        Assert.Equal("chunked", create.GetProperty("requestObject").GetProperty("metadata").GetProperty("name").GetString());
    }

    [Fact]
    public async Task A_create_with_a_field_nested_70_levels_deep_is_recorded()
    {
        await using var gw = await StartAsync();
        var nested = string.Concat(Enumerable.Repeat("{\"a\":", 70)) + "\"leaf\"" + new string('}', 70);
        var body = Encoding.UTF8.GetBytes("""{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"data":""" + nested + "}");

        Assert.Equal(HttpStatusCode.OK, await PostAsync(gw, "/api/v1/namespaces/kube-system/configmaps", body));

        var create = Single(await EventsAfterStopAsync(gw), "create");
        Assert.Equal("deep", create.GetProperty("objectRef").GetProperty("name").GetString());
        var node = create.GetProperty("requestObject").GetProperty("data");
        for (var i = 0; i < 70; i++)
        {
            node = node.GetProperty("a");
        }
        Assert.Equal("leaf", node.GetString());
    }

    [Fact]
    public async Task A_body_over_the_capture_limit_is_marked_truncated()
    {
        await using var gw = await StartAsync("limits:\n  maxRequestBodyBytes: 4096");
        var body = """{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"k":" """ + new string('x', 5000) + "\"}}";

        var response = await RawHttps.SendAsync(gw, gw.Pki.IssueClient("jane", "developers"), $"""
            POST /api/v1/namespaces/kube-system/configmaps HTTP/1.1
            Host: localhost
            Content-Type: application/json
            Transfer-Encoding: chunked
            Connection: close

            {body.Length:x}
            {body}
            0


            """);

        Assert.StartsWith("HTTP/1.1 413", response);
        var create = Single(await EventsAfterStopAsync(gw), "create");
        Assert.Equal("true", Annotation(create, "audit.k8s.io/truncated"));
        Assert.False(create.TryGetProperty("requestObject", out _));
        Assert.Equal(413, Code(create));
    }

    [Fact]
    public async Task A_body_that_is_not_valid_UTF8_is_forwarded_and_audited_with_the_code_the_client_got()
    {
        await using var gw = await StartAsync();
        byte[] body = [.. """{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bad-utf8-"""u8, 0xFF, .. "\"}}"u8];

        var code = await PostAsync(gw, "/api/v1/namespaces/kube-system/configmaps", body);

        Assert.Equal(HttpStatusCode.OK, code); // the upstream's answer
        Assert.Equal(body, Assert.Single(gw.Upstream.Requests).Body); // the bytes as sent: the upstream decides
        var create = Single(await EventsAfterStopAsync(gw), "create");
        Assert.Equal((int)code, Code(create));
        Assert.Equal("bad-utf8-\uFFFD", create.GetProperty("objectRef").GetProperty("name").GetString()); // as Go decodes it
        Assert.Equal("bad-utf8-\uFFFD", create.GetProperty("requestObject").GetProperty("metadata").GetProperty("name").GetString());
    }

    [Fact]
    public async Task A_body_that_is_not_JSON_is_forwarded_and_audited_without_an_object()
    {
        await using var gw = await StartAsync();
        var body = """{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cut"""u8.ToArray();

        var code = await PostAsync(gw, "/api/v1/namespaces/kube-system/configmaps", body);

        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal(body, Assert.Single(gw.Upstream.Requests).Body);
        var create = Single(await EventsAfterStopAsync(gw), "create");
        Assert.Equal((int)code, Code(create));
        Assert.False(create.TryGetProperty("requestObject", out _));
        Assert.False(create.GetProperty("objectRef").TryGetProperty("name", out _));
    }
}
