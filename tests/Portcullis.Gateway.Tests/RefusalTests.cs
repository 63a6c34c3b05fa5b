using System.Globalization;
using System.Text.RegularExpressions;
using Portcullis.Gateway.Tests.Infrastructure;
using static Portcullis.Gateway.Tests.AuditFidelityTests;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue 14, part 3: one way to refuse a request. Whichever layer ends a request, the refusal is audited with
/// <c>portcullis.dev/rejected-by: &lt;layer&gt;</c> and counted in <c>portcullis_requests_rejected_total{layer,code}</c>.
/// </summary>
public sealed partial class RefusalTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private const string Policy = """
        apiVersion: audit.k8s.io/v1
        kind: Policy
        omitStages: [RequestReceived]
        rules:
        - level: Metadata
        """;

    /// <summary>A level of 0 shares (0 seats) that queues: its requests wait out the wait limit and get a 429 (time-out).</summary>
    private const string ClosedLevel = """
        apiVersion: flowcontrol.apiserver.k8s.io/v1
        kind: PriorityLevelConfiguration
        metadata: {name: closed}
        spec: {type: Limited, limited: {nominalConcurrencyShares: 0, limitResponse: {type: Queue}}}
        ---
        apiVersion: flowcontrol.apiserver.k8s.io/v1
        kind: FlowSchema
        metadata: {name: closed}
        spec:
          matchingPrecedence: 10
          priorityLevelConfiguration: {name: closed}
          rules: [{subjects: [{kind: Group, group: {name: developers}}], nonResourceRules: [{verbs: [get], nonResourceURLs: [/apf-closed]}]}]
        """;

    // burst 1: the second event in a namespace is refused (the host's clock stands still: no refill).
    private const string EventLimit = """
        apiVersion: apiserver.config.k8s.io/v1
        kind: AdmissionConfiguration
        plugins:
        - name: EventRateLimit
          configuration:
            apiVersion: eventratelimit.admission.k8s.io/v1alpha1
            kind: Configuration
            limits: [{type: Namespace, qps: 1, burst: 1}]
        """;

    private static async Task<string> EventTwiceAsync(GatewayTestHost gw)
    {
        const string create = "POST /api/v1/namespaces/dev/events HTTP/1.1\nHost: localhost\nAuthorization: Bearer token-root\nContent-Type: application/json\nContent-Length: 2\nConnection: close\n\n{}";
        Assert.StartsWith("HTTP/1.1 200", await RawHttps.SendAsync(gw, null, create));
        return await RawHttps.SendAsync(gw, null, create);
    }

    private static async Task<string> FloodTwiceAsync(GatewayTestHost gw, System.Security.Cryptography.X509Certificates.X509Certificate2 jane)
    {
        const string get = "GET /api/v1/namespaces/flood/pods HTTP/1.1\nHost: localhost\nConnection: close\n\n";
        // burst 2 (every other row sends at most 2 requests of one user): the third is refused
        Assert.StartsWith("HTTP/1.1 200", await RawHttps.SendAsync(gw, jane, get));
        Assert.StartsWith("HTTP/1.1 200", await RawHttps.SendAsync(gw, jane, get));
        return await RawHttps.SendAsync(gw, jane, get);
    }

    public static TheoryData<string, string, int> Cases => new()
    {
        { "too many header lines", "http", 431 },
        { "a client behind a trusted proxy that network.deny refuses", "network", 403 },
        { "a dot segment in the path", "http", 400 },
        { "Connection nominating an identity header", "http", 400 },
        { "a body over limits.maxRequestBodyBytes", "http", 413 },
        { "no credentials", "authentication", 401 },
        { "Impersonate-Group without Impersonate-User", "impersonation", 400 },
        { "impersonation the user may not do", "impersonation", 403 },
        { "a request RBAC does not allow", "authorization", 403 },
        { "a priority level without seats", "apf", 429 },
        { "an event over the EventRateLimit burst", "eventratelimit", 429 },
        { "a user over the admission.rateLimits burst", "ratelimit", 429 },
        { "a SelfSubjectAccessReview the gateway cannot read", "selfsubjectaccessreview", 415 },
        { "a SelfSubjectRulesReview without a namespace", "selfsubjectrulesreview", 400 },
        { "the upstream down", "upstream", 503 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Each_layers_refusal_is_audited_with_the_layer_and_counted(string refused, string layer, int code)
    {
        await using var gw = await GatewayTestHost.StartAsync(
            "audit:\n  policyFile: audit-policy.yaml\n  log:\n    path: audit.log\n    mode: blocking\nlimits:\n  maxRequestBodyBytes: 1000\nadmission:\n  priorityAndFairness: {configFiles: [apf.yaml]}\n  admissionControlConfigFile: admission.yaml\n  rateLimits: [{type: User, qps: 1, burst: 2}]\n" +
            "network:\n  trustedProxies: [127.0.0.1/32]\n  deny: [203.0.113.0/24]\n",
            modes: "[RBAC]", files: new() { ["audit-policy.yaml"] = Policy, ["apf.yaml"] = ClosedLevel, ["admission.yaml"] = EventLimit },
            upstreamDown: refused == "the upstream down", time: new SteppedClock()).WaitAsync(Timeout);
        var jane = gw.Pki.IssueClient("jane", "developers");
        var response = refused switch
        {
            "too many header lines" => await RawHttps.SendAsync(gw, jane,
                "GET /api/v1/namespaces/dev/pods HTTP/1.1\nHost: localhost\n" + string.Concat(Enumerable.Range(0, 120).Select(i => $"X-Pad-{i}: v\n")) + "Connection: close\n\n"),
            "a client behind a trusted proxy that network.deny refuses" => await RawHttps.SendAsync(gw, jane,
                "GET /api/v1/namespaces/dev/pods HTTP/1.1\nHost: localhost\nX-Forwarded-For: 203.0.113.9\nConnection: close\n\n"),
            "a dot segment in the path" => await RawHttps.SendAsync(gw, null,
                "GET /api/v1/namespaces/dev/../kube-system/secrets HTTP/1.1\nHost: localhost\nConnection: close\n\n"),
            "Connection nominating an identity header" => await RawHttps.SendAsync(gw, jane,
                "GET /api/v1/namespaces/dev/pods HTTP/1.1\nHost: localhost\nConnection: Impersonate-User\n\n"),
            "a body over limits.maxRequestBodyBytes" => await RawHttps.SendAsync(gw, jane,
                "POST /api/v1/namespaces/dev/configmaps HTTP/1.1\nHost: localhost\nContent-Type: application/json\nContent-Length: 2000\nConnection: close\n\n" + new string(' ', 2000)),
            "no credentials" => await RawHttps.SendAsync(gw, null,
                "GET /api/v1/namespaces HTTP/1.1\nHost: localhost\nConnection: close\n\n"),
            "Impersonate-Group without Impersonate-User" => await RawHttps.SendAsync(gw, jane,
                "GET /api/v1/namespaces/dev/pods HTTP/1.1\nHost: localhost\nImpersonate-Group: developers\nConnection: close\n\n"),
            "impersonation the user may not do" => await RawHttps.SendAsync(gw, jane,
                "GET /api/v1/namespaces/dev/pods HTTP/1.1\nHost: localhost\nImpersonate-User: admin\nConnection: close\n\n"),
            "a request RBAC does not allow" => await RawHttps.SendAsync(gw, jane,
                "GET /api/v1/namespaces/prod/secrets/db HTTP/1.1\nHost: localhost\nConnection: close\n\n"),
            "a SelfSubjectAccessReview the gateway cannot read" => await RawHttps.SendAsync(gw, null,
                "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews HTTP/1.1\nHost: localhost\nAuthorization: Bearer token-root\nContent-Type: text/plain\nContent-Length: 2\nConnection: close\n\n{}"),
            "a SelfSubjectRulesReview without a namespace" => await RawHttps.SendAsync(gw, null,
                "POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews HTTP/1.1\nHost: localhost\nAuthorization: Bearer token-root\nContent-Type: application/json\nContent-Length: 11\nConnection: close\n\n{\"spec\":{}}"),
            "a priority level without seats" => await RawHttps.SendAsync(gw, jane,
                "GET /apf-closed HTTP/1.1\nHost: localhost\nConnection: close\n\n"),
            "an event over the EventRateLimit burst" => await EventTwiceAsync(gw),
            "a user over the admission.rateLimits burst" => await FloodTwiceAsync(gw, jane),
            "the upstream down" => await RawHttps.SendAsync(gw, jane,
                "GET /api/v1/namespaces/dev/pods HTTP/1.1\nHost: localhost\nConnection: close\n\n"),
            _ => throw new ArgumentOutOfRangeException(nameof(refused)),
        };

        Assert.StartsWith("HTTP/1.1 " + code.ToString(CultureInfo.InvariantCulture), response);
        using (var admin = new HttpClient { BaseAddress = gw.AdminUri })
        {
            var metrics = await admin.GetStringAsync("/metrics").WaitAsync(Timeout);
            Assert.Contains($"portcullis_requests_rejected_total{{layer=\"{layer}\",code=\"{code}\"}} 1", metrics, StringComparison.Ordinal);
            Assert.Single(RejectedSeries().Matches(metrics)); // no other layer counted it too
        }
        var e = Assert.Single(await EventsAfterStopAsync(gw), e => Code(e) == code);
        Assert.Equal(layer, Annotation(e, "portcullis.dev/rejected-by"));
    }

    [Fact]
    public void Every_layer_in_the_table_is_a_refusal_layer_of_the_gateway()
    {
        // The table covers each layer that ends requests, but the audit stage's own 500 (a blocking backend that cannot
        // store RequestReceived), which AuditLayerTests covers.
        var layers = typeof(GatewayAssembly).Assembly.GetType("Portcullis.Gateway.Pipeline.RefusalLayers")!
            .GetFields().Select(f => (string)f.GetValue(null)!).ToHashSet(StringComparer.Ordinal);
        var covered = Cases.Select(c => (string)c[1]).ToHashSet(StringComparer.Ordinal);
        covered.Add("audit");
        Assert.Equal(layers.Order(StringComparer.Ordinal), covered.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void No_stage_forgives_a_null_user()
    {
        // Stages after authentication read AuthenticatedRequest, whose User and EffectiveUser are never null.
        var root = Path.Combine(FindRepositoryRoot(), "src", "Portcullis.Gateway");
        var offenders = Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Where(f => NullForgivenUser().IsMatch(File.ReadAllText(f)))
            .ToList();
        Assert.Empty(offenders);
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Portcullis.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("Portcullis.slnx not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"portcullis_requests_rejected_total\{[^}]*\} [1-9]")]
    private static partial Regex RejectedSeries();

    [GeneratedRegex(@"\b(User|EffectiveUser|ImpersonatedUser)!")]
    private static partial Regex NullForgivenUser();
}
