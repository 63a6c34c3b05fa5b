using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Portcullis.Authorization;
using Portcullis.Configuration;
using Portcullis.Sandbox.Security;

namespace Portcullis.Sandbox.Tests;

/// <summary>
/// Webhook mode: the sandbox as the API server, calling a recording TokenReview/SubjectAccessReview webhook (real Kestrel,
/// mTLS, loopback) the way kube-apiserver does, then RBAC.
/// </summary>
public sealed class WebhookModeTests : IDisposable
{
    private const string Rbac = """
        apiVersion: rbac.authorization.k8s.io/v1
        kind: Role
        metadata: {name: pod-reader, namespace: dev}
        rules:
        - apiGroups: [""]
          resources: [pods]
          verbs: [get, list, watch]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata: {name: dev-pod-readers, namespace: dev}
        subjects:
        - {kind: User, name: bob, apiGroup: rbac.authorization.k8s.io}
        - {kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}
        roleRef: {kind: Role, name: pod-reader, apiGroup: rbac.authorization.k8s.io}
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-webhook-mode-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string RbacFile()
    {
        var path = Path.Combine(_dir, "rbac.yaml");
        File.WriteAllText(path, Rbac);
        return path;
    }

    private static Task<SandboxServer> StartAsync(SandboxSecurityOptions security, TimeProvider? time = null) =>
        SandboxServer.StartAsync(new SandboxOptions
        {
            ServerCertificate = SandboxPki.Shared.Server,
            ClientCA = [SandboxPki.Shared.Ca],
            Seed = true,
            Security = security,
            TimeProvider = time ?? TimeProvider.System,
        }).WaitAsync(TestSandbox.Timeout);

    /// <summary>A client with a bearer token and no client certificate.</summary>
    private static HttpClient TokenClient(SandboxServer server, string token)
    {
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, c, _, _) => TestSandbox.TrustsTestCa(c) },
        };
        var client = new HttpClient(handler) { BaseAddress = server.Uri, Timeout = TestSandbox.Timeout };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    private static async Task<(HttpStatusCode Status, string Body)> GetAsync(HttpClient client, string path, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        using var response = await client.SendAsync(request).WaitAsync(TestSandbox.Timeout);
        return (response.StatusCode, await response.Content.ReadAsStringAsync().WaitAsync(TestSandbox.Timeout));
    }

    private static string Message(string statusBody) => JsonNode.Parse(statusBody)!["message"]!.GetValue<string>();

    private static JsonObject Jane() => new()
    {
        ["username"] = "jane",
        ["uid"] = "42",
        ["groups"] = new JsonArray("dev-team"),
        ["extra"] = new JsonObject { ["example.org/team"] = new JsonArray("web") },
    };

    [KubectlFact]
    public async Task Kubectl_With_A_Token_Is_Authenticated_By_One_TokenReview_Shaped_As_KubeApiserver_Sends_It()
    {
        await using var webhooks = await RecordingWebhooks.StartAsync();
        webhooks.Authenticate = token => token == "tok-jane" ? Jane() : null;
        await using var server = await StartAsync(new SandboxSecurityOptions
        {
            TokenWebhookKubeconfig = webhooks.WriteKubeconfig(_dir, "authenticate"),
            ApiAudiences = ["https://sandbox.test"],
            RbacManifests = [RbacFile()],
        });
        using var kubectl = new Kubectl(home =>
        {
            var ca = Path.Combine(home, "ca.crt");
            File.WriteAllText(ca, SandboxPki.Shared.Ca.ExportCertificatePem());
            var file = Path.Combine(home, "kubeconfig");
            File.WriteAllText(file, $$"""
                apiVersion: v1
                kind: Config
                clusters:
                - name: sandbox
                  cluster: {server: "{{server.Uri.ToString().TrimEnd('/')}}", certificate-authority: {{ca}}}
                users:
                - name: jane
                  user: {token: tok-jane}
                contexts:
                - name: sandbox
                  context: {cluster: sandbox, user: jane, namespace: dev}
                current-context: sandbox
                """);
            return file;
        });

        var whoami = await kubectl.RunAsync("auth", "whoami");
        var devPods = await kubectl.RunAsync("get", "pods", "-n", "dev");
        var prodPods = await kubectl.RunAsync("get", "pods", "-n", "prod");

        Assert.True(whoami.ExitCode == 0, whoami.ToString());
        Assert.Contains("jane", whoami.Stdout, StringComparison.Ordinal);
        Assert.Contains("dev-team", whoami.Stdout, StringComparison.Ordinal);
        Assert.Contains("system:authenticated", whoami.Stdout, StringComparison.Ordinal);
        Assert.True(devPods.ExitCode == 0, devPods.ToString());
        Assert.Contains("web-1", devPods.Stdout, StringComparison.Ordinal);
        Assert.NotEqual(0, prodPods.ExitCode);
        Assert.Contains("pods is forbidden: User \"jane\" cannot list resource \"pods\" in API group \"\" in the namespace \"prod\"", prodPods.Stderr, StringComparison.Ordinal);
        // Three kubectl runs, a dozen requests, one review: the answer is cached for the 2m default TTL.
        var review = Assert.Single(webhooks.TokenReviews);
        var body = JsonNode.Parse(review)!.AsObject();
        Assert.Equal(["apiVersion", "kind", "metadata", "spec", "status"], body.Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal("authentication.k8s.io/v1", body["apiVersion"]!.GetValue<string>());
        Assert.Equal("TokenReview", body["kind"]!.GetValue<string>());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"token":"tok-jane","audiences":["https://sandbox.test"]}"""), body["spec"]), review);
    }

    [Fact]
    public async Task TokenReview_Answers_Are_Reused_Within_The_Cache_Ttl_And_Asked_Again_After_It()
    {
        await using var webhooks = await RecordingWebhooks.StartAsync();
        webhooks.Authenticate = token => token == "tok-jane" ? Jane() : null;
        var clock = new OffsetClock();
        await using var server = await StartAsync(new SandboxSecurityOptions
        {
            TokenWebhookKubeconfig = webhooks.WriteKubeconfig(_dir, "authenticate"),
            TokenWebhookCacheTtl = TimeSpan.FromMinutes(1),
            RbacManifests = [RbacFile()],
        }, clock);
        using var jane = TokenClient(server, "tok-jane");
        using var stranger = TokenClient(server, "tok-unknown");

        var first = await GetAsync(jane, "/api/v1/namespaces/dev/pods");
        var second = await GetAsync(jane, "/api/v1/namespaces/dev/pods");
        var callsWithinTtl = webhooks.TokenReviews.Count;
        clock.Advance(TimeSpan.FromMinutes(2));
        var third = await GetAsync(jane, "/api/v1/namespaces/dev/pods");
        var callsAfterTtl = webhooks.TokenReviews.Count;
        var refused = await GetAsync(stranger, "/api/v1/namespaces/dev/pods");
        var refusedAgain = await GetAsync(stranger, "/api/v1/namespaces/dev/pods");

        Assert.Equal(HttpStatusCode.OK, first.Status);
        Assert.Equal(HttpStatusCode.OK, second.Status);
        Assert.Equal(HttpStatusCode.OK, third.Status);
        Assert.Equal(1, callsWithinTtl);
        Assert.Equal(2, callsAfterTtl);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.Status);
        Assert.Equal("""{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}""", refused.Body);
        Assert.Equal(HttpStatusCode.Unauthorized, refusedAgain.Status);
        // kube-apiserver caches the unauthenticated answer for the same TTL: the unknown token was reviewed once.
        Assert.Equal(3, webhooks.TokenReviews.Count);
    }

    [Fact]
    public async Task SubjectAccessReviews_Carry_KubeApiservers_Spec_And_A_Webhook_Deny_Is_A_403()
    {
        await using var webhooks = await RecordingWebhooks.StartAsync();
        webhooks.Authorize = spec => spec["resourceAttributes"]?["namespace"]?.GetValue<string>() == "prod"
            ? new JsonObject { ["allowed"] = false, ["denied"] = true, ["reason"] = "prod is closed to bob" }
            : new JsonObject { ["allowed"] = false };
        await using var server = await StartAsync(new SandboxSecurityOptions
        {
            Authorizers = SandboxSecurityOptions.LegacyWebhook(webhooks.WriteKubeconfig(_dir, "authorize"), "v1", TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(30)),
            RbacManifests = [RbacFile()],
        });
        using var bob = TestSandbox.Client(server, SandboxPki.Shared.Bob);

        var prod = await GetAsync(bob, "/api/v1/namespaces/prod/pods/web-1");
        var version = await GetAsync(bob, "/version");

        Assert.Equal(HttpStatusCode.Forbidden, prod.Status);
        Assert.Equal("""{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"web-1\" is forbidden: User \"bob\" cannot get resource \"pods\" in API group \"\" in the namespace \"prod\": prod is closed to bob","reason":"Forbidden","details":{"name":"web-1","kind":"pods"},"code":403}""", prod.Body);
        Assert.Equal(HttpStatusCode.OK, version.Status); // webhook: no opinion; RBAC's bootstrap system:discovery allows
        Assert.Equal(2, webhooks.AccessReviews.Count);
        var resource = JsonNode.Parse(webhooks.AccessReviews[0])!;
        Assert.Equal("authorization.k8s.io/v1", resource["apiVersion"]!.GetValue<string>());
        Assert.Equal("SubjectAccessReview", resource["kind"]!.GetValue<string>());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""
            {"resourceAttributes":{"namespace":"prod","verb":"get","version":"v1","resource":"pods","name":"web-1"},
             "user":"bob","groups":["dev","system:authenticated"]}
            """), resource["spec"]), webhooks.AccessReviews[0]);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""
            {"nonResourceAttributes":{"path":"/version","verb":"get"},"user":"bob","groups":["dev","system:authenticated"]}
            """), JsonNode.Parse(webhooks.AccessReviews[1])!["spec"]), webhooks.AccessReviews[1]);
    }

    [Fact]
    public async Task Webhook_No_Opinion_Falls_Through_To_Rbac_And_Answers_Are_Cached_For_Their_Ttl()
    {
        await using var webhooks = await RecordingWebhooks.StartAsync();
        var clock = new OffsetClock();
        await using var server = await StartAsync(new SandboxSecurityOptions
        {
            Authorizers = SandboxSecurityOptions.LegacyWebhook(webhooks.WriteKubeconfig(_dir, "authorize"), "v1", TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(30)),
            RbacManifests = [RbacFile()],
        }, clock);
        using var bob = TestSandbox.Client(server, SandboxPki.Shared.Bob);

        var dev = await GetAsync(bob, "/api/v1/namespaces/dev/pods");
        var kubeSystem = await GetAsync(bob, "/api/v1/namespaces/kube-system/pods");
        var devAgain = await GetAsync(bob, "/api/v1/namespaces/dev/pods");
        var callsWithinTtl = webhooks.AccessReviews.Count;
        clock.Advance(TimeSpan.FromMinutes(1));
        var devLater = await GetAsync(bob, "/api/v1/namespaces/dev/pods");

        Assert.Equal(HttpStatusCode.OK, dev.Status);
        Assert.Equal(HttpStatusCode.OK, devAgain.Status);
        Assert.Equal(HttpStatusCode.OK, devLater.Status);
        Assert.Equal(HttpStatusCode.Forbidden, kubeSystem.Status);
        Assert.Equal("pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"kube-system\"", Message(kubeSystem.Body));
        Assert.Equal(2, callsWithinTtl); // dev and kube-system; the repeat was answered from the cache
        Assert.Equal(3, webhooks.AccessReviews.Count); // the no-opinion answer expired after unauthorizedTTL (30s)
    }

    [Fact]
    public async Task Unreachable_Webhook_With_Deny_Refuses_And_With_NoOpinion_Falls_Through_To_Rbac()
    {
        Uri closed;
        await using (var gone = await LoopbackServer.StartAsync(_ => Task.CompletedTask))
        {
            closed = new Uri(gone.Url, "authorize");
        }
        var kubeconfig = RecordingWebhooks.WriteKubeconfig(_dir, "closed", closed);
        SandboxSecurityOptions Options(string failurePolicy) => new()
        {
            Authorizers =
            [
                new AuthorizationConfigurationFile.AuthorizerConfiguration
                {
                    Type = "Webhook",
                    Name = "portcullis",
                    Webhook = new AuthorizationConfigurationFile.WebhookConfiguration
                    {
                        Timeout = TimeSpan.FromSeconds(3),
                        SubjectAccessReviewVersion = "v1",
                        FailurePolicy = failurePolicy,
                        ConnectionInfo = new() { Type = "KubeConfigFile", KubeConfigFile = kubeconfig },
                    },
                },
                new AuthorizationConfigurationFile.AuthorizerConfiguration { Type = "RBAC", Name = "rbac" },
            ],
            RbacManifests = [RbacFile()],
        };

        (HttpStatusCode Status, string Body) denyDev, noOpinionDev, noOpinionProd;
        await using (var deny = await StartAsync(Options("Deny")))
        {
            using var bob = TestSandbox.Client(deny, SandboxPki.Shared.Bob);
            denyDev = await GetAsync(bob, "/api/v1/namespaces/dev/pods");
        }
        await using (var noOpinion = await StartAsync(Options("NoOpinion")))
        {
            using var bob = TestSandbox.Client(noOpinion, SandboxPki.Shared.Bob);
            noOpinionDev = await GetAsync(bob, "/api/v1/namespaces/dev/pods");
            noOpinionProd = await GetAsync(bob, "/api/v1/namespaces/prod/pods");
        }

        // Deny: refused although RBAC would allow; kube-apiserver answers an authorizer error without an allow with a 500.
        Assert.Equal(HttpStatusCode.InternalServerError, denyDev.Status);
        Assert.StartsWith("Internal Server Error: \"/api/v1/namespaces/dev/pods\": webhook authorizer: ", denyDev.Body, StringComparison.Ordinal);
        // NoOpinion: RBAC decides; where it has no allow either, the webhook's error still makes it a 500.
        Assert.Equal(HttpStatusCode.OK, noOpinionDev.Status);
        Assert.Equal(HttpStatusCode.InternalServerError, noOpinionProd.Status);
        Assert.StartsWith("Internal Server Error: \"/api/v1/namespaces/prod/pods\": webhook authorizer: ", noOpinionProd.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MatchConditions_From_An_AuthorizationConfiguration_Skip_The_Webhook_Unless_They_All_Hold()
    {
        await using var webhooks = await RecordingWebhooks.StartAsync();
        webhooks.Authorize = _ => new JsonObject { ["allowed"] = false, ["denied"] = true, ["reason"] = "kube-system is locked" };
        var config = Path.Combine(_dir, "authz.yaml");
        File.WriteAllText(config, $"""
            apiVersion: apiserver.config.k8s.io/v1
            kind: AuthorizationConfiguration
            authorizers:
              - type: Node
                name: node
              - type: Webhook
                name: portcullis
                webhook:
                  timeout: 3s
                  subjectAccessReviewVersion: v1
                  matchConditionSubjectAccessReviewVersion: v1
                  failurePolicy: Deny
                  connectionInfo:
                    type: KubeConfigFile
                    kubeConfigFile: {webhooks.WriteKubeconfig(_dir, "authorize")}
                  matchConditions:
                  - expression: has(request.resourceAttributes)
                  - expression: request.resourceAttributes.namespace == 'kube-system'
                  - expression: "!('system:serviceaccounts:kube-system' in request.groups)"
              - type: RBAC
                name: rbac
            """);
        await using var server = await StartAsync(new SandboxSecurityOptions
        {
            Authorizers = AuthorizationConfigurationFile.Load(config).Authorizers,
            RbacManifests = [RbacFile()],
        });
        using var bob = TestSandbox.Client(server, SandboxPki.Shared.Bob);
        using var alice = TestSandbox.Client(server);

        var dev = await GetAsync(bob, "/api/v1/namespaces/dev/pods");
        var version = await GetAsync(bob, "/version");
        var callsSkipped = webhooks.AccessReviews.Count;
        var kubeSystem = await GetAsync(bob, "/api/v1/namespaces/kube-system/pods");
        var masters = await GetAsync(alice, "/api/v1/namespaces/kube-system/pods");

        Assert.Equal(["system:masters", "Node", "Webhook", "RBAC"], server.AuthorizerNames);
        Assert.Equal(HttpStatusCode.OK, dev.Status);
        Assert.Equal(HttpStatusCode.OK, version.Status);
        Assert.Equal(0, callsSkipped);
        Assert.Equal(HttpStatusCode.Forbidden, kubeSystem.Status);
        Assert.EndsWith(": kube-system is locked", Message(kubeSystem.Body), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, masters.Status); // system:masters is allowed before any webhook is asked
        Assert.Single(webhooks.AccessReviews);
    }

    [Fact]
    public async Task Impersonation_Is_Authorized_And_XRemote_Headers_Are_Not_Believed()
    {
        await using var server = await StartAsync(new SandboxSecurityOptions { RbacManifests = [RbacFile()] });
        using var bob = TestSandbox.Client(server, SandboxPki.Shared.Bob);
        using var alice = TestSandbox.Client(server);

        var bobAsAlice = await GetAsync(bob, "/api/v1/namespaces/kube-system/pods", ("Impersonate-User", "alice"));
        var bobAsMaster = await GetAsync(bob, "/api/v1/namespaces/kube-system/pods", ("X-Remote-User", "alice"), ("X-Remote-Group", "system:masters"));
        var aliceAsBob = await GetAsync(alice, "/api/v1/namespaces/kube-system/pods", ("Impersonate-User", "bob"));
        var aliceAsBobInDev = await GetAsync(alice, "/api/v1/namespaces/dev/pods", ("Impersonate-User", "bob"));

        Assert.Equal(HttpStatusCode.Forbidden, bobAsAlice.Status);
        Assert.Equal("users \"alice\" is forbidden: User \"bob\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope", Message(bobAsAlice.Body));
        Assert.Equal(HttpStatusCode.Forbidden, bobAsMaster.Status);
        Assert.Equal("pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"kube-system\"", Message(bobAsMaster.Body));
        Assert.Equal(HttpStatusCode.Forbidden, aliceAsBob.Status); // alice may impersonate (system:masters), then bob is authorized
        Assert.Equal("pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"kube-system\"", Message(aliceAsBob.Body));
        Assert.Equal(HttpStatusCode.OK, aliceAsBobInDev.Status);
        Assert.Contains(server.Requests.Recent(10), r => r.Identity.Username == "bob" && r.Identity.Source == "impersonation");
    }

    [Fact]
    public void AuthorizationConfiguration_Errors_Name_The_Line_And_Field()
    {
        var errors = new List<ConfigError>();
        AuthorizationConfigurationFile.TryParse("""
            apiVersion: apiserver.config.k8s.io/v1
            kind: AuthorizationConfiguration
            authorizers:
              - type: Webhook
                name: portcullis
                webhook:
                  timeout: 45s
                  subjectAccessReviewVersion: v2
                  failurePolicy: Allow
                  connectionInfo: {type: KubeConfigFile, kubeConfigFile: relative.kubeconfig}
                  matchConditions:
                  - expression: request.user.reverse()
              - type: RBAC
                name: rbac
              - type: RBAC
                name: rbac
            """, "authz.yaml", errors);

        var text = errors.Select(e => e.ToString()).ToList();
        Assert.True(text.Count == 8, string.Join("\n", text));
        Assert.Contains("authz.yaml:7: authorizers[0].webhook.timeout: must be more than 0s and at most 30s, not 45s", text);
        Assert.Contains("authz.yaml:8: authorizers[0].webhook.subjectAccessReviewVersion: \"v2\" is not v1 or v1beta1", text);
        Assert.Contains("authz.yaml:9: authorizers[0].webhook.failurePolicy: \"Allow\" is not NoOpinion or Deny", text);
        Assert.Contains(text, t => t.StartsWith("authz.yaml:10: authorizers[0].webhook.connectionInfo.kubeConfigFile: \"relative.kubeconfig\" must be an absolute path", StringComparison.Ordinal));
        // A missing field is reported at the line of the stanza that lacks it.
        Assert.Contains(text, t => t.StartsWith("authz.yaml:7: authorizers[0].webhook.matchConditionSubjectAccessReviewVersion: is required", StringComparison.Ordinal));
        Assert.Contains(text, t => t.StartsWith("authz.yaml:12: authorizers[0].webhook.matchConditions[0].expression:", StringComparison.Ordinal) && t.Contains("reverse", StringComparison.Ordinal));
        Assert.Contains(text, t => t.StartsWith("authz.yaml:15: authorizers[2].type: RBAC may appear only once", StringComparison.Ordinal));
        Assert.Contains(text, t => t.StartsWith("authz.yaml:16: authorizers[2].name: \"rbac\" is used by an earlier authorizer", StringComparison.Ordinal));
    }
}
