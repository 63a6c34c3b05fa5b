using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue 15: an existing API Priority and Fairness dashboard works against the gateway's <c>/metrics</c>. The dashboard is
/// OpenShift's "API Performance" Grafana dashboard (fixtures/grafana, verbatim, with the recording rules it reads from,
/// see fixtures/grafana/SOURCES.md). Every PromQL expression of it that names an <c>apiserver_flowcontrol_*</c> series is
/// resolved through the recording rules down to the metrics kube-apiserver exports, with every label its selectors and
/// <c>by (...)</c> / <c>without (...)</c> clauses use on the way; then, after traffic that queues, rejects and runs
/// requests, each of those metrics must be on the gateway's <c>/metrics</c> with each of those labels.
/// </summary>
public sealed partial class PriorityAndFairnessTests
{
    private static readonly string Grafana = Path.Combine(AppContext.BaseDirectory, "fixtures", "grafana");

    /// <summary>
    /// Labels the dashboard uses that no exporter writes, kube-apiserver included: <c>apiserver</c> is set by the scrape
    /// (the ServiceMonitor's <c>relabelings: [{targetLabel: apiserver, replacement: kube-apiserver}]</c>); the recording
    /// rule of the queue length groups <c>by (..., reason, le)</c> though kube-apiserver's histogram has no <c>reason</c>
    /// (its labels are <c>priority_level</c>, <c>flow_schema</c>), so that label is empty in Prometheus too.
    /// </summary>
    private static readonly HashSet<(string Metric, string Label)> NotExported =
    [
        ("*", "apiserver"),
        ("apiserver_flowcontrol_request_queue_length_after_enqueue_bucket", "reason"),
    ];

    [Fact]
    public async Task OpenShifts_API_Performance_dashboard_finds_every_apf_metric_and_label_it_queries()
    {
        var needed = DashboardRequirements();
        // The fixture's seven Priority & Fairness panels read these metrics (the parse is not vacuous).
        Assert.Equal(
            new[]
            {
                "apiserver_flowcontrol_current_executing_requests", "apiserver_flowcontrol_current_inqueue_requests",
                "apiserver_flowcontrol_rejected_requests_total", "apiserver_flowcontrol_request_concurrency_limit",
                "apiserver_flowcontrol_request_execution_seconds_bucket", "apiserver_flowcontrol_request_queue_length_after_enqueue_bucket",
                "apiserver_flowcontrol_request_wait_duration_seconds_bucket",
            },
            needed.Keys.Order(StringComparer.Ordinal).ToArray());
        Assert.Contains("flow_schema", needed["apiserver_flowcontrol_current_inqueue_requests"]);
        Assert.Contains("reason", needed["apiserver_flowcontrol_rejected_requests_total"]);
        Assert.Contains("execute", needed["apiserver_flowcontrol_request_wait_duration_seconds_bucket"]);

        await using var gw = await StartAsync();
        using var jane = gw.Client(gw.Pki.IssueClient("jane"));
        using var batch = gw.Client(gw.Pki.IssueClient("batch"));
        // batch-low (2 seats, Reject): two held, the third refused
        var held = Enumerable.Range(0, 2).Select(_ => batch.GetAsync("/hold")).ToList();
        await UntilAsync(() => gw.Upstream.Holding == 2, "both seats of batch-low taken");
        using (var refused = await batch.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        }
        // tenants (4 seats, queues): 6 of jane's wait in her queue until the held requests are released
        var flood = Enumerable.Range(0, 10).Select(_ => jane.GetAsync("/hold")).ToList();
        await UntilMetricAsync(gw, "apiserver_flowcontrol_current_inqueue_requests{flow_schema=\"tenants\",priority_level=\"tenants\"} 6");
        gw.Upstream.Hold.Release(100);
        foreach (var r in await Task.WhenAll(held.Concat(flood)).WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            r.Dispose();
        }

        var series = (await MetricsAsync(gw)).Split('\n').Where(l => l.Length > 0 && l[0] != '#').ToList();
        var missing = new List<string>();
        foreach (var (metric, labels) in needed)
        {
            var lines = series.Where(l => l.StartsWith(metric + "{", StringComparison.Ordinal)).ToList();
            if (lines.Count == 0)
            {
                missing.Add($"{metric}: no series");
                continue;
            }
            var wanted = labels.Where(l => !NotExported.Contains(("*", l)) && !NotExported.Contains((metric, l))).Order(StringComparer.Ordinal).ToList();
            if (!lines.Any(line => wanted.All(label => line.Contains(label + "=\"", StringComparison.Ordinal))))
            {
                missing.Add($"{metric}: no series with all of {string.Join(", ", wanted)}; first: {lines[0]}");
            }
        }
        Assert.True(missing.Count == 0, "the dashboard queries what /metrics does not have:\n" + string.Join('\n', missing));
        // and their values are kube-apiserver's: 6 requests joined tenants' queue, 10 ran (not watches), 4 nominal seats
        Assert.Contains("apiserver_flowcontrol_request_queue_length_after_enqueue_count{priority_level=\"tenants\",flow_schema=\"tenants\"} 6", series);
        Assert.Contains("apiserver_flowcontrol_request_execution_seconds_count{priority_level=\"tenants\",flow_schema=\"tenants\",type=\"regular\"} 10", series);
        Assert.Contains("apiserver_flowcontrol_request_concurrency_limit{priority_level=\"tenants\"} 4", series);
    }

    /// <summary>
    /// The kube-apiserver metrics (by series name, e.g. <c>…_bucket</c>) the dashboard's APF expressions read, each with
    /// the labels used on the way from the panel through the recording rules (for every value of <c>$period</c>).
    /// </summary>
    private static Dictionary<string, HashSet<string>> DashboardRequirements()
    {
        var rules = RecordingRule().Matches(File.ReadAllText(Path.Combine(Grafana, "openshift-kube-apiserver-recording-rules.yaml")))
            .ToDictionary(m => m.Groups["record"].Value, m => m.Groups["expr"].Value.Trim());
        var yaml = File.ReadAllLines(Path.Combine(Grafana, "openshift-api-performance-dashboard.yaml"));
        var start = Array.FindIndex(yaml, l => l.Trim() == "api-performance.json: |-") + 1;
        var dashboard = JsonNode.Parse(string.Join('\n', yaml[start..].Select(l => l.Length >= 4 ? l[4..] : l)))!;
        var periods = dashboard["templating"]!["list"]!.AsArray().Single(v => (string?)v!["name"] == "period")!["options"]!.AsArray()
            .Select(o => (string)o!["value"]!).ToList();
        Assert.Equal(new[] { "1m", "5m" }, periods);

        var needed = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var expr in Expressions(dashboard).Where(e => e.Contains("apiserver_flowcontrol_", StringComparison.Ordinal)))
        {
            foreach (var period in periods)
            {
                Resolve(expr.Replace("$period", period, StringComparison.Ordinal), [], rules, needed, depth: 0);
            }
        }
        return needed;
    }

    private static void Resolve(string expr, HashSet<string> inherited, Dictionary<string, string> rules, Dictionary<string, HashSet<string>> needed, int depth)
    {
        Assert.True(depth < 5, "recording rules nest too deep: " + expr);
        var grouping = Grouping().Matches(expr).SelectMany(m => m.Groups["labels"].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        foreach (Match selector in Selector().Matches(expr))
        {
            var name = selector.Groups["name"].Value;
            if (!name.Contains("apiserver_flowcontrol_", StringComparison.Ordinal))
            {
                continue;
            }
            var labels = new HashSet<string>(inherited, StringComparer.Ordinal);
            labels.UnionWith(grouping);
            labels.UnionWith(Matcher().Matches(selector.Groups["matchers"].Value).Select(m => m.Groups["label"].Value));
            if (rules.TryGetValue(name, out var rule))
            {
                Resolve(rule, labels, rules, needed, depth + 1);
            }
            else
            {
                Assert.False(name.Contains(':', StringComparison.Ordinal), $"{name}: a recording rule the fixture does not define");
                if (!needed.TryGetValue(name, out var all))
                {
                    needed[name] = all = new HashSet<string>(StringComparer.Ordinal);
                }
                all.UnionWith(labels);
            }
        }
    }

    private static IEnumerable<string> Expressions(JsonNode? node) => node switch
    {
        JsonObject o => o.SelectMany(p => p.Key == "expr" && p.Value is JsonValue v && v.TryGetValue<string>(out var s) ? new[] { s } : Expressions(p.Value)),
        JsonArray a => a.SelectMany(Expressions),
        _ => [],
    };

    [GeneratedRegex(@"^\s*- record: (?<record>\S+)\s*\n\s*expr: (?<expr>.+)$", RegexOptions.Multiline)]
    private static partial Regex RecordingRule();

    /// <summary>A series name (letters, digits, <c>_</c>, <c>:</c>) not inside a word or a variable, with its optional <c>{…}</c>.</summary>
    [GeneratedRegex(@"(?<![\w:$""])(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(?<matchers>[^}]*)\})?")]
    private static partial Regex Selector();

    [GeneratedRegex(@"(?<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")]
    private static partial Regex Matcher();

    [GeneratedRegex(@"\b(?:by|without)\s*\((?<labels>[^)]*)\)")]
    private static partial Regex Grouping();
}
