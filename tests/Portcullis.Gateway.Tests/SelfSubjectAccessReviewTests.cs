using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// <c>kubectl auth can-i</c> through the gateway: a SelfSubjectAccessReview the gateway's chain would not allow is
/// answered by the gateway (allowed: false) without asking the upstream; one it allows is forwarded and answered by the
/// upstream (which in these tests says yes and echoes the review it received).
/// </summary>
public sealed class SelfSubjectAccessReviewTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private const string SsarPath = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

    /// <summary>As the bootstrap system:basic-user: every authenticated user may create the review itself.</summary>
    internal const string BasicUser = """
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: basic-user}
        rules:
        - apiGroups: [authorization.k8s.io]
          resources: [selfsubjectaccessreviews, selfsubjectrulesreviews]
          verbs: [create]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata: {name: basic-user}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: basic-user}
        subjects:
        - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:authenticated}
        """;

    private static Task<GatewayTestHost> StartAsync() =>
        GatewayTestHost.StartAsync(modes: "[RBAC]", files: new() { ["basic-user.yaml"] = BasicUser }, rbacManifests: "[rbac.yaml, basic-user.yaml]")
            .WaitAsync(Timeout);

    private static string Review(string attributes, string apiVersion = "authorization.k8s.io/v1") =>
        "{\"kind\":\"SelfSubjectAccessReview\",\"apiVersion\":\"" + apiVersion + "\",\"metadata\":{\"creationTimestamp\":null},\"spec\":{"
        + attributes + "},\"status\":{\"allowed\":false}}";

    private static string ResourceAttributes(string verb, string resource, string ns) =>
        "\"resourceAttributes\":{\"namespace\":\"" + ns + "\",\"verb\":\"" + verb + "\",\"resource\":\"" + resource + "\"}";

    private static async Task<(HttpStatusCode Code, JsonNode? Body, string Text)> PostAsync(HttpClient client, string body, string path = SsarPath, string contentType = "application/json")
    {
        using var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(contentType);
        using var response = await client.PostAsync(path, content).WaitAsync(Timeout);
        var text = await response.Content.ReadAsStringAsync().WaitAsync(Timeout);
        JsonNode? json = null;
        try
        {
            json = JsonNode.Parse(text);
        }
        catch (System.Text.Json.JsonException)
        {
            // asserted by the caller
        }
        return (response.StatusCode, json, text);
    }

    private static int ForwardedReviews(GatewayTestHost gw) =>
        gw.Upstream.Requests.Count(r => r.PathAndQuery.Contains("/selfsubjectaccessreviews", StringComparison.Ordinal));

    [Fact]
    public async Task A_review_the_gateway_would_refuse_is_answered_by_the_gateway_with_allowed_false()
    {
        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));

        // jane may not read secrets through the gateway ...
        using (var secrets = await jane.GetAsync("/api/v1/namespaces/prod/secrets").WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.Forbidden, secrets.StatusCode);
        }
        // ... so can-i says no, whatever the upstream would say, and the upstream is not asked
        var (code, body, text) = await PostAsync(jane, Review(ResourceAttributes("list", "secrets", "prod")));

        Assert.Equal(HttpStatusCode.Created, code);
        Assert.NotNull(body);
        Assert.Equal("SelfSubjectAccessReview", (string?)body["kind"]);
        Assert.Equal("authorization.k8s.io/v1", (string?)body["apiVersion"]);
        Assert.False((bool)body["status"]!["allowed"]!, text);
        Assert.Equal("the Portcullis gateway does not allow this request", (string?)body["status"]!["reason"]);
        Assert.Null(body["status"]!["denied"]); // RBAC has no opinion; it never denies
        Assert.Equal("secrets", (string?)body["spec"]!["resourceAttributes"]!["resource"]);
        Assert.Equal("prod", (string?)body["spec"]!["resourceAttributes"]!["namespace"]);
        Assert.Equal(0, ForwardedReviews(gw));
        Assert.Empty(gw.Upstream.Requests);
    }

    [Fact]
    public async Task A_review_the_gateway_allows_is_forwarded_unchanged_and_the_upstream_answers()
    {
        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        var sent = Review(ResourceAttributes("list", "pods", "dev"));

        var (code, body, text) = await PostAsync(jane, sent);

        Assert.Equal(HttpStatusCode.Created, code);
        Assert.NotNull(body);
        Assert.True((bool)body["status"]!["allowed"]!, text);
        Assert.Equal("allowed by the upstream", (string?)body["status"]!["reason"]);
        // the upstream received exactly the bytes jane sent (the echo carries them back with the upstream's status)
        var echoed = body.AsObject();
        echoed["status"] = new JsonObject { ["allowed"] = false };
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(sent), echoed), text);
        var forwarded = Assert.Single(gw.Upstream.Requests);
        Assert.Equal("POST", forwarded.Method);
        Assert.Equal(SsarPath, forwarded.PathAndQuery);
        Assert.Equal(["jane"], forwarded.Values("Impersonate-User"));
    }

    [Fact]
    public async Task A_chunked_body_is_replayed_to_the_upstream()
    {
        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        var sent = Review(ResourceAttributes("get", "configmaps", "dev"));
        using var content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(sent))); // no length: chunked
        content.Headers.ContentType = new("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, SsarPath) { Content = content };
        request.Headers.TransferEncodingChunked = true;

        using var response = await jane.SendAsync(request).WaitAsync(Timeout);
        var text = await response.Content.ReadAsStringAsync().WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var body = JsonNode.Parse(text)!;
        Assert.True((bool)body["status"]!["allowed"]!, text);
        Assert.Equal("configmaps", (string?)body["spec"]!["resourceAttributes"]!["resource"]);
        Assert.Equal(1, ForwardedReviews(gw));
    }

    [Fact]
    public async Task Non_resource_reviews_and_v1beta1_are_decided_by_the_gateway_too()
    {
        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        using var root = gw.Client(gw.Pki.IssueClient("root", "system:masters"));
        var metrics = Review("\"nonResourceAttributes\":{\"path\":\"/metrics\",\"verb\":\"get\"}");

        var (denied, deniedBody, deniedText) = await PostAsync(jane, metrics);
        Assert.Equal(HttpStatusCode.Created, denied);
        Assert.False((bool)deniedBody!["status"]!["allowed"]!, deniedText);
        Assert.Equal("/metrics", (string?)deniedBody["spec"]!["nonResourceAttributes"]!["path"]);

        var (beta, betaBody, betaText) = await PostAsync(jane, Review(ResourceAttributes("delete", "nodes", ""), "authorization.k8s.io/v1beta1"),
            "/apis/authorization.k8s.io/v1beta1/selfsubjectaccessreviews");
        Assert.Equal(HttpStatusCode.Created, beta);
        Assert.False((bool)betaBody!["status"]!["allowed"]!, betaText);
        Assert.Equal("authorization.k8s.io/v1beta1", (string?)betaBody["apiVersion"]);
        Assert.Equal(0, ForwardedReviews(gw));

        // system:masters may do anything at the gateway: the upstream decides
        var (allowed, allowedBody, allowedText) = await PostAsync(root, metrics);
        Assert.Equal(HttpStatusCode.Created, allowed);
        Assert.True((bool)allowedBody!["status"]!["allowed"]!, allowedText);
        Assert.Equal(1, ForwardedReviews(gw));
    }

    [Fact]
    public async Task The_review_is_decided_for_the_impersonated_user()
    {
        await using var gw = await StartAsync();
        using var root = gw.Client(gw.Pki.IssueClient("root", "system:masters"));
        root.DefaultRequestHeaders.Add("Impersonate-User", "jane"); // kubectl auth can-i --as jane

        var (code, body, text) = await PostAsync(root, Review(ResourceAttributes("delete", "secrets", "prod")));

        Assert.Equal(HttpStatusCode.Created, code);
        Assert.False((bool)body!["status"]!["allowed"]!, text);
        Assert.Equal(0, ForwardedReviews(gw));
    }

    [Fact]
    public async Task An_unreadable_content_type_is_quoted_clipped_in_the_refusal()
    {
        // The client's Content-Type is echoed in the Status (and so the audit event's responseStatus): clipped, not
        // kilobytes of whatever the client sent.
        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        var contentType = "application/x-" + new string('a', 4000);

        var result = await PostAsync(jane, "{}", contentType: contentType);

        Assert.Equal(415, (int)result.Code);
        var message = (string?)JsonNode.Parse(result.Text)!["message"];
        Assert.Contains("application/x-aaaa", message, StringComparison.Ordinal);
        Assert.DoesNotContain(contentType, message, StringComparison.Ordinal);
        Assert.True(message!.Length < 400, $"the message has {message.Length} characters");
        Assert.Equal(0, ForwardedReviews(gw));
    }

    [Theory]
    [InlineData("application/json", "not json", 400)]
    [InlineData("application/json", "{\"spec\":{}}", 400)]
    [InlineData("application/json", "{\"spec\":{\"resourceAttributes\":{\"verb\":\"get\",\"resource\":\"pods\"},\"resourceAttributes\":{\"verb\":\"get\",\"resource\":\"secrets\"}}}", 400)]
    [InlineData("application/yaml", "spec:\n  resourceAttributes: {verb: get, resource: pods, namespace: dev}\n", 415)]
    [InlineData("application/vnd.kubernetes.protobuf", "k8s\u0000", 400)]
    [InlineData("application/vnd.kubernetes.protobuf", "{\"spec\":{}}", 400)]
    [InlineData("application/cbor", "\u00a0", 415)]
    public async Task A_review_the_gateway_cannot_read_is_refused_not_forwarded(string contentType, string body, int expected)
    {
        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));

        var (code, json, text) = await PostAsync(jane, body, contentType: contentType);

        Assert.Equal(expected, (int)code);
        Assert.Equal("Status", (string?)json?["kind"]);
        Assert.Equal(expected, (int?)json?["code"]);
        Assert.False(string.IsNullOrEmpty((string?)json?["message"]), text);
        Assert.Equal(0, ForwardedReviews(gw));
    }

    /// <summary>A length-delimited protobuf field.</summary>
    private static byte[] Field(int number, byte[] value) =>
        [(byte)((number << 3) | 2), .. Varint(value.Length), .. value];

    private static byte[] Field(int number, string value) => Field(number, Encoding.UTF8.GetBytes(value));

    private static byte[] Varint(int value)
    {
        var bytes = new List<byte>();
        do
        {
            var b = (byte)(value & 0x7F);
            value >>= 7;
            bytes.Add(value == 0 ? b : (byte)(b | 0x80));
        }
        while (value != 0);
        return [.. bytes];
    }

    /// <summary>"k8s\0" + runtime.Unknown{typeMeta, raw: SelfSubjectAccessReview{spec{resourceAttributes}}}, as kubectl sends it.</summary>
    private static byte[] ProtobufReview(params byte[][] resourceAttributes)
    {
        var spec = resourceAttributes.SelectMany(a => Field(1, a)).ToArray();
        var review = Field(2, spec);
        var typeMeta = Field(1, [.. Field(1, "authorization.k8s.io/v1"), .. Field(2, "SelfSubjectAccessReview")]);
        return [.. "k8s\0"u8, .. typeMeta, .. Field(2, review), .. Field(4, "application/vnd.kubernetes.protobuf")];
    }

    private static async Task<(HttpStatusCode Code, string Text)> PostProtobufAsync(HttpClient client, byte[] body)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new("application/vnd.kubernetes.protobuf");
        using var response = await client.PostAsync(SsarPath, content).WaitAsync(Timeout);
        return (response.StatusCode, await response.Content.ReadAsStringAsync().WaitAsync(Timeout));
    }

    [Fact]
    public async Task Protobuf_reviews_are_read_as_go_reads_them()
    {
        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        byte[] Attributes(string ns, string verb, string resource) => [.. Field(1, ns), .. Field(2, verb), .. Field(5, resource)];

        var (denied, deniedText) = await PostProtobufAsync(jane, ProtobufReview(Attributes("prod", "list", "secrets")));
        Assert.Equal(HttpStatusCode.Created, denied);
        var body = JsonNode.Parse(deniedText)!;
        Assert.False((bool)body["status"]!["allowed"]!, deniedText);
        Assert.Equal("secrets", (string?)body["spec"]!["resourceAttributes"]!["resource"]);

        // a repeated message is merged and the last string wins: pods, then secrets → secrets (refused here)
        var (merged, mergedText) = await PostProtobufAsync(jane, ProtobufReview(Attributes("dev", "list", "pods"), Field(5, "secrets")));
        Assert.Equal(HttpStatusCode.Created, merged);
        Assert.Equal("secrets", (string?)JsonNode.Parse(mergedText)!["spec"]!["resourceAttributes"]!["resource"]);
        Assert.Equal("dev", (string?)JsonNode.Parse(mergedText)!["spec"]!["resourceAttributes"]!["namespace"]);
        Assert.Equal(0, ForwardedReviews(gw));

        var truncated = ProtobufReview(Attributes("dev", "list", "pods"))[..^3];
        var (bad, _) = await PostProtobufAsync(jane, truncated);
        Assert.Equal(HttpStatusCode.BadRequest, bad);
        Assert.Equal(0, ForwardedReviews(gw));

        var (allowed, _) = await PostProtobufAsync(jane, ProtobufReview(Attributes("dev", "list", "pods")));
        Assert.Equal(HttpStatusCode.Created, allowed);
        Assert.Equal(1, ForwardedReviews(gw));
    }

    [Fact]
    public async Task A_review_larger_than_64_KiB_is_refused_with_413()
    {
        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        var padding = new string('x', 64 * 1024);
        var sent = Review(ResourceAttributes("list", "pods", "dev") + ",\"extra\":{\"x\":\"" + padding + "\"}");

        var (code, json, text) = await PostAsync(jane, sent);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, code);
        Assert.Equal(413, (int?)json?["code"]);
        Assert.Contains("65536", text);
        Assert.Equal(0, ForwardedReviews(gw));
    }
}

/// <summary>The real client: <c>kubectl auth can-i</c> through the gateway says no where the gateway refuses.</summary>
public sealed class KubectlCanITests
{
    [KubectlFact]
    public async Task Kubectl_auth_can_i_says_no_where_the_gateway_refuses_and_asks_the_upstream_otherwise()
    {
        await using var gw = await GatewayTestHost.StartAsync(modes: "[RBAC]",
            files: new() { ["basic-user.yaml"] = SelfSubjectAccessReviewTests.BasicUser }, rbacManifests: "[rbac.yaml, basic-user.yaml]").WaitAsync(TimeSpan.FromSeconds(30));
        TestPki.WritePem(gw.Pki.IssueClient("jane", "developers"), Path.Combine(gw.Dir, "jane.crt"), Path.Combine(gw.Dir, "jane.key"));
        var kubeconfig = Path.Combine(gw.Dir, "jane.kubeconfig");
        File.WriteAllText(kubeconfig, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: gw
              cluster: {"{"}server: "{gw.Uri.GetLeftPart(UriPartial.Authority)}", certificate-authority: "{Path.Combine(gw.Dir, "ca.crt")}"{"}"}
            users:
            - name: jane
              user: {"{"}client-certificate: "{Path.Combine(gw.Dir, "jane.crt")}", client-key: "{Path.Combine(gw.Dir, "jane.key")}"{"}"}
            contexts:
            - name: gw
              context: {"{"}cluster: gw, user: jane{"}"}
            current-context: gw
            """);

        // kubectl sends the review as protobuf; the test upstream serves no discovery, so kubectl warns and asks anyway
        using var kubectl = new Kubectl(kubeconfig);
        var no = await kubectl.RunAsync("--request-timeout=10s", "auth", "can-i", "list", "secrets", "-n", "prod");
        Assert.True(no.ExitCode == 1 && no.Stdout.Trim() == "no - the Portcullis gateway does not allow this request", no.ToString());
        Assert.DoesNotContain(gw.Upstream.Requests, r => r.PathAndQuery.Contains("/selfsubjectaccessreviews", StringComparison.Ordinal));

        var yes = await kubectl.RunAsync("--request-timeout=10s", "auth", "can-i", "list", "pods", "-n", "dev");
        Assert.True(yes.ExitCode == 0 && yes.Stdout.StartsWith("yes", StringComparison.Ordinal), yes.ToString());
        Assert.Single(gw.Upstream.Requests, r => r.PathAndQuery.Contains("/selfsubjectaccessreviews", StringComparison.Ordinal));
    }
}
