using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// <c>kubectl auth can-i --list</c> through the gateway: every SelfSubjectRulesReview the chain lets through is answered
/// by the gateway from its own chain for the effective user, and never reaches the upstream.
/// </summary>
public sealed class SelfSubjectRulesReviewTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private const string SsrrPath = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews";
    private const string DevReview = """{"kind":"SelfSubjectRulesReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},"spec":{"namespace":"dev"},"status":{"resourceRules":null,"nonResourceRules":null,"incomplete":false}}""";

    // rbac.yaml (developers: pods and configmaps, /redirect and /slow) then basic-user.yaml, in binding order
    private const string DeveloperRule = """{"verbs":["get","list","watch","create","update","patch","delete"],"apiGroups":[""],"resources":["pods","pods/log","pods/exec","configmaps"]}""";
    private const string BasicUserRule = """{"verbs":["create"],"apiGroups":["authorization.k8s.io"],"resources":["selfsubjectaccessreviews","selfsubjectrulesreviews"]}""";
    private const string DeveloperPaths = """{"verbs":["get"],"nonResourceURLs":["/redirect","/slow"]}""";

    private static string Answer(string resourceRules, string nonResourceRules, string rest = "\"incomplete\":false", string version = "v1") =>
        "{\"kind\":\"SelfSubjectRulesReview\",\"apiVersion\":\"authorization.k8s.io/" + version + "\",\"metadata\":{\"creationTimestamp\":null},\"spec\":{},\"status\":{\"resourceRules\":["
        + resourceRules + "],\"nonResourceRules\":[" + nonResourceRules + "]," + rest + "}}";

    private static Task<GatewayTestHost> StartAsync(string modes = "[RBAC]", string? denyList = null, Dictionary<string, string>? files = null)
    {
        files ??= [];
        files["basic-user.yaml"] = SelfSubjectAccessReviewTests.BasicUser;
        return GatewayTestHost.StartAsync(modes: modes, denyList: denyList, files: files, rbacManifests: "[rbac.yaml, basic-user.yaml]").WaitAsync(Timeout);
    }

    private static async Task<(HttpStatusCode Code, string Text)> PostAsync(HttpClient client, string body, string path = SsrrPath, string contentType = "application/json")
    {
        using var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
        content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(contentType);
        using var response = await client.PostAsync(path, content).WaitAsync(Timeout);
        return (response.StatusCode, await response.Content.ReadAsStringAsync().WaitAsync(Timeout));
    }

    private static int ForwardedReviews(GatewayTestHost gw) =>
        gw.Upstream.Requests.Count(r => r.PathAndQuery.Contains("/selfsubjectrulesreviews", StringComparison.Ordinal));

    [Fact]
    public async Task Jane_gets_the_gateways_rules_for_her_and_the_upstream_is_not_asked()
    {
        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));

        var (code, text) = await PostAsync(jane, DevReview);

        Assert.Equal(HttpStatusCode.Created, code);
        Assert.Equal(Answer(DeveloperRule + "," + BasicUserRule, DeveloperPaths), text);
        Assert.Equal(0, ForwardedReviews(gw));
        Assert.Empty(gw.Upstream.Requests);
    }

    [Fact]
    public async Task A_user_without_bindings_gets_only_what_every_authenticated_user_may_do()
    {
        await using var gw = await StartAsync();
        using var bob = gw.Client(gw.Pki.IssueClient("bob", "qa"));

        var (code, text) = await PostAsync(bob, DevReview);

        Assert.Equal(HttpStatusCode.Created, code);
        Assert.Equal(Answer(BasicUserRule, ""), text);
    }

    [Fact]
    public async Task System_masters_may_do_everything_and_an_impersonated_user_gets_the_impersonated_users_rules()
    {
        await using var gw = await StartAsync();
        using var root = gw.Client();
        root.DefaultRequestHeaders.Authorization = new("Bearer", "token-root");

        var (code, own) = await PostAsync(root, DevReview);
        Assert.Equal(HttpStatusCode.Created, code);
        Assert.Equal(Answer("""{"verbs":["*"],"apiGroups":["*"],"resources":["*"]},""" + BasicUserRule, """{"verbs":["*"],"nonResourceURLs":["*"]}"""), own);

        root.DefaultRequestHeaders.Add("Impersonate-User", "jane"); // kubectl auth can-i --list --as jane --as-group developers
        root.DefaultRequestHeaders.Add("Impersonate-Group", "developers");
        var (asCode, asJane) = await PostAsync(root, DevReview);
        Assert.Equal(HttpStatusCode.Created, asCode);
        Assert.Equal(Answer(DeveloperRule + "," + BasicUserRule, DeveloperPaths), asJane);
        Assert.Equal(0, ForwardedReviews(gw));
    }

    [Fact]
    public async Task A_deny_listed_user_cannot_ask_and_neither_can_someone_impersonating_one()
    {
        await using var gw = await StartAsync(denyList: """
            apiVersion: portcullis.dev/v1alpha1
            kind: DenyList
            entries:
            - user: jane
              reason: laptop stolen
            """);
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        using var root = gw.Client();
        root.DefaultRequestHeaders.Authorization = new("Bearer", "token-root");
        root.DefaultRequestHeaders.Add("Impersonate-User", "jane");

        var (code, text) = await PostAsync(jane, DevReview);
        var (asCode, asText) = await PostAsync(root, DevReview);

        Assert.Equal(HttpStatusCode.Forbidden, code);
        Assert.Contains("deny list: laptop stolen", text, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, asCode);
        Assert.Contains("deny list: laptop stolen", asText, StringComparison.Ordinal);
        Assert.Empty(gw.Upstream.Requests);
    }

    [Fact]
    public async Task A_webhook_mode_makes_the_answer_incomplete_with_kube_apiservers_error()
    {
        // The webhook is never called for a rules review (kube-apiserver's webhook cannot list rules either): it may be down.
        await using var gw = await StartAsync(
            modes: "[RBAC, Webhook]\n  webhook: {configFile: authz.kubeconfig}",
            files: new() { ["authz.kubeconfig"] = "apiVersion: v1\nkind: Config\nclusters:\n- name: w\n  cluster: {server: \"https://127.0.0.1:1/authorize\", certificate-authority: ca.crt}\nusers:\n- name: g\n  user: {token: t}\ncontexts:\n- name: w\n  context: {cluster: w, user: g}\ncurrent-context: w\n" });
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));

        var (code, text) = await PostAsync(jane, DevReview);

        Assert.Equal(HttpStatusCode.Created, code);
        Assert.Equal(Answer(DeveloperRule + "," + BasicUserRule, DeveloperPaths,
            "\"incomplete\":true,\"evaluationError\":\"webhook authorizer does not support user rule resolution\""), text);
    }

    [Fact]
    public async Task A_binding_to_a_missing_role_is_an_evaluation_error_as_in_kube_apiserver()
    {
        await using var gw = await StartAsync(files: new()
        {
            ["rbac.yaml"] = GatewayTestHost.RbacYaml + """

                ---
                apiVersion: rbac.authorization.k8s.io/v1
                kind: RoleBinding
                metadata: {name: ghost, namespace: dev}
                roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: ghost}
                subjects:
                - {apiGroup: rbac.authorization.k8s.io, kind: User, name: jane}
                """,
        });
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));

        var (code, text) = await PostAsync(jane, DevReview);
        var (prodCode, prod) = await PostAsync(jane, DevReview.Replace("\"dev\"", "\"prod\"", StringComparison.Ordinal));

        Assert.Equal(HttpStatusCode.Created, code);
        Assert.Equal(Answer(DeveloperRule + "," + BasicUserRule, DeveloperPaths,
            "\"incomplete\":false,\"evaluationError\":\"role.rbac.authorization.k8s.io \\u0022ghost\\u0022 not found\""), text);
        Assert.Equal(HttpStatusCode.Created, prodCode);
        Assert.Equal(Answer(DeveloperRule + "," + BasicUserRule, DeveloperPaths), prod); // the RoleBinding is in dev only
    }

    [Fact]
    public async Task The_protobuf_kubectl_sends_is_read_and_v1beta1_is_answered_in_v1beta1()
    {
        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        static byte[] Field(int number, byte[] value) => [(byte)((number << 3) | 2), (byte)value.Length, .. value];
        var typeMeta = Field(1, Field(1, "authorization.k8s.io/v1"u8.ToArray()).Concat(Field(2, "SelfSubjectRulesReview"u8.ToArray())).ToArray());
        var review = Field(2, Field(2, Field(1, "dev"u8.ToArray())));
        byte[] body = [.. "k8s\0"u8.ToArray(), .. typeMeta, .. review];
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new("application/vnd.kubernetes.protobuf");

        using var response = await jane.PostAsync(SsrrPath, content).WaitAsync(Timeout);
        var text = await response.Content.ReadAsStringAsync().WaitAsync(Timeout);
        var (betaCode, beta) = await PostAsync(jane, DevReview, "/apis/authorization.k8s.io/v1beta1/selfsubjectrulesreviews");

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(Answer(DeveloperRule + "," + BasicUserRule, DeveloperPaths), text);
        Assert.Equal(HttpStatusCode.Created, betaCode);
        Assert.Equal(Answer(DeveloperRule + "," + BasicUserRule, DeveloperPaths, version: "v1beta1"), beta);
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
    [InlineData("application/json", """{"spec":{}}""", 400, "no namespace on request")]
    [InlineData("application/json", """{"spec":{"namespace":"dev"},"spec":{"namespace":"prod"}}""", 400, "cannot be read")]
    [InlineData("application/json", """{"spec":{"namespace":7}}""", 400, "spec.namespace is not a string")]
    [InlineData("application/yaml", "spec: {namespace: dev}", 415, "application/json or application/vnd.kubernetes.protobuf only")]
    [InlineData("application/vnd.kubernetes.protobuf", "not protobuf", 400, "k8s envelope")]
    public async Task A_review_the_gateway_cannot_read_is_refused_not_forwarded(string contentType, string body, int expected, string message)
    {
        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));

        var (code, text) = await PostAsync(jane, body, contentType: contentType);

        Assert.Equal(expected, (int)code);
        var status = JsonNode.Parse(text)!;
        Assert.Equal("Status", (string?)status["kind"]);
        Assert.Contains(message, (string?)status["message"], StringComparison.Ordinal);
        Assert.Empty(gw.Upstream.Requests);
    }
}

/// <summary>The real <c>kubectl auth can-i --list</c> against a gateway with a deny list: refused like any request.</summary>
public sealed class KubectlRulesReviewDenyListTests
{
    [KubectlFact]
    public async Task Kubectl_auth_can_i_list_is_forbidden_for_a_deny_listed_user_and_for_impersonating_one()
    {
        await using var gw = await GatewayTestHost.StartAsync(modes: "[RBAC]", denyList: """
            apiVersion: portcullis.dev/v1alpha1
            kind: DenyList
            entries:
            - user: mallory
              reason: laptop stolen
            """, files: new() { ["basic-user.yaml"] = SelfSubjectAccessReviewTests.BasicUser }, rbacManifests: "[rbac.yaml, basic-user.yaml]").WaitAsync(TimeSpan.FromSeconds(30));
        TestPki.WritePem(gw.Pki.IssueClient("mallory", "developers"), Path.Combine(gw.Dir, "mallory.crt"), Path.Combine(gw.Dir, "mallory.key"));
        string Kubeconfig(string name, string user) => $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: gw
              cluster: {"{"}server: "{gw.Uri.GetLeftPart(UriPartial.Authority)}", certificate-authority: "{Path.Combine(gw.Dir, "ca.crt")}"{"}"}
            users:
            - name: {name}
              user: {user}
            contexts:
            - name: gw
              context: {"{"}cluster: gw, user: {name}{"}"}
            current-context: gw
            """;
        File.WriteAllText(Path.Combine(gw.Dir, "mallory.kubeconfig"), Kubeconfig("mallory",
            $"{{client-certificate: \"{Path.Combine(gw.Dir, "mallory.crt")}\", client-key: \"{Path.Combine(gw.Dir, "mallory.key")}\"}}"));
        File.WriteAllText(Path.Combine(gw.Dir, "root.kubeconfig"), Kubeconfig("root", "{token: token-root}"));

        using var mallory = new Kubectl(Path.Combine(gw.Dir, "mallory.kubeconfig"));
        using var root = new Kubectl(Path.Combine(gw.Dir, "root.kubeconfig"));
        var denied = await mallory.RunAsync("--request-timeout=10s", "auth", "can-i", "--list", "-n", "dev");
        var impersonating = await root.RunAsync("--request-timeout=10s", "--as=mallory", "auth", "can-i", "--list", "-n", "dev");
        var asJane = await root.RunAsync("--request-timeout=10s", "--as=jane", "--as-group=developers", "auth", "can-i", "--list", "-n", "dev");

        Assert.True(denied.ExitCode != 0 && denied.Stderr.Contains("forbidden", StringComparison.OrdinalIgnoreCase)
            && denied.Stderr.Contains("deny list: laptop stolen", StringComparison.Ordinal), denied.ToString());
        Assert.True(impersonating.ExitCode != 0 && impersonating.Stderr.Contains("deny list: laptop stolen", StringComparison.Ordinal), impersonating.ToString());
        Assert.True(asJane.ExitCode == 0, asJane.ToString());
        Assert.Contains(asJane.Stdout.Split('\n'), l => l.StartsWith("pods/exec ", StringComparison.Ordinal) && l.Contains("[get list watch create update patch delete]", StringComparison.Ordinal));
        Assert.DoesNotContain("*.*", asJane.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(gw.Upstream.Requests, r => r.PathAndQuery.Contains("/selfsubjectrulesreviews", StringComparison.Ordinal));
    }
}
