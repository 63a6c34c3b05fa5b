using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Portcullis.Authorization;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue #13 finding 8: one low-privilege user inventing resources, verbs, scopes and dry-run flags must not be able to
/// grow <c>/metrics</c> (12,000 refused requests once added 5,886 series and took it from 151 KB to 30 MB).
/// </summary>
public sealed class MetricsBoundsTests
{
    private const int MaxMetricsBytes = 2 * 1024 * 1024;
    /// <summary>Every family full with built-in resource names: about 2.9 MB (docs/audit-and-metrics.md).</summary>
    private const int WorstCaseMetricsBytes = 3_500_000;

    /// <summary>The dozen verb/scope/dry-run variants of the attack, for invented resource <c>widgets{n}</c>.</summary>
    private static HttpRequestMessage AttackRequest(int i)
    {
        var n = i % 1000;
        var collection = $"/apis/attack.example.com/v1/widgets{n}";
        var namespaced = $"/apis/attack.example.com/v1/namespaces/ns{n % 7}/widgets{n}";
        var named = namespaced + "/w" + (i % 13);
        HttpRequestMessage Json(HttpMethod method, string uri, string contentType = "application/json") =>
            new(method, uri) { Content = new StringContent("{}", Encoding.UTF8, MediaTypeHeaderValue.Parse(contentType)) };
        return ((i / 1000) % 12) switch
        {
            0 => new(HttpMethod.Get, collection),                                   // LIST, cluster
            1 => new(HttpMethod.Get, namespaced),                                   // LIST, namespace
            2 => new(HttpMethod.Get, named),                                        // GET, resource
            3 => new(HttpMethod.Get, namespaced + "?watch=true"),                   // WATCH
            4 => Json(HttpMethod.Post, namespaced),                                 // POST
            5 => Json(HttpMethod.Post, namespaced + "?dryRun=All"),                 // POST, dry run
            6 => Json(HttpMethod.Put, named),                                       // PUT
            7 => Json(HttpMethod.Patch, named, "application/merge-patch+json"),    // PATCH
            8 => Json(HttpMethod.Patch, named + "?dryRun=All&fieldManager=x", "application/apply-patch+yaml"), // APPLY, dry run
            9 => new(HttpMethod.Delete, named),                                     // DELETE
            10 => new(HttpMethod.Delete, namespaced + "?dryRun=All"),               // DELETECOLLECTION, dry run
            _ => new(HttpMethod.Get, named + "/status"),                            // GET a subresource
        };
    }

    private static async Task<(string Text, Dictionary<string, PrometheusText.Family> Families)> ScrapeUntilAsync(GatewayTestHost gw,
        Func<Dictionary<string, PrometheusText.Family>, bool> done)
    {
        using var admin = new HttpClient { BaseAddress = gw.AdminUri, Timeout = TimeSpan.FromSeconds(20) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var text = await admin.GetStringAsync("/metrics").WaitAsync(TimeSpan.FromSeconds(20));
            var families = PrometheusText.Parse(text);
            if (done(families) || DateTime.UtcNow > deadline)
            {
                return (text, families);
            }
            await Task.Delay(50); // a poll interval with a deadline, not a synchronisation sleep
        }
    }

    private static double Sum(Dictionary<string, PrometheusText.Family> families, string family, Func<PrometheusText.Sample, bool> where) =>
        families.TryGetValue(family, out var f) ? f.Samples.Where(where).Sum(s => s.Value) : 0;

    private static string Label(PrometheusText.Sample s, string name) => s.Labels.GetValueOrDefault(name) ?? "";

    [Fact]
    public async Task Twelve_thousand_refused_requests_over_a_thousand_invented_resources_keep_metrics_small()
    {
        await using var gw = await GatewayTestHost.StartAsync(modes: "[RBAC]");
        using var jane = gw.Client(version: HttpVersion.Version20);
        jane.DefaultRequestHeaders.Authorization = new("Bearer", "token-jane");
        var codes = new System.Collections.Concurrent.ConcurrentDictionary<HttpStatusCode, int>();
        await Parallel.ForEachAsync(Enumerable.Range(0, 12_000), new ParallelOptions { MaxDegreeOfParallelism = 48 }, async (i, ct) =>
        {
            using var request = AttackRequest(i);
            using var response = await jane.SendAsync(request, ct);
            codes.AddOrUpdate(response.StatusCode, 1, (_, c) => c + 1);
        }).WaitAsync(TimeSpan.FromSeconds(180));
        Assert.Equal(12_000, codes.GetValueOrDefault(HttpStatusCode.Forbidden));

        var (text, families) = await ScrapeUntilAsync(gw, f => Sum(f, "apiserver_request_total", s => Label(s, "code") == "403") >= 12_000);
        var size = Encoding.UTF8.GetByteCount(text);
        Assert.True(size < MaxMetricsBytes, $"/metrics is {size} bytes");

        var total = families["apiserver_request_total"].Samples;
        Assert.Equal(12_000, total.Where(s => Label(s, "code") == "403").Sum(s => s.Value));
        Assert.DoesNotContain(total, s => Label(s, "resource").StartsWith("widgets", StringComparison.Ordinal));
        Assert.DoesNotContain(total, s => Label(s, "group") == "attack.example.com");
        Assert.Equal(12_000, total.Where(s => Label(s, "resource") == "other").Sum(s => s.Value));
        // Every variant is still told apart (verb, scope, dry run), in a few dozen series rather than thousands.
        Assert.Equal(["APPLY", "DELETE", "DELETECOLLECTION", "GET", "LIST", "PATCH", "POST", "PUT", "WATCH"],
            total.Where(s => Label(s, "resource") == "other").Select(s => Label(s, "verb")).Distinct().Order(StringComparer.Ordinal));
        Assert.InRange(total.Count, 1, 40);
        var duration = families["apiserver_request_duration_seconds"].Samples;
        Assert.InRange(duration.Count(s => s.Name.EndsWith("_count", StringComparison.Ordinal)), 1, 40);
    }

    [Fact]
    public async Task Built_in_and_learned_resources_keep_their_labels_and_refusals_teach_nothing()
    {
        await using var gw = await GatewayTestHost.StartAsync(modes: "[RBAC]");
        using var jane = gw.Client();
        jane.DefaultRequestHeaders.Authorization = new("Bearer", "token-jane");
        using var root = gw.Client();
        root.DefaultRequestHeaders.Authorization = new("Bearer", "token-root");
        async Task<HttpStatusCode> Get(HttpClient client, string path)
        {
            using var response = await client.GetAsync(path).WaitAsync(TimeSpan.FromSeconds(20));
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.OK, await Get(jane, "/api/v1/namespaces/dev/pods"));                  // built in, answered
        Assert.Equal(HttpStatusCode.Forbidden, await Get(jane, "/api/v1/namespaces/dev/secrets"));        // built in, refused
        Assert.Equal(HttpStatusCode.Forbidden, await Get(jane, "/apis/stable.example.com/v1/namespaces/dev/crontabs")); // not yet known
        Assert.Equal(HttpStatusCode.OK, await Get(root, "/apis/stable.example.com/v1/namespaces/dev/crontabs"));        // learned by a 2xx
        Assert.Equal(HttpStatusCode.Forbidden, await Get(jane, "/apis/stable.example.com/v1/namespaces/dev/crontabs/c1")); // now known
        Assert.Equal(HttpStatusCode.Forbidden, await Get(jane, "/apis/stable.example.com/v1/namespaces/dev/widgets"));  // never answered

        bool Has(PrometheusText.Sample s, string verb, string group, string resource, string scope, string code) =>
            Label(s, "verb") == verb && Label(s, "group") == group && Label(s, "resource") == resource && Label(s, "scope") == scope
            && Label(s, "code") == code && Label(s, "component") == "apiserver";
        var (_, families) = await ScrapeUntilAsync(gw, f => Sum(f, "apiserver_request_total", _ => true) >= 6);
        var total = families["apiserver_request_total"].Samples;
        Assert.Contains(total, s => Has(s, "LIST", "", "pods", "namespace", "200") && Label(s, "version") == "v1");
        Assert.Contains(total, s => Has(s, "LIST", "", "secrets", "namespace", "403"));
        Assert.Contains(total, s => Has(s, "LIST", "other", "other", "namespace", "403") && s.Value == 2); // crontabs before learning, widgets
        Assert.Contains(total, s => Has(s, "LIST", "stable.example.com", "crontabs", "namespace", "200"));
        Assert.Contains(total, s => Has(s, "GET", "stable.example.com", "crontabs", "resource", "403"));
        Assert.DoesNotContain(total, s => Label(s, "resource") == "widgets");
    }

    private static RequestInfo Info(string method, string path, string query = "") => RequestInfoParser.Parse(method, path, query);

    /// <summary>Every built-in resource under every scope and method: the most label sets a refused client can aim at.</summary>
    private static IEnumerable<(string Method, RequestInfo Info)> EveryBuiltInRequest()
    {
        string[] methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
        foreach (var r in RequestMetrics.BuiltInResources)
        {
            var prefix = r.Group.Length == 0 ? "/api/" + r.Version : $"/apis/{r.Group}/{r.Version}";
            var sub = r.Subresource.Length > 0 ? "/" + r.Subresource : "";
            foreach (var path in new[] { $"{prefix}/{r.Resource}", $"{prefix}/namespaces/ns/{r.Resource}", $"{prefix}/namespaces/ns/{r.Resource}/x{sub}" })
            {
                foreach (var method in methods)
                {
                    yield return (method, Info(method, path));
                }
            }
        }
    }

    private static async Task<(int Bytes, Dictionary<string, PrometheusText.Family> Families)> ExportAsync(GatewayMetrics metrics)
    {
        using var stream = new MemoryStream();
        await metrics.Registry.CollectAndExportAsTextAsync(stream).WaitAsync(TimeSpan.FromSeconds(20));
        return ((int)stream.Length, PrometheusText.Parse(Encoding.UTF8.GetString(stream.ToArray())));
    }

    private static bool IsOverflow(PrometheusText.Sample s) => s.Labels.Where(l => l.Key is not ("component" or "le")).All(l => l.Value == "other");

    [Fact]
    public async Task Requests_refused_by_the_gateway_fill_at_most_half_of_each_family_and_under_2_MB_whatever_they_aim_at()
    {
        var metrics = new GatewayMetrics();
        int[] codes = [400, 401, 403, 404, 409, 422, 429, 299, 599, 777];
        foreach (var (method, info) in EveryBuiltInRequest())
        {
            foreach (var code in codes)
            {
                metrics.Requests.Record(method, "application/apply-patch+yaml", info, authenticated: true, dryRun: code % 2 == 0 ? "All" : "", code, refusedByGateway: true, 0.02);
                metrics.Requests.Record(method, null, info, authenticated: true, dryRun: code % 2 == 1 ? "All" : "", code, refusedByGateway: true, 0.02);
            }
        }
        Assert.Equal(0, metrics.Requests.LearnedResources);

        // Real traffic still gets its own series after the flood.
        metrics.Requests.Record("GET", null, Info("GET", "/apis/apps/v1/namespaces/prod/deployments"), true, "", 200, false, 0.03);

        var (bytes, families) = await ExportAsync(metrics);
        Assert.True(bytes < MaxMetricsBytes, $"/metrics is {bytes} bytes");
        var total = families["apiserver_request_total"].Samples;
        Assert.InRange(total.Count, RequestMetrics.MaxRequestTotalSeries / 2, (RequestMetrics.MaxRequestTotalSeries / 2) + 2);
        Assert.True(Assert.Single(total, IsOverflow).Value > 0);
        Assert.Contains(total, s => Label(s, "resource") == "deployments" && Label(s, "code") == "200" && Label(s, "verb") == "LIST");
        var durations = families["apiserver_request_duration_seconds"].Samples.Where(s => s.Name.EndsWith("_count", StringComparison.Ordinal)).ToList();
        Assert.InRange(durations.Count, RequestMetrics.MaxDurationSeries / 2, (RequestMetrics.MaxDurationSeries / 2) + 2);
        Assert.Contains(durations, s => Label(s, "resource") == "deployments" && Label(s, "verb") == "LIST");

        // Codes come from a fixed set; others fold to their class, or to "other" outside 100-599.
        Assert.Subset(new HashSet<string> { "400", "401", "403", "404", "409", "422", "429", "2xx", "5xx", "200", "other" },
            total.Select(s => Label(s, "code")).ToHashSet());
        Assert.Equal("2xx", RequestMetrics.Code(299));
        Assert.Equal("5xx", RequestMetrics.Code(599));
        Assert.Equal("other", RequestMetrics.Code(777));
        Assert.Equal("403", RequestMetrics.Code(403));
    }

    [Fact]
    public async Task Learned_resources_and_every_family_are_capped_whatever_the_upstream_answers()
    {
        var metrics = new GatewayMetrics();
        // 500 CRDs answered 2xx: only MaxLearnedResources of them are learned, the rest count as "other".
        for (var i = 0; i < 500; i++)
        {
            metrics.Requests.Record("GET", null, Info("GET", $"/apis/g{i}.example.com/v1/things"), true, "", 200, false, 0.01);
        }
        Assert.Equal(RequestMetrics.MaxLearnedResources, metrics.Requests.LearnedResources);
        var (_, learned) = await ExportAsync(metrics);
        Assert.Equal(RequestMetrics.MaxLearnedResources, learned["apiserver_request_total"].Samples.Count(s => Label(s, "group").EndsWith(".example.com", StringComparison.Ordinal)));
        Assert.Equal(300, learned["apiserver_request_total"].Samples.Single(s => Label(s, "group") == "other").Value);

        // Then every label set the upstream could produce: the caps hold, and the exposition stays bounded.
        int[] codes = [200, 201, 404, 409, 500, 503];
        foreach (var (method, info) in EveryBuiltInRequest())
        {
            foreach (var code in codes)
            {
                metrics.Requests.Record(method, null, info, true, dryRun: code == 201 ? "All" : "", code, refusedByGateway: false, 0.02);
            }
        }
        var (bytes, families) = await ExportAsync(metrics);
        Assert.True(bytes < WorstCaseMetricsBytes, $"/metrics is {bytes} bytes");
        var total = families["apiserver_request_total"].Samples;
        Assert.Equal(RequestMetrics.MaxRequestTotalSeries + 1, total.Count);
        Assert.Single(total, IsOverflow);
        var durations = families["apiserver_request_duration_seconds"].Samples.Count(s => s.Name.EndsWith("_count", StringComparison.Ordinal));
        Assert.Equal(RequestMetrics.MaxDurationSeries + 1, durations);
    }

    [Theory]
    [InlineData("", "")]
    [InlineData("?watch=true", "")]
    [InlineData("?dryRun=All", "All")]
    [InlineData("?dryRun=All&dryRun=All", "All")]
    [InlineData("?dryRun=all", "invalid")]
    [InlineData("?dryRun=true", "invalid")]
    [InlineData("?dryRun=", "invalid")]
    [InlineData("?dryRun", "invalid")]
    [InlineData("?dryRun=All&dryRun=Server", "invalid")]
    public void The_dry_run_label_is_kube_apiservers_cleaned_value(string query, string label)
    {
        // kube-apiserver's cleanDryRun (endpoints/metrics): "" without the parameter, "invalid" unless every value is
        // the one ValidateDryRun accepts, else the distinct values ("All"). The query is parsed as Kestrel parses it.
        var parsed = new Microsoft.AspNetCore.Http.QueryCollection(Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(query));
        Assert.Equal(label, RequestMetrics.DryRunLabel(parsed));
    }
}
