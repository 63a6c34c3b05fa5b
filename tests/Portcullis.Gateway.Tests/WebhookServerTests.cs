using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Portcullis.Configuration;
using Portcullis.Gateway.Hosting;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// <c>portcullis webhook</c> through a real <see cref="WebhookHost"/> on 127.0.0.1:0 over real mTLS: Kubernetes'
/// documented TokenReview and SubjectAccessReview examples (fixtures/webhook) round-trip with kube-apiserver's field names,
/// the deny list and revocation list decide, reloads apply, and what makes no sense in webhook mode is refused.
/// </summary>
public sealed class WebhookServerTests : IAsyncDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-webhook-").FullName;
    private readonly TestPki _serving = new("webhook-serving-ca");
    private readonly TestPki _apiServerClients = new("apiserver-webhook-client-ca");
    private readonly TestPki _other = new("intruder-ca");
    private WebhookHost? _host;

    private string ConfigPath => Path.Combine(_dir, "webhook.yaml");

    private const string EmptyDenyList = "apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries: []\n";


    private void WriteFiles(string denyList = EmptyDenyList, string revocation = "", string extra = "")
    {
        WebhookFiles.Write(_dir, _serving, _apiServerClients.CertificatePem,
            "token-jane,jane,u-1,\"developers,qa\"\ntoken-root,root,u-0,system:masters\n", denyList);
        var revocationLine = "";
        if (revocation.Length > 0)
        {
            File.WriteAllText(Path.Combine(_dir, "revoked.yaml"), revocation);
            revocationLine = "\n  revocationFile: revoked.yaml";
        }
        File.WriteAllText(ConfigPath, $"""
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            listeners: [{"{"}address: 127.0.0.1:0{"}"}]
            tls:
              certFile: server.crt
              keyFile: server.key
              clientCAFile: client-ca.crt{revocationLine}
            authentication:
              tokenAuthFile: tokens.csv
            authorization:
              modes: [RBAC]
              rbac: {"{"}manifests: [rbac.yaml]{"}"}
              denyListFile: deny.yaml
            admin: {"{"}address: 127.0.0.1:0{"}"}
            {extra}
            """);
    }

    private async Task<WebhookHost> StartAsync(string denyList = EmptyDenyList, string revocation = "", string extra = "")
    {
        WriteFiles(denyList, revocation, extra);
        _host = WebhookHost.Create(ConfigPath, new GatewayHostOptions { ReloadDelay = TimeSpan.FromMilliseconds(50), ReloadPollInterval = TimeSpan.FromMilliseconds(100) });
        await _host.StartAsync().WaitAsync(Timeout);
        return _host;
    }

    private HttpClient Client(X509Certificate2? clientCertificate)
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is X509Certificate2 c && c.Issuer == _serving.Certificate.Subject,
                ClientCertificates = clientCertificate is null ? null : [clientCertificate],
                LocalCertificateSelectionCallback = clientCertificate is null ? null : (_, _, _, _, _) => clientCertificate,
            },
        };
        return new HttpClient(handler, disposeHandler: true) { BaseAddress = _host!.ListenUris[0], Timeout = Timeout };
    }

    private HttpClient ApiServer() => Client(_apiServerClients.IssueClient("kube-apiserver-webhook-client"));

    private static async Task<(HttpStatusCode Code, string Body)> PostAsync(HttpClient client, string path, string json)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await client.PostAsync(path, content).WaitAsync(Timeout);
        return (response.StatusCode, await response.Content.ReadAsStringAsync().WaitAsync(Timeout));
    }

    // ---- fixtures: Kubernetes' documented examples, read as YAML (they carry # comments) ----

    private static YamlNode Fixture(string name)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "webhook", name))));
        return stream.Documents[0].RootNode;
    }

    /// <summary>The fixture as JSON (scalars as strings, true/false as booleans), to send as the API server does.</summary>
    private static string FixtureJson(string name, Func<string, string, string>? replace = null) => Json(Fixture(name), "", replace);

    private static string Json(YamlNode node, string path, Func<string, string, string>? replace) => node switch
    {
        YamlMappingNode map => "{" + string.Join(",", map.Children.Select(kv =>
        {
            var key = ((YamlScalarNode)kv.Key).Value!;
            return JsonSerializer.Serialize(key) + ":" + Json(kv.Value, path.Length == 0 ? key : path + "." + key, replace);
        })) + "}",
        YamlSequenceNode seq => "[" + string.Join(",", seq.Children.Select(c => Json(c, path + "[]", replace))) + "]",
        YamlScalarNode s when s.Style == YamlDotNet.Core.ScalarStyle.Plain && s.Value is "true" or "false" => s.Value!,
        YamlScalarNode s => JsonSerializer.Serialize(replace?.Invoke(path, s.Value ?? "") ?? s.Value ?? ""),
        _ => "null",
    };

    /// <summary>Every field path (map keys, exact case) of a fixture; sequences as []; the keys of extra are data, not fields.</summary>
    private static SortedSet<string> Fields(YamlNode node, string path = "")
    {
        var set = new SortedSet<string>(StringComparer.Ordinal);
        switch (node)
        {
            case YamlMappingNode map:
                foreach (var (k, v) in map.Children)
                {
                    var p = (path.Length == 0 ? "" : path + ".") + ((YamlScalarNode)k).Value;
                    set.Add(p);
                    if (!p.EndsWith(".extra", StringComparison.Ordinal))
                    {
                        set.UnionWith(Fields(v, p));
                    }
                }
                break;
            default:
                break;
        }
        return set;
    }

    private static SortedSet<string> Fields(JsonElement e, string path = "")
    {
        var set = new SortedSet<string>(StringComparer.Ordinal);
        if (e.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in e.EnumerateObject())
            {
                var name = (path.Length == 0 ? "" : path + ".") + p.Name;
                set.Add(name);
                if (!name.EndsWith(".extra", StringComparison.Ordinal))
                {
                    set.UnionWith(Fields(p.Value, name));
                }
            }
        }
        return set;
    }

    private static JsonElement Parse(string body) => JsonDocument.Parse(body).RootElement.Clone();

    [Theory]
    [InlineData("k8s-website-tokenreview-v1-request.yaml", "k8s-website-tokenreview-v1-response-success.yaml", "authentication.k8s.io/v1")]
    [InlineData("k8s-website-tokenreview-v1beta1-request.yaml", "k8s-website-tokenreview-v1beta1-response-success.yaml", "authentication.k8s.io/v1beta1")]
    public async Task A_documented_TokenReview_is_answered_with_kube_apiservers_field_names(string request, string success, string apiVersion)
    {
        await StartAsync();
        using var client = ApiServer();
        var (code, body) = await PostAsync(client, "/authenticate", FixtureJson(request, (path, value) => path == "spec.token" ? "token-jane" : value));

        Assert.Equal(HttpStatusCode.OK, code);
        var answer = Parse(body);
        Assert.Equal(apiVersion, answer.GetProperty("apiVersion").GetString());
        Assert.Equal("TokenReview", answer.GetProperty("kind").GetString());
        var status = answer.GetProperty("status");
        Assert.True(status.GetProperty("authenticated").GetBoolean());
        Assert.Equal("jane", status.GetProperty("user").GetProperty("username").GetString());
        Assert.Equal("u-1", status.GetProperty("user").GetProperty("uid").GetString());
        Assert.Equal(["developers", "qa", "system:authenticated"], status.GetProperty("user").GetProperty("groups").EnumerateArray().Select(g => g.GetString()));
        // Every field we answer is one of the documented answer's, byte for byte (token-file users have no extra; the
        // token file is audience-agnostic, so no audiences: "valid for the API server's own audiences").
        var documented = Fields(Fixture(success));
        var ours = Fields(answer);
        Assert.Subset(documented, ours);
        Assert.Equal(["apiVersion", "kind", "status", "status.authenticated", "status.user", "status.user.groups", "status.user.uid", "status.user.username"], ours);
        Assert.DoesNotContain("token-jane", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_token_is_not_authenticated_and_a_deny_listed_user_gets_the_error_field()
    {
        await StartAsync(denyList: "apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries:\n- user: root\n  reason: laptop stolen\n");
        using var client = ApiServer();
        var request = FixtureJson("k8s-website-tokenreview-v1-request.yaml", (path, value) => path == "spec.token" ? "not-a-token" : value);
        var (code, body) = await PostAsync(client, "/authenticate", request);
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal("""{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","status":{"authenticated":false}}""", body);

        var denied = FixtureJson("k8s-website-tokenreview-v1-request.yaml", (path, value) => path == "spec.token" ? "token-root" : value);
        (code, body) = await PostAsync(client, "/authenticate", denied);
        var answer = Parse(body);
        Assert.False(answer.GetProperty("status").GetProperty("authenticated").GetBoolean());
        Assert.Equal(Fields(Fixture("k8s-website-tokenreview-v1-response-error.yaml")), Fields(answer));
        Assert.DoesNotContain("token-root", body, StringComparison.Ordinal);
        Assert.DoesNotContain("laptop", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Documented_SubjectAccessReviews_get_allowed_denied_or_no_opinion_in_kube_apiservers_shape()
    {
        await StartAsync(denyList: "apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries:\n- group: group2\n  reason: compromised team token\n");
        using var client = ApiServer();

        // v1: alice may create persistentvolumes by Portcullis' RBAC → allowed, as the documented allowed answer.
        var (code, body) = await PostAsync(client, "/authorize", FixtureJson("k8s-website-authorization-sar-v1-request.yaml"));
        Assert.Equal(HttpStatusCode.OK, code);
        var allowed = Parse(body);
        Assert.Equal("authorization.k8s.io/v1", allowed.GetProperty("apiVersion").GetString());
        Assert.True(allowed.GetProperty("status").GetProperty("allowed").GetBoolean());
        Assert.False(allowed.GetProperty("status").TryGetProperty("denied", out _));
        // allowed (and RBAC's reason, which kube-apiserver audits): fields of the documented answers only.
        Assert.Subset(Fields(Fixture("k8s-website-webhook-sar-v1beta1-response-denied.json")), Fields(allowed));
        Assert.Subset(Fields(allowed), Fields(Fixture("k8s-website-webhook-sar-v1beta1-response-allowed.json")));

        // v1beta1 ("group", not "groups"): jane in group2, which the deny list names → denied, as the documented denial.
        (code, body) = await PostAsync(client, "/authorize", FixtureJson("k8s-website-webhook-sar-v1beta1-request-resource.json"));
        var answer = Parse(body);
        Assert.Equal("authorization.k8s.io/v1beta1", answer.GetProperty("apiVersion").GetString());
        Assert.True(answer.GetProperty("status").GetProperty("denied").GetBoolean());
        Assert.Equal("deny list: compromised team token", answer.GetProperty("status").GetProperty("reason").GetString());
        Assert.Equal(Fields(Fixture("k8s-website-webhook-sar-v1beta1-response-denied.json")), Fields(answer));

        // The same user without the denied group, for a path nobody granted: no opinion, so the API server's RBAC decides.
        var nonResource = FixtureJson("k8s-website-webhook-sar-v1beta1-request-nonresource.json").Replace("\"group2\"", "\"group3\"", StringComparison.Ordinal);
        (code, body) = await PostAsync(client, "/authorize", nonResource);
        answer = Parse(body);
        Assert.False(answer.GetProperty("status").GetProperty("allowed").GetBoolean());
        Assert.False(answer.GetProperty("status").TryGetProperty("denied", out _));
        Assert.Subset(Fields(Fixture("k8s-website-webhook-sar-v1beta1-response-noopinion.json")), Fields(answer));
    }

    [Fact]
    public async Task System_masters_get_no_opinion_and_a_revoked_certificate_fingerprint_in_extra_is_denied()
    {
        var stolen = _apiServerClients.IssueClient("jane", "developers");
        var fingerprint = Convert.ToHexStringLower(SHA256.HashData(stolen.RawData));
        await StartAsync(revocation: $"apiVersion: portcullis.dev/v1alpha1\nkind: RevocationList\ncertificates:\n- sha256: {fingerprint}\n  reason: key leaked\n");
        using var client = ApiServer();

        var masters = """{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"resourceAttributes":{"verb":"delete","resource":"nodes"},"user":"root","groups":["system:masters","system:authenticated"]}}""";
        var (_, body) = await PostAsync(client, "/authorize", masters);
        var status = Parse(body).GetProperty("status");
        Assert.False(status.GetProperty("allowed").GetBoolean());
        Assert.False(status.TryGetProperty("denied", out _));

        var revoked = """{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"resourceAttributes":{"verb":"get","resource":"pods","namespace":"dev"},"user":"jane","groups":["developers","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["X509SHA256=""" + fingerprint + "\"]}}}";
        (_, body) = await PostAsync(client, "/authorize", revoked);
        status = Parse(body).GetProperty("status");
        Assert.True(status.GetProperty("denied").GetBoolean());
        Assert.Equal("revoked client certificate: key leaked", status.GetProperty("reason").GetString());

        // Another certificate of the same user is not revoked.
        var other = revoked.Replace(fingerprint, new string('0', 64), StringComparison.Ordinal);
        (_, body) = await PostAsync(client, "/authorize", other);
        Assert.False(Parse(body).GetProperty("status").TryGetProperty("denied", out _));
    }

    [Fact]
    public async Task A_deny_list_change_takes_effect_at_the_reload()
    {
        await StartAsync();
        using var client = ApiServer();
        var review = FixtureJson("k8s-website-webhook-sar-v1beta1-request-resource.json");
        var (_, body) = await PostAsync(client, "/authorize", review);
        Assert.False(Parse(body).GetProperty("status").TryGetProperty("denied", out _));

        File.WriteAllText(Path.Combine(_dir, "deny.yaml"), "apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries:\n- user: jane\n  reason: offboarded\n");
        var deadline = DateTime.UtcNow + Timeout;
        var denied = false;
        while (!denied && DateTime.UtcNow < deadline)
        {
            (_, body) = await PostAsync(client, "/authorize", review);
            denied = Parse(body).GetProperty("status").TryGetProperty("denied", out var d) && d.GetBoolean();
            if (!denied)
            {
                await Task.Delay(50); // polling a condition with a deadline
            }
        }
        Assert.True(denied, "the deny-list entry was not applied within the deadline: " + body);
    }

    [Fact]
    public async Task Each_review_is_audited_with_its_decision_and_never_with_the_token()
    {
        File.WriteAllText(Path.Combine(_dir, "audit-policy.yaml"), "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n");
        await StartAsync(denyList: "apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries:\n- user: root\n  reason: laptop stolen\n",
            extra: "audit: {policyFile: audit-policy.yaml, log: {path: audit.log}}");
        using var client = ApiServer();
        var token = FixtureJson("k8s-website-tokenreview-v1-request.yaml", (path, value) => path == "spec.token" ? "token-root" : value);
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(client, "/authenticate", token)).Code);
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(client, "/authorize", FixtureJson("k8s-website-authorization-sar-v1-request.yaml"))).Code);

        var log = Path.Combine(_dir, "audit.log");
        var deadline = DateTime.UtcNow + Timeout;
        string[] events = [];
        while (DateTime.UtcNow < deadline)
        {
            events = File.Exists(log) ? [.. File.ReadAllLines(log).Where(l => l.Contains("\"ResponseComplete\"", StringComparison.Ordinal))] : [];
            if (events.Length >= 2)
            {
                break;
            }
            await Task.Delay(50); // polling a condition with a deadline
        }
        Assert.Equal(2, events.Length);
        var tokenEvent = Parse(events.Single(e => e.Contains("/authenticate", StringComparison.Ordinal)));
        var annotations = tokenEvent.GetProperty("annotations");
        Assert.Equal("TokenReview", annotations.GetProperty("portcullis.dev/webhook-review").GetString());
        Assert.Equal("denied", annotations.GetProperty("portcullis.dev/webhook-decision").GetString());
        Assert.Equal("root", annotations.GetProperty("portcullis.dev/reviewed-user").GetString());
        Assert.Equal("kube-apiserver-webhook-client", tokenEvent.GetProperty("user").GetProperty("username").GetString());
        Assert.Equal("post", tokenEvent.GetProperty("verb").GetString());
        var accessEvent = Parse(events.Single(e => e.Contains("/authorize", StringComparison.Ordinal)));
        Assert.Equal("allowed", accessEvent.GetProperty("annotations").GetProperty("portcullis.dev/webhook-decision").GetString());
        Assert.Equal("create persistentvolumes", accessEvent.GetProperty("annotations").GetProperty("portcullis.dev/reviewed-request").GetString());
        Assert.DoesNotContain("token-root", File.ReadAllText(log), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Review_values_in_the_audit_annotations_are_clipped_and_control_characters_escaped()
    {
        File.WriteAllText(Path.Combine(_dir, "audit-policy.yaml"), "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n");
        var longReason = "stolen\u0007 " + new string('r', 3000);
        await StartAsync(denyList: $"apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries:\n- group: hostile\n  reason: \"{longReason.Replace("\u0007", "\\a", StringComparison.Ordinal)}\"\n",
            extra: "audit: {policyFile: audit-policy.yaml, log: {path: audit.log}}");
        using var client = ApiServer();
        var user = "eve\u001b[31m\r\nforged line " + new string('u', 5000);
        var ns = "ns\u0000" + new string('n', 3000);
        var review = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["apiVersion"] = "authorization.k8s.io/v1",
            ["kind"] = "SubjectAccessReview",
            ["spec"] = new Dictionary<string, object>
            {
                ["resourceAttributes"] = new Dictionary<string, string> { ["namespace"] = ns, ["verb"] = "get", ["version"] = "v1", ["resource"] = "pods" },
                ["user"] = user,
                ["groups"] = new[] { "hostile" },
            },
        });
        var (code, body) = await PostAsync(client, "/authorize", review);
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.True(Parse(body).GetProperty("status").GetProperty("denied").GetBoolean());

        var log = Path.Combine(_dir, "audit.log");
        var deadline = DateTime.UtcNow + Timeout;
        string? line = null;
        while (line is null && DateTime.UtcNow < deadline)
        {
            line = File.Exists(log) ? File.ReadAllLines(log).FirstOrDefault(l => l.Contains("\"ResponseComplete\"", StringComparison.Ordinal)) : null;
            if (line is null)
            {
                await Task.Delay(50); // polling a condition with a deadline
            }
        }
        Assert.NotNull(line);
        var annotations = Parse(line).GetProperty("annotations");
        var reviewedUser = annotations.GetProperty("portcullis.dev/reviewed-user").GetString()!;
        var reviewedRequest = annotations.GetProperty("portcullis.dev/reviewed-request").GetString()!;
        var reason = annotations.GetProperty("portcullis.dev/webhook-reason").GetString()!;
        Assert.Equal("eve\\u001B[31m\\u000D\\u000Aforged line " + new string('u', 256 - "eve\u001b[31m\r\nforged line ".Length) + "...", reviewedUser);
        Assert.StartsWith("get pods namespace=ns\\u0000nnn", reviewedRequest, StringComparison.Ordinal);
        Assert.EndsWith("...", reviewedRequest, StringComparison.Ordinal);
        Assert.StartsWith("deny list: stolen\\u0007 rrr", reason, StringComparison.Ordinal);
        Assert.EndsWith("...", reason, StringComparison.Ordinal);
        foreach (var value in new[] { reviewedUser, reviewedRequest, reason })
        {
            Assert.DoesNotContain(value, char.IsControl);
        }
        Assert.True(reviewedRequest.Length <= 1024 + 6 * 1 + 3, reviewedRequest.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(reason.Length <= 1024 + 6 * 1 + 3, reason.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Only_the_api_servers_client_ca_gets_in_at_the_handshake()
    {
        await StartAsync();
        var review = FixtureJson("k8s-website-authorization-sar-v1-request.yaml");
        using (var intruder = Client(_other.IssueClient("kube-apiserver-webhook-client")))
        {
            await Assert.ThrowsAsync<HttpRequestException>(() => PostAsync(intruder, "/authorize", review));
        }
        using (var anonymous = Client(null))
        {
            await Assert.ThrowsAsync<HttpRequestException>(() => PostAsync(anonymous, "/authorize", review));
        }
        using var apiServer = ApiServer();
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(apiServer, "/authorize", review)).Code);

        using var admin = new HttpClient { BaseAddress = _host!.AdminUri, Timeout = Timeout };
        var metrics = await admin.GetStringAsync("/metrics").WaitAsync(Timeout);
        Assert.Matches("portcullis_tls_refused_client_certificates_total\\{reason=\"untrusted\"\\} [1-9]", metrics);
        Assert.Matches("portcullis_tls_refused_client_certificates_total\\{reason=\"missing\"\\} [1-9]", metrics);
        Assert.Contains("portcullis_webhook_reviews_total{review=\"SubjectAccessReview\",decision=\"allowed\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("portcullis_webhook_review_duration_seconds_count{review=\"SubjectAccessReview\"} 1", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_bodies_methods_and_paths_get_kube_apiservers_status_answers()
    {
        await StartAsync(extra: "limits: {maxRequestBodyBytes: 1024}");
        using var client = ApiServer();
        var (code, body) = await PostAsync(client, "/authenticate", "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\",\"spec\":{\"token\":\"secret-tok");
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Contains("\"kind\":\"Status\"", body, StringComparison.Ordinal);
        Assert.DoesNotContain("secret-tok", body, StringComparison.Ordinal);

        (code, body) = await PostAsync(client, "/authorize", "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"TokenReview\",\"spec\":{}}");
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Contains("expected SubjectAccessReview", body, StringComparison.Ordinal);

        (code, _) = await PostAsync(client, "/authorize", new string(' ', 2048));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, code);

        using var fresh = ApiServer();
        using var get = await fresh.GetAsync("/authorize").WaitAsync(Timeout);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
        Assert.Equal("POST", get.Content.Headers.Allow.Single());
        (code, _) = await PostAsync(fresh, "/api/v1/pods", "{}");
        Assert.Equal(HttpStatusCode.NotFound, code);
    }

    [Theory]
    [InlineData("upstream: {kubeconfig: upstream.kubeconfig}", "upstream")]
    [InlineData("admission: {rateLimits: []}", "admission.rateLimits")]
    [InlineData("network: {autoBan: {enabled: true}}", "network.autoBan.enabled")]
    public void Fields_that_mean_nothing_in_webhook_mode_are_refused_with_file_line_and_field(string yaml, string field)
    {
        WriteFiles(extra: yaml);
        var ex = Assert.Throws<ConfigurationException>(() => WebhookHost.Create(ConfigPath));
        var error = Assert.Single(ex.Errors, e => e.Field == field);
        Assert.True(error.Line > 0);
        Assert.Equal(ConfigPath, error.File);
    }

    [Fact]
    public async Task Validate_with_webhook_checks_the_file_as_portcullis_webhook_reads_it()
    {
        WriteFiles();
        var asWebhook = await PortcullisCli.RunAsync("validate", "--config", ConfigPath, "--webhook");
        Assert.Equal(0, asWebhook.ExitCode);
        var asGateway = await PortcullisCli.RunAsync("validate", "--config", ConfigPath);
        Assert.Equal(2, asGateway.ExitCode);
        Assert.Contains("upstream: is required", asGateway.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void AlwaysAllow_is_refused_in_webhook_mode()
    {
        WriteFiles();
        File.WriteAllText(ConfigPath, File.ReadAllText(ConfigPath).Replace("modes: [RBAC]", "modes: [AlwaysAllow, RBAC]", StringComparison.Ordinal));
        var ex = Assert.Throws<ConfigurationException>(() => WebhookHost.Create(ConfigPath));
        Assert.Contains(ex.Errors, e => e.Field == "authorization.modes" && e.Message.Contains("AlwaysAllow", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Kubeconfig_prints_the_two_kubeconfigs_the_AuthorizationConfiguration_and_the_flags()
    {
        var result = await PortcullisCli.RunAsync("webhook", "kubeconfig", "--server", "https://10.0.0.5:8443", "--ca", "/etc/kubernetes/portcullis/ca.crt",
            "--client-cert", "/etc/kubernetes/portcullis/client.crt", "--client-key", "/etc/kubernetes/portcullis/client.key", "--failure-policy", "NoOpinion");
        Assert.Equal(0, result.ExitCode);
        var stream = new YamlStream();
        stream.Load(new StringReader(result.Stdout));
        Assert.Equal(3, stream.Documents.Count);
        YamlNode At(YamlNode n, params object[] path) => path.Aggregate(n, (node, p) => p is int i ? ((YamlSequenceNode)node)[i] : ((YamlMappingNode)node)[(string)p]);
        string S(YamlNode n, params object[] path) => ((YamlScalarNode)At(n, path)).Value!;

        var authn = stream.Documents[0].RootNode;
        Assert.Equal("https://10.0.0.5:8443/authenticate", S(authn, "clusters", 0, "cluster", "server"));
        Assert.Equal("/etc/kubernetes/portcullis/ca.crt", S(authn, "clusters", 0, "cluster", "certificate-authority"));
        Assert.Equal("/etc/kubernetes/portcullis/client.crt", S(authn, "users", 0, "user", "client-certificate"));
        Assert.Equal("webhook", S(authn, "current-context"));
        Assert.Equal("https://10.0.0.5:8443/authorize", S(stream.Documents[1].RootNode, "clusters", 0, "cluster", "server"));

        var authz = stream.Documents[2].RootNode;
        Assert.Equal("apiserver.config.k8s.io/v1", S(authz, "apiVersion"));
        Assert.Equal("AuthorizationConfiguration", S(authz, "kind"));
        Assert.Equal(["Node", "Webhook", "RBAC"], ((YamlSequenceNode)At(authz, "authorizers")).Select(a => S(a, "type")));
        var webhook = At(authz, "authorizers", 1, "webhook");
        Assert.Equal("NoOpinion", S(webhook, "failurePolicy"));
        Assert.Equal("v1", S(webhook, "subjectAccessReviewVersion"));
        Assert.Equal("v1", S(webhook, "matchConditionSubjectAccessReviewVersion"));
        Assert.Equal("10s", S(webhook, "authorizedTTL"));
        Assert.Equal("/etc/kubernetes/portcullis/authorization-webhook.kubeconfig", S(webhook, "connectionInfo", "kubeConfigFile"));
        var conditions = ((YamlSequenceNode)At(webhook, "matchConditions")).Select(c => S(c, "expression")).ToList();
        Assert.Contains("!('system:masters' in request.groups)", conditions);
        Assert.Contains("!request.user.startsWith('system:node:')", conditions);
        Assert.Contains("--authentication-token-webhook-config-file=/etc/kubernetes/portcullis/authentication-webhook.kubeconfig", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("--authentication-token-webhook-cache-ttl=10s", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("--authorization-config=/etc/kubernetes/portcullis/authorization-config.yaml", result.Stdout, StringComparison.Ordinal);

        var outDir = Path.Combine(_dir, "wiring");
        var written = await PortcullisCli.RunAsync("webhook", "kubeconfig", "--server", "https://10.0.0.5:8443", "--ca", "/etc/kubernetes/portcullis/ca.crt", "--out", outDir);
        Assert.Equal(0, written.ExitCode);
        Assert.Equal(["authentication-webhook.kubeconfig", "authorization-config.yaml", "authorization-webhook.kubeconfig", "kube-apiserver-flags.txt"],
            Directory.GetFiles(outDir).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal));
        Assert.Contains("failurePolicy: Deny", File.ReadAllText(Path.Combine(outDir, "authorization-config.yaml")), StringComparison.Ordinal);

        var bad = await PortcullisCli.RunAsync("webhook", "kubeconfig", "--server", "http://10.0.0.5:8443");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("must be the webhook's https://host:port", bad.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Kubeconfig_without_ca_is_refused_naming_ca_because_the_api_server_would_check_system_roots()
    {
        var outDir = Path.Combine(_dir, "no-ca");
        var result = await PortcullisCli.RunAsync("webhook", "kubeconfig", "--server", "https://10.0.0.5:8443", "--out", outDir);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.StartsWith("portcullis: --ca FILE is required", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("--system-roots", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
        Assert.Equal("", result.Stdout);
        Assert.False(Directory.Exists(outDir), "nothing is written when --ca is missing");

        var printed = await PortcullisCli.RunAsync("webhook", "kubeconfig", "--server", "https://10.0.0.5:8443");
        Assert.True(printed.ExitCode == 2, printed.ToString());
        Assert.Equal("", printed.Stdout);

        var both = await PortcullisCli.RunAsync("webhook", "kubeconfig", "--server", "https://10.0.0.5:8443", "--ca", "/etc/kubernetes/portcullis/ca.crt", "--system-roots");
        Assert.True(both.ExitCode == 2, both.ToString());
        Assert.Contains("--ca and --system-roots exclude each other", both.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Kubeconfig_with_system_roots_writes_no_ca_and_says_so()
    {
        var result = await PortcullisCli.RunAsync("webhook", "kubeconfig", "--server", "https://webhook.example.com:8443", "--system-roots");
        Assert.True(result.ExitCode == 0, result.ToString());
        var stream = new YamlStream();
        stream.Load(new StringReader(result.Stdout));
        foreach (var index in new[] { 0, 1 })
        {
            var cluster = (YamlMappingNode)((YamlMappingNode)((YamlMappingNode)((YamlSequenceNode)((YamlMappingNode)stream.Documents[index].RootNode)["clusters"])[0])["cluster"]);
            Assert.False(cluster.Children.ContainsKey("certificate-authority"), $"document {index} has a certificate-authority");
            Assert.False(cluster.Children.ContainsKey("certificate-authority-data"), $"document {index} has certificate-authority-data");
        }
        Assert.Contains("# no certificate-authority (--system-roots): the API server verifies the webhook's serving certificate against its host's system roots",
            result.Stdout.Split("# kube-apiserver flags", StringSplitOptions.None)[1], StringComparison.Ordinal);

        var outDir = Path.Combine(_dir, "system-roots");
        var written = await PortcullisCli.RunAsync("webhook", "kubeconfig", "--server", "https://webhook.example.com:8443", "--system-roots", "--out", outDir);
        Assert.True(written.ExitCode == 0, written.ToString());
        Assert.Contains("--system-roots", written.Stderr, StringComparison.Ordinal);
        var kubeconfig = File.ReadAllText(Path.Combine(outDir, "authentication-webhook.kubeconfig"));
        Assert.DoesNotContain("certificate-authority:", kubeconfig, StringComparison.Ordinal);
        Assert.Contains("# no certificate-authority (--system-roots)", kubeconfig, StringComparison.Ordinal);
        // The flags file stays what a shell can splice into a command line: flags only.
        Assert.All(File.ReadAllLines(Path.Combine(outDir, "kube-apiserver-flags.txt")).Where(l => l.Length > 0), l => Assert.StartsWith("--", l, StringComparison.Ordinal));

        var help = await PortcullisCli.RunAsync("webhook", "kubeconfig", "--help");
        Assert.Contains("--system-roots", help.Stdout, StringComparison.Ordinal);
    }

    public async ValueTask DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }
        _serving.Dispose();
        _apiServerClients.Dispose();
        _other.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
