using System.Diagnostics.Metrics;
using Prometheus;

namespace Portcullis.Gateway.Diagnostics;

/// <summary>
/// The gateway's metrics. Every one is measured on a <see cref="System.Diagnostics.Metrics"/> instrument of the host's own
/// <see cref="Meter"/>; a <see cref="PrometheusBridge"/> feeds the measurements into families of one prometheus-net
/// registry per host, which only writes the exposition, under kube-apiserver's (and Portcullis's) names, HELP texts,
/// label names and buckets. Labels are bounded: no user, IP or path label. Dispose with the host.
/// </summary>
internal sealed class GatewayMetrics : IDisposable
{
    /// <summary>The name of each host's meter (each host has its own instance; listeners tell them apart by reference).</summary>
    public const string MeterName = "Portcullis.Gateway";

    private readonly PrometheusBridge _bridge;

    public CollectorRegistry Registry { get; } = Prometheus.Metrics.NewCustomRegistry();

    /// <summary>This host's meter: its instruments are exported here and nowhere else.</summary>
    public Meter Meter { get; } = new(MeterName);

    /// <summary><c>portcullis_config_reload_failures_total</c>: one per reload rejected.</summary>
    public Counter<long> ConfigReloadFailures { get; }
    /// <summary><c>portcullis_config_reloads_total</c>: one per reload applied.</summary>
    public Counter<long> ConfigReloads { get; }
    /// <summary><c>portcullis_config_restart_required{field}</c>: 1 for each field (a fixed set) whose loaded value differs
    /// from the one the process started with, else 0; recorded at each applied reload.</summary>
    public Gauge<long> ConfigRestartRequired { get; }
    /// <summary><c>portcullis_network_refused_connections_total{reason}</c>: one per connection closed at accept; record it
    /// with <see cref="RefuseConnection"/>.</summary>
    public Counter<long> RefusedConnections { get; }
    /// <summary><c>portcullis_tls_refused_client_certificates_total{reason}</c>: one per handshake refused for its client
    /// certificate; record it with <see cref="RefuseCertificate"/>.</summary>
    public Counter<long> RefusedCertificates { get; }
    /// <summary><c>portcullis_tls_client_certificate_lifetime_warnings_total</c>: one per handshake that let in a client
    /// certificate longer-lived than <c>tls.clientCertificates.maxLifetime</c> (action warn). No label.</summary>
    public Counter<long> CertificateLifetimeWarnings { get; }
    /// <summary><c>portcullis_requests_rejected_total{layer,code}</c>: one per request a gateway layer ended.</summary>
    public Counter<long> RequestsRejected { get; }
    /// <summary>One measurement per authentication attempt, exported as <c>authentication_attempts</c>,
    /// <c>authentication_duration_seconds</c> and <c>portcullis_authentication_attempts_total</c>.</summary>
    public AuthenticationMetrics Authentication { get; }
    /// <summary><c>portcullis_webhook_reviews_total</c> and <c>portcullis_webhook_review_duration_seconds</c> (portcullis webhook).</summary>
    public WebhookMetrics Webhook { get; }
    /// <summary><c>apiserver_request_total</c> and <c>apiserver_request_duration_seconds</c>, with bounded label values.</summary>
    public RequestMetrics Requests { get; }
    /// <summary><c>portcullis_upstream_up</c>: 1 or 0, recorded by each upstream probe.</summary>
    public Gauge<long> UpstreamUp { get; }
    /// <summary><c>portcullis_bans_total{reason}</c>: one per ban imposed (0 shows a reason's series).</summary>
    public Counter<long> BansTotal { get; }
    /// <summary><c>portcullis_ratelimit_rejected_total{type}</c>: one per limit that refused a request (type: a fixed set,
    /// <see cref="RateLimitTypes"/>).</summary>
    public Counter<long> RateLimitRejected { get; }

    /// <summary>The values of <c>portcullis_ratelimit_rejected_total</c>'s <c>type</c> label.</summary>
    public static readonly string[] RateLimitTypes =
    [
        "eventratelimit:Server", "eventratelimit:Namespace", "eventratelimit:User", "eventratelimit:SourceAndObject",
        "ratelimit:User", "ratelimit:SourceIP", "ratelimit:Namespace", "ratelimit:Server", "long-running",
    ];

    /// <summary>API Priority and Fairness: <c>apiserver_flowcontrol_*</c>.</summary>
    public FlowcontrolMetrics Flowcontrol { get; }

    /// <summary>The audit sink's instruments (on <see cref="Meter"/>), exported under kube-apiserver's names.</summary>
    public Portcullis.Audit.AuditMetrics Audit { get; }

    public GatewayMetrics()
    {
        var factory = Prometheus.Metrics.WithCustomRegistry(Registry);
        var configReloadFailures = factory.CreateCounter("portcullis_config_reload_failures_total", "Configuration reloads rejected; the previous configuration kept serving.");
        var configReloads = factory.CreateCounter("portcullis_config_reloads_total", "Configuration reloads applied.");
        var configRestartRequired = factory.CreateGauge("portcullis_config_restart_required",
            "1 when the loaded configuration changes this field and the change takes effect only at the next restart.",
            new GaugeConfiguration { LabelNames = ["field"] });
        var refusedConnections = factory.CreateCounter("portcullis_network_refused_connections_total", "Connections closed at accept (L1), by reason.",
            new CounterConfiguration { LabelNames = ["reason"] });
        var refusedCertificates = factory.CreateCounter("portcullis_tls_refused_client_certificates_total", "TLS handshakes refused for the client certificate (L2), by reason.",
            new CounterConfiguration { LabelNames = ["reason"] });
        var lifetimeWarnings = factory.CreateCounter("portcullis_tls_client_certificate_lifetime_warnings_total",
            "TLS handshakes that let in a client certificate valid for longer than tls.clientCertificates.maxLifetime (action warn).");
        var requestsRejected = factory.CreateCounter("portcullis_requests_rejected_total", "Requests ended by a gateway layer.", new CounterConfiguration { LabelNames = ["layer", "code"] });
        var authenticationAttempts = factory.CreateCounter("authentication_attempts", "Counter of authenticated attempts.", new CounterConfiguration { LabelNames = ["result"] });
        var authenticationDuration = factory.CreateHistogram("authentication_duration_seconds", "Authentication duration in seconds broken out by result.",
            new HistogramConfiguration { LabelNames = ["result"], Buckets = Histogram.ExponentialBuckets(0.001, 2, 15) });
        var authenticatorAttempts = factory.CreateCounter("portcullis_authentication_attempts_total", "Authentication attempts by the authenticator that decided and the result.",
            new CounterConfiguration { LabelNames = ["authenticator", "result"] });
        var requestTotal = factory.CreateCounter(RequestMetrics.TotalName,
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
            new CounterConfiguration { LabelNames = ["verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component", "code"] });
        var requestDuration = factory.CreateHistogram(RequestMetrics.DurationName,
            "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
            new HistogramConfiguration
            {
                LabelNames = ["verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component"],
                Buckets = [0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60],
            });
        var upstreamUp = factory.CreateGauge("portcullis_upstream_up", "1 when the last upstream probe got an HTTP answer.");
        var bansActive = factory.CreateGauge("portcullis_bans_active", "Source addresses banned now (network.autoBan).");
        var rateLimitRejected = factory.CreateCounter("portcullis_ratelimit_rejected_total",
            "Requests refused by EventRateLimit, admission.rateLimits or admission.longRunning, by the limit's type (one per limit that refused).",
            new CounterConfiguration { LabelNames = ["type"] });
        foreach (var type in RateLimitTypes)
        {
            rateLimitRejected.WithLabels(type);
        }
        var webhookReviews = factory.CreateCounter(WebhookMetrics.TotalName, "Reviews answered by portcullis webhook, by review kind and decision.",
            new CounterConfiguration { LabelNames = ["review", "decision"] });
        var webhookDuration = factory.CreateHistogram(WebhookMetrics.InstrumentName, "Time portcullis webhook took to answer a review, by review kind.",
            new HistogramConfiguration { LabelNames = ["review"], Buckets = WebhookMetrics.Buckets });
        var bansTotal = factory.CreateCounter("portcullis_bans_total", "Bans imposed, by reason: authentication, authorization or manual.", new CounterConfiguration { LabelNames = ["reason"] });
        var auditEvents = factory.CreateCounter("apiserver_audit_event_total", "Counter of audit events generated and sent to the audit backend.");
        var auditErrors = factory.CreateCounter("apiserver_audit_error_total", "Counter of audit events that failed to be audited properly.", new CounterConfiguration { LabelNames = ["plugin"] });
        var auditLevels = factory.CreateCounter("apiserver_audit_level_total", "Counter of policy levels for audit events (1 per request).", new CounterConfiguration { LabelNames = ["level"] });
        var auditRejected = factory.CreateCounter("apiserver_audit_requests_rejected_total", "Counter of apiserver requests rejected due to an error in audit logging backend.");
        var auditDropped = factory.CreateCounter("portcullis_audit_events_dropped_total", "Audit events dropped by a batch backend whose buffer was full or that gave up.", new CounterConfiguration { LabelNames = ["plugin"] });
        string[] apf = ["flow_schema", "priority_level"];
        var apfRejected = factory.CreateCounter(FlowcontrolMetrics.Rejected, "Number of requests rejected by API Priority and Fairness subsystem",
            new CounterConfiguration { LabelNames = [.. apf, "reason"] });
        var apfDispatched = factory.CreateCounter(FlowcontrolMetrics.Dispatched, "Number of requests executed by API Priority and Fairness subsystem",
            new CounterConfiguration { LabelNames = apf });
        var apfInQueue = factory.CreateGauge(FlowcontrolMetrics.InQueue, "Number of requests currently pending in queues of the API Priority and Fairness subsystem",
            new GaugeConfiguration { LabelNames = apf });
        var apfExecuting = factory.CreateGauge(FlowcontrolMetrics.Executing, "Number of requests in initial (for a WATCH) or any (for a non-WATCH) execution stage in the API Priority and Fairness subsystem",
            new GaugeConfiguration { LabelNames = apf });
        var apfWait = factory.CreateHistogram(FlowcontrolMetrics.WaitDuration, "Length of time a request spent waiting in its queue",
            new HistogramConfiguration { LabelNames = [.. apf, "execute"], Buckets = FlowcontrolMetrics.WaitBuckets });
        var apfNominal = factory.CreateGauge(FlowcontrolMetrics.NominalLimit, "Nominal number of execution seats configured for each priority level",
            new GaugeConfiguration { LabelNames = ["priority_level"] });
        var apfLower = factory.CreateGauge(FlowcontrolMetrics.LowerLimit, "Configured lower bound on number of execution seats available to each priority level",
            new GaugeConfiguration { LabelNames = ["priority_level"] });
        var apfUpper = factory.CreateGauge(FlowcontrolMetrics.UpperLimit, "Configured upper bound on number of execution seats available to each priority level",
            new GaugeConfiguration { LabelNames = ["priority_level"] });
        var apfCurrent = factory.CreateGauge(FlowcontrolMetrics.CurrentLimit, "current derived number of execution seats available to each priority level",
            new GaugeConfiguration { LabelNames = ["priority_level"] });
        var apfConcurrency = factory.CreateGauge(FlowcontrolMetrics.ConcurrencyLimit, "Nominal number of execution seats configured for each priority level",
            new GaugeConfiguration { LabelNames = ["priority_level"] });
        var apfQueueLength = factory.CreateHistogram(FlowcontrolMetrics.QueueLength, "Length of queue in the API Priority and Fairness subsystem, as seen by each request after it is enqueued",
            new HistogramConfiguration { LabelNames = ["priority_level", "flow_schema"], Buckets = FlowcontrolMetrics.QueueLengthBuckets });
        var apfExecution = factory.CreateHistogram(FlowcontrolMetrics.ExecutionDuration, "Duration of initial stage (for a WATCH) or any (for a non-WATCH) stage of request execution in the API Priority and Fairness subsystem",
            new HistogramConfiguration { LabelNames = ["priority_level", "flow_schema", "type"], Buckets = FlowcontrolMetrics.ExecutionBuckets });
        var apfInQueueSeats = factory.CreateGauge(FlowcontrolMetrics.InQueueSeats, "Number of seats currently pending in queues of the API Priority and Fairness subsystem",
            new GaugeConfiguration { LabelNames = apf });
        var apfExecutingSeats = factory.CreateGauge(FlowcontrolMetrics.ExecutingSeats, "Concurrency (number of seats) occupied by the currently executing (initial stage for a WATCH, any stage otherwise) requests in the API Priority and Fairness subsystem",
            new GaugeConfiguration { LabelNames = apf });
        var apfDemandHigh = factory.CreateGauge(FlowcontrolMetrics.DemandHighWatermark, "High watermark, over last adjustment period, of demand_seats",
            new GaugeConfiguration { LabelNames = ["priority_level"] });
        var apfDemandAverage = factory.CreateGauge(FlowcontrolMetrics.DemandAverage, "Time-weighted average, over last adjustment period, of demand_seats",
            new GaugeConfiguration { LabelNames = ["priority_level"] });
        var apfDemandStdev = factory.CreateGauge(FlowcontrolMetrics.DemandStdev, "Time-weighted standard deviation, over last adjustment period, of demand_seats",
            new GaugeConfiguration { LabelNames = ["priority_level"] });
        var apfDemandSmoothed = factory.CreateGauge(FlowcontrolMetrics.DemandSmoothed, "Smoothed seat demands",
            new GaugeConfiguration { LabelNames = ["priority_level"] });
        // The audit series of every plugin and level are shown from the start, at 0, as before.
        foreach (var plugin in Portcullis.Audit.AuditMetrics.Plugins)
        {
            auditErrors.WithLabels(plugin);
            auditDropped.WithLabels(plugin);
        }
        foreach (var level in Enum.GetNames<Portcullis.Audit.AuditLevel>())
        {
            auditLevels.WithLabels(level);
        }

        ConfigReloadFailures = Meter.CreateCounter<long>(configReloadFailures.Name, description: configReloadFailures.Help);
        ConfigReloads = Meter.CreateCounter<long>(configReloads.Name, description: configReloads.Help);
        ConfigRestartRequired = Meter.CreateGauge<long>(configRestartRequired.Name, description: configRestartRequired.Help);
        RefusedConnections = Meter.CreateCounter<long>(refusedConnections.Name, description: refusedConnections.Help);
        RefusedCertificates = Meter.CreateCounter<long>(refusedCertificates.Name, description: refusedCertificates.Help);
        CertificateLifetimeWarnings = Meter.CreateCounter<long>(lifetimeWarnings.Name, description: lifetimeWarnings.Help);
        RequestsRejected = Meter.CreateCounter<long>(requestsRejected.Name, description: requestsRejected.Help);
        UpstreamUp = Meter.CreateGauge<long>(upstreamUp.Name, description: upstreamUp.Help);
        BansTotal = Meter.CreateCounter<long>(bansTotal.Name, description: bansTotal.Help);
        RateLimitRejected = Meter.CreateCounter<long>(rateLimitRejected.Name, description: rateLimitRejected.Help);
        Authentication = new AuthenticationMetrics(Meter);
        Requests = new RequestMetrics(Meter);
        Webhook = new WebhookMetrics(Meter);
        Audit = new Portcullis.Audit.AuditMetrics(Meter);
        Flowcontrol = new FlowcontrolMetrics(Meter);
        _bridge = new PrometheusBridge(Meter)
            .Counter(ConfigReloadFailures.Name, configReloadFailures)
            .Counter(ConfigReloads.Name, configReloads)
            .Gauge(ConfigRestartRequired.Name, configRestartRequired)
            .Counter(RefusedConnections.Name, refusedConnections)
            .Counter(RefusedCertificates.Name, refusedCertificates)
            .Counter(CertificateLifetimeWarnings.Name, lifetimeWarnings)
            .Counter(RequestsRejected.Name, requestsRejected)
            .Counter(RateLimitRejected.Name, rateLimitRejected)
            .Gauge(UpstreamUp.Name, upstreamUp)
            .Gauge(BansActiveName, bansActive)
            .Counter(BansTotal.Name, bansTotal)
            .CountOf(WebhookMetrics.InstrumentName, webhookReviews)
            .Histogram(WebhookMetrics.InstrumentName, webhookDuration)
            .CountOf(AuthenticationMetrics.InstrumentName, authenticationAttempts)
            .Histogram(AuthenticationMetrics.InstrumentName, authenticationDuration)
            .CountOf(AuthenticationMetrics.InstrumentName, authenticatorAttempts)
            .Counter(RequestMetrics.TotalName, requestTotal, RequestMetrics.MaxRequestTotalSeries + 1, ("component", RequestMetrics.Component))
            .Histogram(RequestMetrics.DurationName, requestDuration, RequestMetrics.MaxDurationSeries + 1, ("component", RequestMetrics.Component))
            .Counter(Audit.Events.Name, auditEvents)
            .Counter(Audit.Errors.Name, auditErrors)
            .Counter(Audit.Levels.Name, auditLevels)
            .Counter(Audit.RequestsRejected.Name, auditRejected)
            .Counter(Audit.Dropped.Name, auditDropped)
            .Counter(FlowcontrolMetrics.Rejected, apfRejected, FlowcontrolMetrics.MaxSeries)
            .Counter(FlowcontrolMetrics.Dispatched, apfDispatched, FlowcontrolMetrics.MaxSeries)
            .UpDown(FlowcontrolMetrics.InQueue, apfInQueue, FlowcontrolMetrics.MaxSeries)
            .UpDown(FlowcontrolMetrics.Executing, apfExecuting, FlowcontrolMetrics.MaxSeries)
            .Histogram(FlowcontrolMetrics.WaitDuration, apfWait, FlowcontrolMetrics.MaxSeries)
            .Gauge(FlowcontrolMetrics.NominalLimit, apfNominal, FlowcontrolMetrics.MaxSeries)
            .Gauge(FlowcontrolMetrics.LowerLimit, apfLower, FlowcontrolMetrics.MaxSeries)
            .Gauge(FlowcontrolMetrics.UpperLimit, apfUpper, FlowcontrolMetrics.MaxSeries)
            .Gauge(FlowcontrolMetrics.CurrentLimit, apfCurrent, FlowcontrolMetrics.MaxSeries)
            .Gauge(FlowcontrolMetrics.ConcurrencyLimit, apfConcurrency, FlowcontrolMetrics.MaxSeries)
            .Histogram(FlowcontrolMetrics.QueueLength, apfQueueLength, FlowcontrolMetrics.MaxSeries)
            .Histogram(FlowcontrolMetrics.ExecutionDuration, apfExecution, FlowcontrolMetrics.MaxSeries)
            .UpDown(FlowcontrolMetrics.InQueueSeats, apfInQueueSeats, FlowcontrolMetrics.MaxSeries)
            .UpDown(FlowcontrolMetrics.ExecutingSeats, apfExecutingSeats, FlowcontrolMetrics.MaxSeries)
            .Gauge(FlowcontrolMetrics.DemandHighWatermark, apfDemandHigh, FlowcontrolMetrics.MaxSeries)
            .Gauge(FlowcontrolMetrics.DemandAverage, apfDemandAverage, FlowcontrolMetrics.MaxSeries)
            .Gauge(FlowcontrolMetrics.DemandStdev, apfDemandStdev, FlowcontrolMetrics.MaxSeries)
            .Gauge(FlowcontrolMetrics.DemandSmoothed, apfDemandSmoothed, FlowcontrolMetrics.MaxSeries);
        // The APF stage passes its configured objects' name instances: found by reference, not hashed, per request.
        foreach (var perRequest in FlowcontrolMetrics.PerRequest)
        {
            _bridge.ByReference(perRequest);
        }
        _bridge.Start();
        foreach (var reason in RefusalReasons.Connection)
        {
            RefusedConnections.Add(0, new KeyValuePair<string, object?>("reason", reason));
        }
        foreach (var reason in RefusalReasons.Certificate)
        {
            RefusedCertificates.Add(0, new KeyValuePair<string, object?>("reason", reason));
        }
        // Observable instruments (the active bans) are read when /metrics is collected.
        Registry.AddBeforeCollectCallback(_bridge.Observe);
    }

    /// <summary>Counts a connection closed at accept; <paramref name="reason"/> is one of <see cref="RefusalReasons"/>.</summary>
    public void RefuseConnection(string reason) => RefusedConnections.Add(1, new KeyValuePair<string, object?>("reason", reason));

    /// <summary>Counts a handshake refused for its client certificate; <paramref name="reason"/> is one of <see cref="RefusalReasons"/>.</summary>
    public void RefuseCertificate(string reason) => RefusedCertificates.Add(1, new KeyValuePair<string, object?>("reason", reason));

    /// <summary>The name of the observable gauge <see cref="ObserveActiveBans"/> creates.</summary>
    public const string BansActiveName = "portcullis_bans_active";

    /// <summary>
    /// Creates <c>portcullis_bans_active</c>, an <see cref="ObservableGauge{T}"/> on <see cref="Meter"/> that reads
    /// <paramref name="count"/> whenever it is observed (at each scrape); called once, by the auto-ban stage when it is on.
    /// </summary>
    public ObservableGauge<int> ObserveActiveBans(Func<int> count) =>
        Meter.CreateObservableGauge(BansActiveName, count, description: "Source addresses banned now (network.autoBan).");

    public void Dispose()
    {
        _bridge.Dispose();
        Meter.Dispose();
    }
}
