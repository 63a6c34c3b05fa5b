using Microsoft.Extensions.Logging;
using Portcullis.Configuration;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Metrics;

namespace Portcullis.Gateway.Snapshots;

/// <summary>
/// Holds the current <see cref="GatewaySnapshot"/>. A reload loads the configuration through
/// <see cref="GatewayConfigurationPipeline.Load"/> (the whole file and every file it names, as at start and as
/// <c>portcullis validate</c>) and swaps the new snapshot in one write; a failure keeps the last good snapshot, logs
/// every error and counts it.
/// </summary>
internal sealed class SnapshotHolder
{
    private readonly string _configPath;
    private readonly GatewayMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _reloadLock = new();
    private GatewaySnapshot _current;
    private readonly GatewayConfiguration _started;

    private SnapshotHolder(string configPath, GatewaySnapshot initial, GatewayMetrics metrics, ILogger logger, TimeProvider time)
    {
        _configPath = configPath;
        _current = initial;
        _started = initial.Config;
        _metrics = metrics;
        _logger = logger;
        _time = time;
    }

    public GatewaySnapshot Current => Volatile.Read(ref _current);

    /// <summary>Raised after a successful swap.</summary>
    public event Action<GatewaySnapshot>? Swapped;

    /// <summary>Holds the first snapshot, taken from a valid <paramref name="load"/>.</summary>
    public static SnapshotHolder Create(GatewayConfigurationLoad load, GatewayMetrics metrics, ILogger logger, TimeProvider time) =>
        new(load.Path, load.TakeSnapshot(), metrics, logger, time);

    /// <summary>
    /// The fields a reload validates but cannot apply to a running process: the listeners and admin address (bound at
    /// start), the console log format, and the audit backends (opened at start). A change is logged as a warning on every
    /// reload that carries it and shown as <c>portcullis_config_restart_required{field}</c> = 1 until a restart, or until
    /// the file says the started value again.
    /// </summary>
    internal static readonly IReadOnlyList<(string Field, Func<GatewayConfiguration, string> Value)> RestartFields =
    [
        ("listeners", c => string.Join(",", c.Listeners.Select(l => l.Address))),
        ("admin.address", c => c.Admin.Address),
        ("admin.logFormat", c => c.Admin.LogFormat),
        ("audit.log", c => string.Join("|", c.Audit.Log.Path.Length == 0 ? "" : c.Resolve(c.Audit.Log.Path), c.Audit.Log.Mode, c.Audit.Log.MaxAge, c.Audit.Log.MaxBackup, c.Audit.Log.MaxSize)),
        ("audit.webhook", c => string.Join("|", c.Audit.Webhook.ConfigFile.Length == 0 ? "" : c.Resolve(c.Audit.Webhook.ConfigFile), c.Audit.Webhook.Mode)),
    ];

    private void ReportRestartRequired(GatewayConfiguration loaded)
    {
        foreach (var (field, value) in RestartFields)
        {
            var changed = !string.Equals(value(_started), value(loaded), StringComparison.Ordinal);
            _metrics.ConfigRestartRequired.WithLabels(field).Set(changed ? 1 : 0);
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
            using var load = GatewayConfigurationPipeline.Load(_configPath, _time);
            var errors = load.Errors;
            if (!load.IsValid)
            {
                _metrics.ConfigReloadFailures.Inc();
                foreach (var error in errors)
                {
                    Log.ReloadFailed(_logger, error.ToString());
                }
                return errors;
            }
            var snapshot = load.TakeSnapshot();
            var previous = Volatile.Read(ref _current);
            Volatile.Write(ref _current, snapshot);
            previous.Retire(TimeSpan.FromMinutes(2)); // in-flight requests keep the old snapshot until they end
            _metrics.ConfigReloads.Inc();
            Log.Reloaded(_logger, _configPath);
            ReportRestartRequired(snapshot.Config);
            Swapped?.Invoke(snapshot);
            return [];
        }
    }
}
