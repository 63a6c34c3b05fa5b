using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Portcullis.Benchmarks;

/// <summary>
/// The server's own view of the measured reviews: <c>portcullis_webhook_review_duration_seconds</c> (from the request
/// entering Portcullis' pipeline to the answer written) read from the admin <c>/metrics</c> right before and right after
/// the measured run, so the difference covers exactly its reviews (no warm-up, no other client).
/// </summary>
internal sealed partial class ServerHistogram(Uri admin, string review)
{
    public async Task<Dictionary<double, double>> ReadAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var text = await http.GetStringAsync(new Uri(admin, "/metrics"));
        var buckets = new Dictionary<double, double>();
        foreach (Match m in Bucket().Matches(text))
        {
            if (m.Groups["review"].Value != review)
            {
                continue;
            }
            var bound = m.Groups["le"].Value == "+Inf" ? double.PositiveInfinity : double.Parse(m.Groups["le"].Value, CultureInfo.InvariantCulture);
            buckets[bound] = double.Parse(m.Groups["count"].Value, CultureInfo.InvariantCulture);
        }
        return buckets;
    }

    /// <summary>How many reviews were answered within 1 ms, and the bucket bounds under which half and 99 % were.</summary>
    public static string Describe(Dictionary<double, double> before, Dictionary<double, double> after)
    {
        double Count(double bound) => after.GetValueOrDefault(bound) - before.GetValueOrDefault(bound);
        var total = Count(double.PositiveInfinity);
        if (total <= 0)
        {
            return "no reviews recorded (is --metrics the webhook's admin address?)";
        }
        var bounds = after.Keys.Order().ToList();
        string Under(double q) => bounds.First(b => Count(b) >= q * total) is var b && double.IsPositiveInfinity(b) ? "+Inf" : (b * 1000).ToString("0.###", CultureInfo.InvariantCulture) + " ms";
        return string.Create(CultureInfo.InvariantCulture,
            $"{total:0} reviews, {Count(0.001) / total:P2} answered within 1 ms; p50 <= {Under(0.5)}, p99 <= {Under(0.99)} (histogram bucket bounds)");
    }

    [GeneratedRegex("""^portcullis_webhook_review_duration_seconds_bucket\{review="(?<review>[^"]+)",le="(?<le>[^"]+)"\} (?<count>\S+)$""", RegexOptions.Multiline)]
    private static partial Regex Bucket();
}

/// <summary>
/// How late this machine wakes a sleeping thread while the load runs: a thread of the load tool sleeps 1 ms at a time
/// (<c>clock_nanosleep</c>) and records by how much each sleep overshot. Every review's round trip needs several such
/// wake-ups (the sender, the server's socket and request threads, the client's reader), so this is the floor under the
/// round-trip tail that no server can go below.
/// </summary>
internal sealed class WakeUpJitter : IDisposable
{
    private readonly List<double> _overshootMs = new(20_000);
    private readonly Thread _thread;
    private volatile bool _stop;

    public WakeUpJitter()
    {
        _thread = new Thread(() =>
        {
            var millisecond = Stopwatch.Frequency / 1000;
            while (!_stop)
            {
                var due = Stopwatch.GetTimestamp() + millisecond;
                WebhookLoad.SleepUntil(due);
                _overshootMs.Add(Stopwatch.GetElapsedTime(due).TotalMilliseconds);
            }
        })
        { IsBackground = true, Name = "webhook-load wake-up jitter" };
        _thread.Start();
    }

    public string Stop()
    {
        _stop = true;
        _thread.Join();
        _overshootMs.Sort();
        var n = _overshootMs.Count;
        if (n == 0)
        {
            return "no wake-up samples";
        }
        double P(double q) => _overshootMs[Math.Min(n - 1, (int)Math.Ceiling(q * n) - 1)];
        return string.Create(CultureInfo.InvariantCulture,
            $"a 1 ms sleep in the load tool woke late by p50 {P(0.5):F3} p99 {P(0.99):F3} p99.9 {P(0.999):F3} max {_overshootMs[^1]:F3} ms ({n} samples)");
    }

    public void Dispose()
    {
        if (!_stop)
        {
            Stop();
        }
    }
}
