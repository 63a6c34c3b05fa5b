namespace Portcullis.Gateway.Diagnostics;

/// <summary>
/// Keeps a line that a client can trigger at will (one per handshake) from flooding the log: at most
/// <c>perInterval</c> lines in each interval, and the first line written after some were held back says how many.
/// The metric that goes with the line still counts every occurrence.
/// </summary>
internal sealed class LogSampler(TimeProvider time, int perInterval = 10, TimeSpan? interval = null)
{
    private readonly TimeSpan _interval = interval ?? TimeSpan.FromMinutes(1);
    private readonly Lock _gate = new();
    private DateTimeOffset _windowStart = DateTimeOffset.MinValue;
    private int _written;
    private long _suppressed;

    /// <summary>True when this occurrence may be logged; <paramref name="suppressed"/> is how many were held back before it.</summary>
    public bool TryLog(out long suppressed)
    {
        var now = time.GetUtcNow();
        lock (_gate)
        {
            if (now - _windowStart >= _interval)
            {
                _windowStart = now;
                _written = 0;
            }
            if (_written < perInterval)
            {
                _written++;
                suppressed = _suppressed;
                _suppressed = 0;
                return true;
            }
            _suppressed++;
            suppressed = 0;
            return false;
        }
    }

    /// <summary>The text appended to a sampled line: empty, or " (N similar line(s) not logged)".</summary>
    public static string Note(long suppressed) => suppressed == 0 ? "" : $" ({suppressed} similar line(s) not logged)";
}
