using BenchmarkDotNet.Attributes;
using Portcullis.Gateway.Diagnostics;
using Prometheus;

namespace Portcullis.Benchmarks;

/// <summary>
/// The hot-path cost of recording one authentication attempt and one audit event: the old way (prometheus-net children
/// incremented directly: three families for an attempt) against the Meter path (one <c>Histogram&lt;double&gt;.Record</c>
/// with two tags, which the gateway's <see cref="PrometheusBridge"/> applies to the same three families on the same
/// thread). Run: <c>dotnet run -c Release --project bench/Portcullis.Benchmarks -- --filter '*MetricsRecording*' --job short</c>.
/// </summary>
[MemoryDiagnoser]
[MinColumn]
[MedianColumn]
public class MetricsRecordingBenchmarks : IDisposable
{
    private GatewayMetrics _metrics = null!;
    private Counter _attempts = null!;
    private Histogram _duration = null!;
    private Counter _perAuthenticator = null!;
    private Counter _auditEvents = null!;
    private Counter _auditLevels = null!;

    [GlobalSetup]
    public void Setup()
    {
        _metrics = new GatewayMetrics();
        // The families as the gateway declared them before the Meter instruments, in a registry of their own.
        var factory = Prometheus.Metrics.WithCustomRegistry(Prometheus.Metrics.NewCustomRegistry());
        _attempts = factory.CreateCounter("authentication_attempts", "a", new CounterConfiguration { LabelNames = ["result"] });
        _duration = factory.CreateHistogram("authentication_duration_seconds", "d",
            new HistogramConfiguration { LabelNames = ["result"], Buckets = Histogram.ExponentialBuckets(0.001, 2, 15) });
        _perAuthenticator = factory.CreateCounter("portcullis_authentication_attempts_total", "p", new CounterConfiguration { LabelNames = ["authenticator", "result"] });
        _auditEvents = factory.CreateCounter("apiserver_audit_event_total", "e");
        _auditLevels = factory.CreateCounter("apiserver_audit_level_total", "l", new CounterConfiguration { LabelNames = ["level"] });
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _metrics.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>What the authentication middleware did before: three WithLabels lookups and three updates.</summary>
    [Benchmark(Baseline = true)]
    public void AuthenticationPrometheusDirect()
    {
        _attempts.WithLabels("success").Inc();
        _duration.WithLabels("success").Observe(0.0004);
        _perAuthenticator.WithLabels("token-file", "success").Inc();
    }

    /// <summary>What it does now: one measurement, bridged to the same three families.</summary>
    [Benchmark]
    public void AuthenticationMeterBridged() => _metrics.Authentication.Record("token-file", "success", 0.0004);

    /// <summary>An audit event and its level, the old way.</summary>
    [Benchmark]
    public void AuditPrometheusDirect()
    {
        _auditEvents.Inc();
        _auditLevels.WithLabels("Metadata").Inc();
    }

    /// <summary>An audit event and its level on the Meter instruments (tag value cached, no allocation).</summary>
    [Benchmark]
    public void AuditMeterBridged()
    {
        _metrics.Audit.Events.Add(1);
        _metrics.Audit.Levels.Add(1, new KeyValuePair<string, object?>("level", "Metadata"));
    }
}
