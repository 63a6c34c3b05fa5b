using Microsoft.Extensions.Logging;
using Portcullis.Configuration;
using Portcullis.Gateway.Metrics;

namespace Portcullis.Gateway.Hosting;

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

    private SnapshotHolder(string configPath, GatewaySnapshot initial, GatewayMetrics metrics, ILogger logger, TimeProvider time)
    {
        _configPath = configPath;
        _current = initial;
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
            Swapped?.Invoke(snapshot);
            return [];
        }
    }
}
