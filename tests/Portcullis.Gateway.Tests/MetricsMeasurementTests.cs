using System.Diagnostics.Metrics;
using System.Net;
using System.Text;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Tests.Infrastructure;
using Prometheus;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Authentication and audit are measured once, on <see cref="System.Diagnostics.Metrics"/> instruments of the host's own
/// meter, and exported under kube-apiserver's names by the gateway's bridge (docs/audit-and-metrics.md, "How the metrics
/// are exported").
/// </summary>
public sealed class MetricsMeasurementTests
{
    private const string AuditYaml = "audit:\n  policyFile: audit-policy.yaml\n  log:\n    path: audit.log\n    mode: blocking";

    private static readonly Dictionary<string, string> AuditFiles = new()
    {
        // One event per request (ResponseComplete), so event counts are exact.
        ["audit-policy.yaml"] = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n",
    };

    [Fact]
    public async Task One_authentication_increments_each_of_the_three_authentication_series_exactly_once()
    {
        await using var gw = await GatewayTestHost.StartAsync();
        using var admin = Admin(gw);
        var before = await ScrapeAsync(admin);
        Assert.Equal(0, Value(before, "authentication_attempts"));

        using (var client = gw.Client())
        {
            client.DefaultRequestHeaders.Authorization = new("Bearer", "token-jane");
            using var ok = await client.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        // Recorded by the authentication stage before the response is written; polled with a deadline all the same.
        var after = await ScrapeUntilAsync(admin, f => Value(f, "authentication_attempts") >= 1);
        Assert.Equal(1, Value(after, "authentication_attempts", ("result", "success")));
        Assert.Equal(1, Value(after, "authentication_attempts"));
        Assert.Equal(1, Value(after, "authentication_duration_seconds_count", ("result", "success")));
        Assert.Equal(1, Value(after, "authentication_duration_seconds_count"));
        Assert.Equal(1, Value(after, "authentication_duration_seconds_bucket", ("result", "success"), ("le", "+Inf")));
        Assert.Equal(1, Value(after, "portcullis_authentication_attempts_total", ("authenticator", "token-file"), ("result", "success")));
        Assert.Equal(1, Value(after, "portcullis_authentication_attempts_total"));
        Assert.Equal("histogram", after["authentication_duration_seconds"].Type);
        Assert.Equal("counter", after["portcullis_authentication_attempts_total"].Type);
    }

    [Fact]
    public async Task A_request_a_refusal_a_reload_and_a_refused_connection_each_move_their_series_by_exactly_their_count()
    {
        await using var gw = await GatewayTestHost.StartAsync("network:\n  deny: [127.0.0.2/32]");
        using var admin = Admin(gw);
        var before = await ScrapeAsync(admin);
        double Delta(Dictionary<string, PrometheusText.Family> after, string sample, params (string Name, string Value)[] labels) =>
            Value(after, sample, labels) - Value(before, sample, labels);

        using (var client = gw.Client())
        {
            client.DefaultRequestHeaders.Authorization = new("Bearer", "token-jane");
            using var ok = await client.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        using (var stranger = gw.Client())
        {
            stranger.DefaultRequestHeaders.Authorization = new("Bearer", "no-such-token");
            using var refused = await stranger.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }
        Assert.Empty(gw.Host.Reload()); // the file is unchanged, so the watcher does not reload it a second time
        using (var denied = gw.Client(gw.Pki.IssueClient("jane"), localAddress: IPAddress.Parse("127.0.0.2")))
        {
            Assert.NotNull(await Record.ExceptionAsync(() => denied.GetAsync("/api/v1/pods").WaitAsync(TimeSpan.FromSeconds(20))));
        }

        // Requests are recorded as their pipeline unwinds: poll until both are counted, then check exact amounts.
        var after = await ScrapeUntilAsync(admin, f => Value(f, "apiserver_request_total") - Value(before, "apiserver_request_total") >= 2
            && Value(f, "portcullis_network_refused_connections_total") - Value(before, "portcullis_network_refused_connections_total") >= 1);

        Assert.Equal(2, Delta(after, "apiserver_request_total"));
        Assert.Equal(1, Delta(after, "apiserver_request_total", ("verb", "LIST"), ("resource", "pods"), ("scope", "namespace"), ("code", "200"), ("component", "apiserver")));
        Assert.Equal(1, Delta(after, "apiserver_request_total", ("code", "401"), ("resource", ""), ("component", "apiserver")));
        Assert.Equal(2, Delta(after, "apiserver_request_duration_seconds_count"));
        Assert.Equal(1, Delta(after, "apiserver_request_duration_seconds_bucket", ("verb", "LIST"), ("resource", "pods"), ("le", "+Inf")));
        Assert.Equal(2, Delta(after, "authentication_attempts"));
        Assert.Equal(1, Delta(after, "authentication_attempts", ("result", "success")));
        Assert.Equal(1, Delta(after, "portcullis_requests_rejected_total"));
        Assert.Equal(1, Delta(after, "portcullis_requests_rejected_total", ("layer", "authentication"), ("code", "401")));
        Assert.Equal(1, Delta(after, "portcullis_config_reloads_total"));
        Assert.Equal(0, Delta(after, "portcullis_config_reload_failures_total"));
        Assert.Equal(0, Value(after, "portcullis_config_restart_required")); // every field reported, none changed
        Assert.Contains(after["portcullis_config_restart_required"].Samples, s => s.Labels.GetValueOrDefault("field") == "listeners");
        Assert.Equal(1, Delta(after, "portcullis_network_refused_connections_total"));
        Assert.Equal(0, Delta(after, "portcullis_tls_refused_client_certificates_total"));
        Assert.Equal(0, Value(after, "portcullis_bans_active")); // network.autoBan is off
        Assert.Equal("counter", after["apiserver_request_total"].Type);
        Assert.Equal("histogram", after["apiserver_request_duration_seconds"].Type);
        Assert.Equal("gauge", after["portcullis_config_restart_required"].Type);
        Assert.Equal("gauge", after["portcullis_upstream_up"].Type);
    }

    [Fact]
    public async Task Two_gateways_in_one_process_keep_separate_authentication_and_audit_counts()
    {
        await using var a = await GatewayTestHost.StartAsync(AuditYaml, files: AuditFiles);
        await using var b = await GatewayTestHost.StartAsync(AuditYaml, files: AuditFiles);
        using var adminA = Admin(a);
        using var adminB = Admin(b);

        async Task SendAsync(GatewayTestHost gw, string token, HttpStatusCode expected)
        {
            using var client = gw.Client();
            client.DefaultRequestHeaders.Authorization = new("Bearer", token);
            using var response = await client.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(expected, response.StatusCode);
        }
        await SendAsync(a, "token-jane", HttpStatusCode.OK);
        await SendAsync(a, "token-jane", HttpStatusCode.OK);
        await SendAsync(a, "no-such-token", HttpStatusCode.Unauthorized);
        await SendAsync(b, "token-root", HttpStatusCode.OK);

        var fa = await ScrapeUntilAsync(adminA, f => Value(f, "apiserver_audit_event_total") >= 3 && Value(f, "authentication_attempts") >= 3);
        var fb = await ScrapeUntilAsync(adminB, f => Value(f, "apiserver_audit_event_total") >= 1 && Value(f, "authentication_attempts") >= 1);

        Assert.Equal(2, Value(fa, "authentication_attempts", ("result", "success")));
        Assert.Equal(1, Value(fa, "authentication_attempts", ("result", "error")));
        Assert.Equal(3, Value(fa, "authentication_duration_seconds_count"));
        Assert.Equal(2, Value(fa, "portcullis_authentication_attempts_total", ("authenticator", "token-file"), ("result", "success")));
        Assert.Equal(1, Value(fa, "portcullis_authentication_attempts_total", ("authenticator", "none"), ("result", "error")));
        Assert.Equal(3, Value(fa, "apiserver_audit_event_total"));
        Assert.Equal(3, Value(fa, "apiserver_audit_level_total", ("level", "Metadata")));

        Assert.Equal(1, Value(fb, "authentication_attempts"));
        Assert.Equal(1, Value(fb, "authentication_attempts", ("result", "success")));
        Assert.Equal(1, Value(fb, "authentication_duration_seconds_count"));
        Assert.Equal(1, Value(fb, "portcullis_authentication_attempts_total"));
        Assert.Equal(1, Value(fb, "apiserver_audit_event_total"));
        Assert.Equal(1, Value(fb, "apiserver_audit_level_total", ("level", "Metadata")));
    }

    [Fact]
    public async Task Two_metrics_instances_do_not_see_each_others_measurements_and_a_disposed_one_stops_listening()
    {
        using var one = new GatewayMetrics();
        var two = new GatewayMetrics();
        one.Authentication.Record("jwt:https://issuer.example.com", "success", 0.003);
        one.Audit.Events.Add(1);
        two.Authentication.Record("webhook", "failure", 0.2);
        two.Dispose();
        two.Authentication.Record("webhook", "failure", 0.2); // the meter is disposed: not exported anywhere

        var a = await ExportAsync(one);
        var b = await ExportAsync(two);
        Assert.Equal(1, Value(a, "portcullis_authentication_attempts_total", ("authenticator", "jwt"), ("result", "success")));
        Assert.Equal(1, Value(a, "authentication_attempts"));
        Assert.Equal(1, Value(a, "apiserver_audit_event_total"));
        Assert.Equal(1, Value(b, "authentication_attempts", ("result", "failure")));
        Assert.Equal(1, Value(b, "portcullis_authentication_attempts_total", ("authenticator", "webhook"), ("result", "failure")));
        Assert.Equal(0, Value(b, "apiserver_audit_event_total"));
        // The audit series of every plugin and level are there from the start, at 0.
        Assert.Equal(["log", "webhook"], b["apiserver_audit_error_total"].Samples.Select(s => s.Labels["plugin"]).Order(StringComparer.Ordinal));
        Assert.Equal(4, b["apiserver_audit_level_total"].Samples.Count);
    }

    [Theory]
    [InlineData("", "none")]
    [InlineData("x509", "x509")]
    [InlineData("token-file", "token-file")]
    [InlineData("service-account", "service-account")]
    [InlineData("jwt:https://issuer.example.com/realms/a", "jwt")]
    [InlineData("webhook", "webhook")]
    [InlineData("anonymous", "anonymous")]
    [InlineData("my-custom-authenticator", "other")]
    [InlineData("alice@example.com", "other")]
    public void Authenticator_labels_come_from_a_fixed_set(string name, string label) =>
        Assert.Equal(label, AuthenticationMetrics.AuthenticatorLabel(name));

    [Fact]
    public async Task The_bridge_caps_the_label_sets_of_a_family_and_counts_the_rest_as_other()
    {
        var registry = Prometheus.Metrics.NewCustomRegistry();
        var family = Prometheus.Metrics.WithCustomRegistry(registry).CreateCounter("test_total", "t", new CounterConfiguration { LabelNames = ["value"] });
        using var meter = new Meter("test");
        var counter = meter.CreateCounter<long>("test_total");
        using var bridge = new PrometheusBridge(meter).Counter("test_total", family);
        bridge.Start();
        for (var i = 0; i < 100; i++)
        {
            counter.Add(2, new KeyValuePair<string, object?>("value", "v" + i));
        }
        counter.Add(-5, new KeyValuePair<string, object?>("value", "v0")); // not a count: ignored

        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream).WaitAsync(TimeSpan.FromSeconds(20));
        var families = PrometheusText.Parse(Encoding.UTF8.GetString(stream.ToArray()));
        var samples = families["test_total"].Samples;
        Assert.Equal(PrometheusBridge.MaxSeriesPerTarget + 1, samples.Count);
        Assert.Equal(200, samples.Sum(s => s.Value));
        Assert.Equal(2 * (100 - PrometheusBridge.MaxSeriesPerTarget), Assert.Single(samples, s => s.Labels["value"] == "other").Value);
    }

    [Fact]
    public async Task The_bridge_finds_a_label_set_by_its_values_whatever_the_instances_and_keeps_the_cap_for_repeated_sets()
    {
        var registry = Prometheus.Metrics.NewCustomRegistry();
        var family = Prometheus.Metrics.WithCustomRegistry(registry).CreateCounter("test_total", "t", new CounterConfiguration { LabelNames = ["a", "b"] });
        using var meter = new Meter("test");
        var counter = meter.CreateCounter<long>("test_total");
        using var bridge = new PrometheusBridge(meter).Counter("test_total", family, maxSeries: PrometheusBridge.MaxRecent + 2).ByReference("test_total");
        bridge.Start();
        static KeyValuePair<string, object?> Tag(string name, object? value) => new(name, value);
        for (var round = 0; round < 3; round++)
        {
            counter.Add(1, Tag("a", "x"), Tag("b", "y")); // the same instances: found by reference after the first
            counter.Add(1, Tag("a", new string('x', 1)), Tag("b", new string('y', 1))); // equal values, new instances
            counter.Add(1, Tag("b", "y"), Tag("a", "x")); // another tag order
            counter.Add(1, Tag("a", "x")); // b missing: ""
            counter.Add(1, Tag("a", "x"), Tag("b", null)); // b null: "" as well
            counter.Add(1, Tag("a", 5), Tag("b", "y")); // a boxed number: "5"
            // More label sets than the cap, from string constants: the ones past the cap count as other, every round.
            for (var i = 0; i < PrometheusBridge.MaxRecent + 4; i++)
            {
                counter.Add(10, Tag("a", "set"), Tag("b", Sets[i]));
            }
        }

        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream).WaitAsync(TimeSpan.FromSeconds(20));
        var families = PrometheusText.Parse(Encoding.UTF8.GetString(stream.ToArray()));
        Assert.Equal(9, Value(families, "test_total", ("a", "x"), ("b", "y")));
        Assert.Equal(6, Value(families, "test_total", ("a", "x"), ("b", "")));
        Assert.Equal(3, Value(families, "test_total", ("a", "5"), ("b", "y")));
        var samples = families["test_total"].Samples;
        Assert.Equal(PrometheusBridge.MaxRecent + 2 + 1, samples.Count); // the cap, and other
        var sets = samples.Where(s => s.Labels["a"] == "set").ToList();
        Assert.Equal(PrometheusBridge.MaxRecent - 1, sets.Count); // 3 series above took the cap's first 3 slots
        Assert.All(sets, s => Assert.Equal(30, s.Value));
        Assert.Equal(30 * (PrometheusBridge.MaxRecent + 4 - sets.Count), Assert.Single(samples, s => s.Labels["a"] == "other").Value);
    }

    private static readonly string[] Sets = [.. Enumerable.Range(0, PrometheusBridge.MaxRecent + 4).Select(i => "s" + i)];

    [Fact]
    public async Task The_bridge_sets_gauges_observes_observable_gauges_at_collection_shows_zero_counts_and_adds_constant_labels()
    {
        var registry = Prometheus.Metrics.NewCustomRegistry();
        var factory = Prometheus.Metrics.WithCustomRegistry(registry);
        var state = factory.CreateGauge("test_state", "s", new GaugeConfiguration { LabelNames = ["field"] });
        var observed = factory.CreateGauge("test_observed", "o");
        var counted = factory.CreateCounter("test_counted_total", "c", new CounterConfiguration { LabelNames = ["reason", "component"] });
        using var meter = new Meter("test");
        var gauge = meter.CreateGauge<long>("test_state");
        var current = 0;
        meter.CreateObservableGauge("test_observed", () => current);
        var counter = meter.CreateCounter<long>("test_counted_total");
        using var bridge = new PrometheusBridge(meter).Gauge("test_state", state).Gauge("test_observed", observed)
            .Counter("test_counted_total", counted, 4, ("component", "apiserver"));
        bridge.Start();
        registry.AddBeforeCollectCallback(bridge.Observe);

        gauge.Record(1, new KeyValuePair<string, object?>("field", "listeners"));
        gauge.Record(0, new KeyValuePair<string, object?>("field", "listeners"));
        gauge.Record(1, new KeyValuePair<string, object?>("field", "admin.address"));
        counter.Add(0, new KeyValuePair<string, object?>("reason", "manual"));
        counter.Add(3, new KeyValuePair<string, object?>("reason", "authentication"));
        current = 7;

        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream).WaitAsync(TimeSpan.FromSeconds(20));
        var families = PrometheusText.Parse(Encoding.UTF8.GetString(stream.ToArray()));
        Assert.Equal(0, Value(families, "test_state", ("field", "listeners")));
        Assert.Equal(1, Value(families, "test_state", ("field", "admin.address")));
        Assert.Equal(7, Value(families, "test_observed"));
        Assert.Equal(0, Assert.Single(families["test_counted_total"].Samples, s => s.Labels["reason"] == "manual").Value);
        Assert.Equal(3, Value(families, "test_counted_total", ("reason", "authentication"), ("component", "apiserver")));
        Assert.All(families["test_counted_total"].Samples, s => Assert.Equal("apiserver", s.Labels["component"]));
    }

    private static HttpClient Admin(GatewayTestHost gw) => new() { BaseAddress = gw.AdminUri, Timeout = TimeSpan.FromSeconds(20) };

    private static async Task<Dictionary<string, PrometheusText.Family>> ScrapeAsync(HttpClient admin)
    {
        using var response = await admin.GetAsync("/metrics").WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return PrometheusText.Parse(await response.Content.ReadAsStringAsync().WaitAsync(TimeSpan.FromSeconds(20)));
    }

    private static async Task<Dictionary<string, PrometheusText.Family>> ScrapeUntilAsync(HttpClient admin, Func<Dictionary<string, PrometheusText.Family>, bool> done)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            var families = await ScrapeAsync(admin);
            if (done(families) || DateTime.UtcNow > deadline)
            {
                return families;
            }
            await Task.Delay(50); // a poll interval with a deadline, not a synchronisation sleep
        }
    }

    private static async Task<Dictionary<string, PrometheusText.Family>> ExportAsync(GatewayMetrics metrics)
    {
        using var stream = new MemoryStream();
        await metrics.Registry.CollectAndExportAsTextAsync(stream).WaitAsync(TimeSpan.FromSeconds(20));
        return PrometheusText.Parse(Encoding.UTF8.GetString(stream.ToArray()));
    }

    /// <summary>The sum of the samples named <paramref name="sample"/> (a family or a histogram's _count/_bucket) with these labels.</summary>
    private static double Value(Dictionary<string, PrometheusText.Family> families, string sample, params (string Name, string Value)[] labels) =>
        families.Values.SelectMany(f => f.Samples)
            .Where(s => s.Name == sample && labels.All(l => s.Labels.GetValueOrDefault(l.Name) == l.Value))
            .Sum(s => s.Value);
}
