using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Microsoft.AspNetCore.Http;
using Portcullis.Authentication;
using Portcullis.Authorization.Webhook;
using Portcullis.Kubeconfig;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Authorization.Tests;

/// <summary>A SubjectAccessReview server (POST /authorize) on a <see cref="LoopbackServer"/> over HTTPS, with a kubeconfig that trusts its CA.</summary>
public sealed class SarServer : IAsyncDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("portcullis-sar-");
    private LoopbackServer _server = null!;

    public ConcurrentQueue<(string Body, string? Authorization)> Requests { get; } = new();
    /// <summary>The Content-Type and Accept headers of each request, in order.</summary>
    public ConcurrentQueue<(string ContentType, string Accept)> Headers { get; } = new();
    /// <summary>A <c>Retry-After</c> header sent with every answer that is not 2xx, when set.</summary>
    public string? RetryAfter { get; set; }
    /// <summary>What the next requests get: status code and body; a pending task holds the answer back.</summary>
    public Func<Task<(int Status, string Body)>> Answer { get; set; } = () => Task.FromResult((200, """{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","status":{"allowed":true}}"""));

    public string KubeconfigPath => Path.Combine(_dir.FullName, "authz.kubeconfig");

    private SarServer()
    {
    }

    public static async Task<SarServer> StartAsync()
    {
        using var pki = new TestPki("sar-test");
        var server = new SarServer();
        server._server = await LoopbackServer.StartAsync(server.HandleAsync, new LoopbackTls(pki.IssueServer()));
        File.WriteAllText(server.KubeconfigPath, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: authz
              cluster:
                server: {new Uri(server._server.Url, "/authorize")}
                certificate-authority-data: {Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(pki.CertificatePem))}
            users:
            - name: gateway
              user:
                token: s3cret-token
            current-context: webhook
            contexts:
            - name: webhook
              context:
                cluster: authz
                user: gateway
            """);
        return server;
    }

    private async Task HandleAsync(HttpContext context)
    {
        if (context.Request.Path != "/authorize" || !HttpMethods.IsPost(context.Request.Method))
        {
            context.Response.StatusCode = 404;
            return;
        }
        using var reader = new StreamReader(context.Request.Body);
        Headers.Enqueue((context.Request.ContentType ?? "", context.Request.Headers.Accept.ToString()));
        Requests.Enqueue((await reader.ReadToEndAsync(context.RequestAborted), context.Request.Headers.Authorization.ToString()));
        var (status, body) = await Answer().WaitAsync(context.RequestAborted);
        context.Response.StatusCode = status;
        if (RetryAfter is not null && status / 100 != 2)
        {
            context.Response.Headers.RetryAfter = RetryAfter;
        }
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body, context.RequestAborted);
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        if (Directory.Exists(_dir.FullName))
        {
            _dir.Delete(true);
        }
    }
}

public class WebhookTests
{
    private static string Fixture(string name) => File.ReadAllText(Path.Combine(BootstrapDecisionTable.FixturesDirectory, "webhook", name));

    private static readonly AuthorizationAttributes KittensResource = new(
        UserInfo.Create("jane", ["group1", "group2"]),
        RequestInfoParser.Resource("get", "unicorn.example.org", "pods", ns: "kittensandponies"));

    private static readonly AuthorizationAttributes DebugPath = new(UserInfo.Create("jane", ["group1", "group2"]), RequestInfoParser.NonResource("get", "/debug"));

    private static WebhookAuthorizer Create(SarServer server, string version = "v1beta1", TimeProvider? time = null, string failurePolicy = "NoOpinion", TimeSpan? timeout = null) =>
        WebhookAuthorizer.Create(server.KubeconfigPath, new WebhookAuthorizerOptions
        {
            Version = version,
            FailurePolicy = failurePolicy,
            Timeout = timeout ?? TimeSpan.FromSeconds(10),
        }, time);

    /// <summary>
    /// The docs' examples leave out what the API server's serializer always writes besides them — an empty
    /// <c>metadata</c> and <c>status: {allowed: false}</c>: asserted here, then removed so the rest compares to the example.
    /// </summary>
    internal static JsonNode WithoutEmptyMetadataAndStatus(string body)
    {
        var node = JsonNode.Parse(body)!.AsObject();
        Assert.Equal("{}", node["metadata"]!.ToJsonString());
        Assert.Equal("""{"allowed":false}""", node["status"]!.ToJsonString());
        node.Remove("metadata");
        node.Remove("status");
        return node;
    }

    private static Task<AuthorizationResult> Ask(IAuthorizer a, AuthorizationAttributes attributes) =>
        a.AuthorizeAsync(attributes, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(20));

    [Theory]
    [InlineData("k8s-website-webhook-sar-v1beta1-request-resource.json", true)]
    [InlineData("k8s-website-webhook-sar-v1beta1-request-nonresource.json", false)]
    public void V1beta1_requests_equal_the_docs_fixtures(string fixture, bool resource)
    {
        var expected = JsonNode.Parse(Fixture(fixture))!;
        var actual = WithoutEmptyMetadataAndStatus(SubjectAccessReview.RequestJson(SubjectAccessReview.SpecJson(resource ? KittensResource : DebugPath, "v1beta1"), "v1beta1"));
        Assert.True(JsonNode.DeepEquals(expected, actual), actual.ToJsonString());
    }

    [Fact]
    public void V1_request_equals_the_docs_fixture_with_groups()
    {
        var yaml = new YamlStream();
        yaml.Load(new StringReader(Fixture("k8s-website-authorization-sar-v1-request.yaml")));
        var spec = (YamlMappingNode)((YamlMappingNode)yaml.Documents[0].RootNode)["spec"];
        var attributes = (YamlMappingNode)spec["resourceAttributes"];
        string S(YamlMappingNode m, string k) => ((YamlScalarNode)m[k]).Value ?? "";
        var request = RequestInfoParser.Resource(S(attributes, "verb"), S(attributes, "group"), S(attributes, "resource"), ns: S(attributes, "namespace")) with { ApiVersion = S(attributes, "version") };
        var user = new UserInfo(S(spec, "user"), S(spec, "uid"), ((YamlSequenceNode)spec["groups"]).Children.Select(c => ((YamlScalarNode)c).Value!).ToList(), UserInfo.NoExtra);
        var json = JsonNode.Parse(SubjectAccessReview.SpecJson(new AuthorizationAttributes(user, request), "v1"))!;
        Assert.Equal("""{"resourceAttributes":{"verb":"create","version":"v1","resource":"persistentvolumes"},"user":"alice","groups":["system:authenticated"],"uid":"alice-uid-123"}""", json.ToJsonString());
    }

    [Theory]
    [InlineData("k8s-website-webhook-sar-v1beta1-response-allowed.json", AuthorizationDecision.Allow, "")]
    [InlineData("k8s-website-webhook-sar-v1beta1-response-denied.json", AuthorizationDecision.Deny, "user does not have read access to the namespace")]
    [InlineData("k8s-website-webhook-sar-v1beta1-response-noopinion.json", AuthorizationDecision.NoOpinion, "user does not have read access to the namespace")]
    public async Task Fixture_responses_round_trip_through_a_real_server(string response, AuthorizationDecision decision, string reason)
    {
        await using var server = await SarServer.StartAsync();
        server.Answer = () => Task.FromResult((200, Fixture(response)));
        using var webhook = Create(server);
        var r = await Ask(webhook, KittensResource);
        Assert.Equal(decision, r.Decision);
        Assert.Equal(reason, r.Reason);
        Assert.Null(r.Error);
        var (body, authorization) = Assert.Single(server.Requests);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(Fixture("k8s-website-webhook-sar-v1beta1-request-resource.json")), WithoutEmptyMetadataAndStatus(body)), body);
        Assert.Equal("Bearer s3cret-token", authorization);
    }

    [Fact]
    public async Task Denied_reason_flows_into_the_403()
    {
        await using var server = await SarServer.StartAsync();
        server.Answer = () => Task.FromResult((200, Fixture("k8s-website-webhook-sar-v1beta1-response-denied.json")));
        using var chain = new AuthorizerChain([new SystemMastersAuthorizer(), Create(server)]);
        var r = await Ask(chain, KittensResource);
        Assert.Equal("pods.unicorn.example.org is forbidden: User \"jane\" cannot get resource \"pods\" in API group \"unicorn.example.org\" in the namespace \"kittensandponies\": user does not have read access to the namespace",
            Forbidden.Message("jane", KittensResource.Request, r.Reason));
    }

    [Fact]
    public async Task Allowed_and_denied_together_is_deny_with_error()
    {
        await using var server = await SarServer.StartAsync();
        server.Answer = () => Task.FromResult((200, """{"kind":"SubjectAccessReview","status":{"allowed":true,"denied":true}}"""));
        using var webhook = Create(server, "v1");
        var r = await Ask(webhook, KittensResource);
        Assert.Equal(AuthorizationDecision.Deny, r.Decision);
        Assert.NotNull(r.Error);
        Assert.Contains("\"groups\":[\"group1\",\"group2\"]", Assert.Single(server.Requests).Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Answers_are_cached_by_spec_for_their_ttl()
    {
        await using var server = await SarServer.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var webhook = WebhookAuthorizer.Create(server.KubeconfigPath, new WebhookAuthorizerOptions { AuthorizedTtl = TimeSpan.FromMinutes(5), UnauthorizedTtl = TimeSpan.FromSeconds(30) }, time);
        Assert.True((await Ask(webhook, KittensResource)).IsAllowed);
        Assert.True((await Ask(webhook, KittensResource)).IsAllowed);
        Assert.Equal(1, webhook.Calls);
        time.Advance(TimeSpan.FromMinutes(4));
        Assert.True((await Ask(webhook, KittensResource)).IsAllowed);
        Assert.Equal(1, webhook.Calls);
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.True((await Ask(webhook, KittensResource)).IsAllowed);
        Assert.Equal(2, webhook.Calls);

        server.Answer = () => Task.FromResult((200, Fixture("k8s-website-webhook-sar-v1beta1-response-noopinion.json")));
        Assert.False((await Ask(webhook, DebugPath)).IsAllowed);
        Assert.False((await Ask(webhook, DebugPath)).IsAllowed);
        Assert.Equal(3, webhook.Calls);
        time.Advance(TimeSpan.FromSeconds(31));
        Assert.False((await Ask(webhook, DebugPath)).IsAllowed);
        Assert.Equal(4, webhook.Calls);
    }

    [Theory]
    [InlineData("NoOpinion", AuthorizationDecision.NoOpinion)]
    [InlineData("Deny", AuthorizationDecision.Deny)]
    public async Task Server_errors_take_the_failure_policy_and_are_not_cached(string policy, AuthorizationDecision decision)
    {
        await using var server = await SarServer.StartAsync();
        // 502 without Retry-After: an error kube-apiserver does not retry (WebhookRetryTests has the retried ones).
        server.Answer = () => Task.FromResult((502, "{}"));
        using var webhook = Create(server, failurePolicy: policy);
        var r = await Ask(webhook, KittensResource);
        Assert.Equal(decision, r.Decision);
        Assert.Equal("webhook authorizer: the webhook answered 502", r.Error);
        Assert.True(r.IsInternalError);
        _ = await Ask(webhook, KittensResource);
        Assert.Equal(2, webhook.Calls);
    }

    [Fact]
    public async Task A_slow_webhook_times_out_into_the_failure_policy()
    {
        await using var server = await SarServer.StartAsync();
        var never = new TaskCompletionSource<(int, string)>(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Answer = () => never.Task;
        using var webhook = Create(server, timeout: TimeSpan.FromMilliseconds(300));
        var r = await Ask(webhook, KittensResource);
        Assert.Equal(AuthorizationDecision.NoOpinion, r.Decision);
        Assert.Equal("webhook authorizer: the webhook did not answer within 0.3s", r.Error);
        never.SetResult((200, "{}"));
    }

    [Fact]
    public async Task Unreachable_webhook_is_an_error_not_an_allow()
    {
        await using var server = await SarServer.StartAsync();
        var text = File.ReadAllText(server.KubeconfigPath);
        var port = new Uri(text.Split("server: ")[1].Split('\n')[0].Trim()).Port;
        await server.DisposeAsync();
        Directory.CreateDirectory(Path.GetDirectoryName(server.KubeconfigPath)!);
        File.WriteAllText(server.KubeconfigPath, text);
        using var webhook = Create(server);
        var r = await Ask(webhook, KittensResource);
        Assert.False(r.IsAllowed);
        Assert.NotNull(r.Error);
        Assert.True(port > 0);
    }

    [Fact]
    public void Kubeconfig_reader_resolves_the_docs_example()
    {
        var (file, errors) = KubeconfigFile.Load(Path.Combine(BootstrapDecisionTable.FixturesDirectory, "webhook", "k8s-website-webhook-authz.kubeconfig.yaml"));
        Assert.Empty(errors);
        Assert.Equal("webhook", file!.CurrentContext);
        Assert.Equal("https://authz.example.com/authorize", Assert.Single(file.Clusters).Server);
        Assert.Equal("/path/to/ca.pem", file.Clusters[0].CertificateAuthority);
        Assert.Equal("/path/to/cert.pem", Assert.Single(file.Users).ClientCertificate);
        var ex = Assert.Throws<InvalidOperationException>(() => file.Resolve());
        Assert.Contains("cannot read the credentials or CA", ex.Message, StringComparison.Ordinal);
    }
}
