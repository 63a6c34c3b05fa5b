using Microsoft.Extensions.Logging;

namespace Portcullis.Gateway.Diagnostics;

/// <summary>
/// Keeps the L1/L2 refusal log lines (a refused connection, a banned source, a refused client certificate, a connection
/// over a limit) from flooding the log under a burst: at most <see cref="LinesPerInterval"/> lines per reason in each
/// <see cref="Interval"/>; the lines over that are counted, and when the interval ends one summary line says how many
/// were suppressed (<see cref="Log.RefusalLinesSuppressed"/>). The counters (<c>portcullis_network_refused_connections_total</c>,
/// <c>portcullis_tls_refused_client_certificates_total</c>) still count every refusal. Reasons are the bounded
/// <see cref="RefusalReasons"/>, so the state is one small entry per reason. Time is the host's <see cref="TimeProvider"/>.
/// </summary>
internal sealed class RefusalLogSampler(ILogger logger, TimeProvider time, int linesPerInterval = RefusalLogSampler.LinesPerInterval, TimeSpan? interval = null) : IDisposable
{
    /// <summary>Lines one reason may write in one interval.</summary>
    public const int LinesPerInterval = 10;

    /// <summary>The sampling interval.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(10);

    /// <summary>This sampler's interval.</summary>
    public TimeSpan Interval { get; } = interval ?? DefaultInterval;

    private readonly Lock _gate = new();
    private readonly Dictionary<string, Window> _windows = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <summary>True when the line for this refusal may be written; false when it is counted for the summary instead.</summary>
    public bool ShouldLog(string reason)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return false;
            }
            var now = time.GetTimestamp();
            if (!_windows.TryGetValue(reason, out var window))
            {
                window = new Window();
                _windows.Add(reason, window);
            }
            if (!window.Open || time.GetElapsedTime(window.Start, now) >= Interval)
            {
                if (window.Suppressed > 0)
                {
                    Flush(reason, window); // the timer has not run yet: the summary comes before the new interval's lines
                }
                window.Open = true;
                window.Start = now;
                window.Logged = 0;
            }
            if (window.Logged < linesPerInterval)
            {
                window.Logged++;
                return true;
            }
            if (window.Suppressed++ == 0)
            {
                var due = Interval - time.GetElapsedTime(window.Start, now);
                window.Timer?.Dispose();
                window.Timer = time.CreateTimer(_ => OnIntervalEnd(reason), null, due > TimeSpan.Zero ? due : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
            }
            return false;
        }
    }

    private void OnIntervalEnd(string reason)
    {
        lock (_gate)
        {
            if (!_disposed && _windows.TryGetValue(reason, out var window) && window.Suppressed > 0)
            {
                Flush(reason, window);
                window.Open = false; // the next refusal opens a new interval
            }
        }
    }

    private void Flush(string reason, Window window)
    {
        Log.RefusalLinesSuppressed(logger, window.Suppressed, reason, Interval.TotalSeconds, linesPerInterval);
        window.Suppressed = 0;
        window.Timer?.Dispose();
        window.Timer = null;
    }

    /// <summary>Writes the summaries still pending and stops the timers.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            foreach (var (reason, window) in _windows)
            {
                if (window.Suppressed > 0)
                {
                    Flush(reason, window);
                }
            }
            _disposed = true;
        }
    }

    private sealed class Window
    {
        public bool Open;
        public long Start;
        public int Logged;
        public int Suppressed;
        public ITimer? Timer;
    }
}
