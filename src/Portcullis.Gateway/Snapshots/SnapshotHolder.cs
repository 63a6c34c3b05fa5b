using Microsoft.Extensions.Logging;
using Portcullis.Audit;
using Portcullis.Configuration;
using Portcullis.Gateway.Diagnostics;

namespace Portcullis.Gateway.Snapshots;

/// <summary>
/// Holds the current <see cref="GatewaySnapshot"/>. A reload loads the configuration through
/// <see cref="GatewayConfigurationPipeline.Load"/> (the whole file and every file it names, as at start and as
/// <c>portcullis validate</c>) and swaps the new snapshot in one write; a failure keeps the last good snapshot, logs
/// every error and counts it. The holder also gives each serving snapshot its audit sink and retires the previous
/// snapshot: its requests in flight finish on it, and its audit events are written before its sink is closed.
/// </summary>
internal sealed class SnapshotHolder
{
    private readonly string _configPath;
    private readonly GatewayMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _reloadLock = new();
    private readonly Func<AuditSinkPlan, AuditSink> _openAudit;
    private readonly List<Task> _retired = [];
    private GatewaySnapshot _current;
    private readonly GatewayConfiguration _started;

    private readonly ILoggerFactory? _loggers;
    private readonly ConfigurationMode _mode;

    private SnapshotHolder(string configPath, GatewaySnapshot initial, GatewayMetrics metrics, ILogger logger, TimeProvider time,
        Func<AuditSinkPlan, AuditSink> openAudit, ILoggerFactory? loggers, ConfigurationMode mode)
    {
        _mode = mode;
        _loggers = loggers;
        _configPath = configPath;
        _openAudit = openAudit;
        initial.Serve(openAudit(initial.Audit));
        _current = initial;
        _started = initial.Config;
        _metrics = metrics;
        _logger = logger;
        _time = time;
    }

    public GatewaySnapshot Current => Volatile.Read(ref _current);

    /// <summary>serve or webhook: every reload loads the file as the start did.</summary>
    public ConfigurationMode Mode => _mode;

    /// <summary>
    /// The snapshot a new request runs on, entered: the request must <see cref="GatewaySnapshot.Exit"/> it when its audit
    /// record is complete, so that a retired snapshot closes its audit sink only after its last event.
    /// </summary>
    public GatewaySnapshot Enter()
    {
        while (true)
        {
            var snapshot = Current;
            if (snapshot.TryEnter())
            {
                return snapshot;
            }
        }
    }

    /// <summary>
    /// At shutdown, once no request is in flight: retires the current snapshot and waits until every retired snapshot has
    /// written its audit events and closed its sink (or <paramref name="cancellationToken"/> fires).
    /// </summary>
    public Task RetireAllAsync(CancellationToken cancellationToken)
    {
        Task[] pending;
        lock (_reloadLock)
        {
            var current = Current;
            if (!_retired.Contains(current.Drained))
            {
                _retired.Add(current.Drained);
                current.Exit();
            }
            pending = [.. _retired];
        }
        return Task.WhenAll(pending).WaitAsync(cancellationToken);
    }

    /// <summary>Whether a reload can keep the running sink: same log and webhook settings, same webhook receiver and credentials.</summary>
    internal static bool SameAuditBackends(AuditSinkPlan a, AuditSinkPlan b) =>
        Equals(a.Log, b.Log) && Equals(a.Webhook, b.Webhook) && SameEndpoint(a.WebhookEndpoint, b.WebhookEndpoint);

    private static bool SameEndpoint(Portcullis.Kubeconfig.KubeconfigEndpoint? a, Portcullis.Kubeconfig.KubeconfigEndpoint? b) =>
        a is null || b is null
            ? a is null && b is null
            : a.Server == b.Server && a.Token == b.Token && a.InsecureSkipTlsVerify == b.InsecureSkipTlsVerify && a.TlsServerName == b.TlsServerName
              && a.ClientCertificate?.Thumbprint == b.ClientCertificate?.Thumbprint
              && Thumbprints(a.CertificateAuthorities).SequenceEqual(Thumbprints(b.CertificateAuthorities), StringComparer.Ordinal);

    private static IEnumerable<string> Thumbprints(System.Security.Cryptography.X509Certificates.X509Certificate2Collection? certificates) =>
        certificates is null ? [] : certificates.Select(c => c.Thumbprint);

    /// <summary>Raised after a successful swap.</summary>
    public event Action<GatewaySnapshot>? Swapped;

    /// <summary>
    /// Holds the first snapshot, taken from a valid <paramref name="load"/>; <paramref name="openAudit"/> builds the audit
    /// sink of a snapshot whose backends differ from the previous one's.
    /// </summary>
    public static SnapshotHolder Create(GatewayConfigurationLoad load, GatewayMetrics metrics, ILogger logger, TimeProvider time,
        Func<AuditSinkPlan, AuditSink> openAudit, ILoggerFactory? loggers = null) =>
        new(load.Path, load.TakeSnapshot(), metrics, logger, time, openAudit, loggers, load.Mode);

    /// <summary>
    /// The fields a reload validates but cannot apply to a running process: the listeners and admin address (bound at
    /// start), the console log format, <c>network.autoBan</c> (one banner per host, built at start) and the connection settings
    /// Kestrel reads once (<c>tls.handshakeTimeout</c>, <c>limits.requestHeadersTimeout</c>,
    /// <c>limits.minRequestBodyDataRate</c>, <c>limits.http2.*</c>). The audit backends are not among them: they live in the snapshot. A change is
    /// logged as a warning on every
    /// reload that carries it and shown as <c>portcullis_config_restart_required{field}</c> = 1 until a restart, or until
    /// the file says the started value again.
    /// </summary>
    internal static readonly IReadOnlyList<(string Field, Func<GatewayConfiguration, string> Value)> RestartFields =
    [
        ("listeners", c => string.Join(",", c.Listeners.Select(l => l.Address))),
        ("admin.address", c => c.Admin.Address),
        ("admin.logFormat", c => c.Admin.LogFormat),
        // The host's one banner is built at start (its bans live across reloads): any change of its settings waits for a restart.
        ("network.autoBan", AutoBanSettings),
        // Kestrel reads these once, when the listeners are built.
        ("tls.handshakeTimeout", c => c.Tls?.HandshakeTimeout.Ticks.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? ""),
        ("limits.requestHeadersTimeout", c => c.Limits.RequestHeadersTimeout.Ticks.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        ("limits.minRequestBodyDataRate", c => string.Join(";", c.Limits.MinRequestBodyDataRate.BytesPerSecond, c.Limits.MinRequestBodyDataRate.GracePeriod.Ticks)),
        ("limits.http2.maxConcurrentStreams", c => c.Limits.Http2.MaxConcurrentStreams.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        ("limits.http2.maxStreamRefusalsPerSecond", c => c.Limits.Http2.MaxStreamRefusalsPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture)),
    ];

    private static string AutoBanSettings(GatewayConfiguration c)
    {
        var b = c.Network.AutoBan;
        return string.Join(";", b.Enabled, b.Failures, b.Window.Ticks, b.Duration.Ticks, b.MaxDuration.Ticks,
            b.StateFile.Length == 0 ? "" : c.Resolve(b.StateFile), b.CountForbidden, string.Join(",", b.NeverBan));
    }

    private void ReportRestartRequired(GatewayConfiguration loaded)
    {
        foreach (var (field, value) in RestartFields)
        {
            var changed = !string.Equals(value(_started), value(loaded), StringComparison.Ordinal);
            _metrics.ConfigRestartRequired.Record(changed ? 1 : 0, new KeyValuePair<string, object?>("field", field));
            if (changed)
            {
                Log.RestartRequired(_logger, _configPath, field);
            }
        }
    }

    /// <summary>Reloads; returns the errors (empty on success).</summary>
    public IReadOnlyList<ConfigError> Reload()
    {
        lock (_reloadLock)
        {
            using var load = GatewayConfigurationPipeline.Load(_configPath, _time, _loggers, _mode);
            var errors = load.Errors;
            if (!load.IsValid)
            {
                _metrics.ConfigReloadFailures.Add(1);
                foreach (var error in errors)
                {
                    Log.ReloadFailed(_logger, error.ToString());
                }
                return errors;
            }
            var snapshot = load.TakeSnapshot();
            var previous = Volatile.Read(ref _current);
            if (SameAuditBackends(previous.Audit, snapshot.Audit))
            {
                var sink = previous.HandAuditOn();
                sink.UpdatePolicy(snapshot.AuditPolicy);
                snapshot.Serve(sink);
            }
            else
            {
                // New backends for the requests that start from now on; the previous ones write what was begun on them.
                snapshot.Serve(_openAudit(snapshot.Audit));
            }
            Volatile.Write(ref _current, snapshot);
            previous.Retire(TimeSpan.FromMinutes(2), _time); // in-flight requests keep the old snapshot until they end
            _retired.Add(previous.Drained);
            _retired.RemoveAll(t => t.IsCompleted);
            previous.Exit();
            _metrics.ConfigReloads.Add(1);
            Log.Reloaded(_logger, _configPath);
            ReportRestartRequired(snapshot.Config);
            Swapped?.Invoke(snapshot);
            return [];
        }
    }
}
