using Prometheus;

namespace Portcullis.Gateway.Metrics;

/// <summary>
/// The gateway's Prometheus metrics, registered in one registry per host. Labels are bounded: no user, IP or path label.
/// </summary>
internal sealed class GatewayMetrics
{
    public CollectorRegistry Registry { get; } = Prometheus.Metrics.NewCustomRegistry();

    public Counter ConfigReloadFailures { get; }
    public Counter ConfigReloads { get; }
    public Counter RefusedConnections { get; }
    public Counter RefusedCertificates { get; }
    public Counter RequestsRejected { get; }
    public Counter AuthenticationAttempts { get; }
    public Histogram AuthenticationDuration { get; }
    public Counter RequestTotal { get; }
    public Histogram RequestDuration { get; }
    public Gauge UpstreamUp { get; }

    public GatewayMetrics()
    {
        var factory = Prometheus.Metrics.WithCustomRegistry(Registry);
        ConfigReloadFailures = factory.CreateCounter("portcullis_config_reload_failures_total", "Configuration reloads rejected; the previous configuration kept serving.");
        ConfigReloads = factory.CreateCounter("portcullis_config_reloads_total", "Configuration reloads applied.");
        RefusedConnections = factory.CreateCounter("portcullis_network_refused_connections_total", "Connections closed at accept by network.allow/deny (L1).");
        RefusedCertificates = factory.CreateCounter("portcullis_tls_refused_client_certificates_total", "TLS handshakes refused because the client certificate did not verify (L2).");
        RequestsRejected = factory.CreateCounter("portcullis_requests_rejected_total", "Requests ended by a gateway layer.", new CounterConfiguration { LabelNames = ["layer", "code"] });
        AuthenticationAttempts = factory.CreateCounter("authentication_attempts", "Counter of authenticated attempts.", new CounterConfiguration { LabelNames = ["result"] });
        AuthenticationDuration = factory.CreateHistogram("authentication_duration_seconds", "Authentication duration in seconds broken out by result.",
            new HistogramConfiguration { LabelNames = ["result"], Buckets = Histogram.ExponentialBuckets(0.001, 2, 15) });
        RequestTotal = factory.CreateCounter("apiserver_request_total",
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
            new CounterConfiguration { LabelNames = ["verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component", "code"] });
        RequestDuration = factory.CreateHistogram("apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
            new HistogramConfiguration
            {
                LabelNames = ["verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component"],
                Buckets = [0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60],
            });
        UpstreamUp = factory.CreateGauge("portcullis_upstream_up", "1 when the last upstream probe got an HTTP answer.");
    }
}
