using Microsoft.Extensions.Logging;
using Portcullis.Configuration;
using Portcullis.Gateway.Metrics;

namespace Portcullis.Gateway.Hosting;

/// <summary>
/// Holds the current <see cref="GatewaySnapshot"/>. A reload validates the whole configuration and every file it names,
/// builds a new snapshot, and swaps it in one write; a failure keeps the last good snapshot, logs every error and counts it.
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

    /// <summary>Loads the first snapshot; throws <see cref="ConfigurationException"/> with every error.</summary>
    public static SnapshotHolder Create(string configPath, GatewayMetrics metrics, ILogger logger, TimeProvider time)
    {
        var snapshot = TryBuild(configPath, time, out var errors);
        return snapshot is null ? throw new ConfigurationException(errors) : new SnapshotHolder(configPath, snapshot, metrics, logger, time);
    }

    /// <summary>Reloads; returns the errors (empty on success).</summary>
    public IReadOnlyList<ConfigError> Reload()
    {
        lock (_reloadLock)
        {
            var snapshot = TryBuild(_configPath, _time, out var errors);
            if (snapshot is null)
            {
                _metrics.ConfigReloadFailures.Inc();
                foreach (var error in errors)
                {
                    Log.ReloadFailed(_logger, error.ToString());
                }
                return errors;
            }
            var previous = Volatile.Read(ref _current);
            Volatile.Write(ref _current, snapshot);
            previous.Retire(TimeSpan.FromMinutes(2)); // in-flight requests keep the old snapshot until they end
            _metrics.ConfigReloads.Inc();
            Log.Reloaded(_logger, _configPath);
            Swapped?.Invoke(snapshot);
            return [];
        }
    }

    private static GatewaySnapshot? TryBuild(string path, TimeProvider time, out List<ConfigError> errors)
    {
        var (config, loadErrors) = ConfigurationLoader.TryLoad(path);
        errors = [.. loadErrors];
        return config is null ? null : GatewaySnapshot.Build(config, errors, time);
    }
}
