using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Portcullis.Gateway.Diagnostics;

namespace Portcullis.Gateway.Tests;

/// <summary>The L1/L2 refusal lines are sampled: a burst writes a bounded number of lines and one summary (issue 16, item 7).</summary>
public sealed class RefusalLogSamplerTests
{
    [Fact]
    public void A_burst_writes_at_most_the_limit_per_reason_then_one_summary_when_the_interval_ends()
    {
        var time = new FakeTimeProvider();
        var log = new RecordingLogger();
        using var sampler = new RefusalLogSampler(log, time);

        var written = Enumerable.Range(0, 10_000).Count(_ => sampler.ShouldLog(RefusalReasons.Banned));
        var other = Enumerable.Range(0, 3).Count(_ => sampler.ShouldLog(RefusalReasons.NetworkPolicy));

        Assert.Equal(RefusalLogSampler.LinesPerInterval, written);
        Assert.Equal(3, other); // each reason has its own budget
        Assert.Empty(log.Lines); // no summary before the interval ends

        time.Advance(sampler.Interval);

        var summary = Assert.Single(log.Lines);
        Assert.Equal(LogLevel.Warning, summary.Level);
        Assert.Contains($"Suppressed {10_000 - RefusalLogSampler.LinesPerInterval} more banned refusal line(s)", summary.Message, StringComparison.Ordinal);

        // A new interval has a new budget, and a quiet one writes nothing.
        Assert.True(sampler.ShouldLog(RefusalReasons.Banned));
        time.Advance(sampler.Interval * 3);
        Assert.Single(log.Lines);
    }

    [Fact]
    public void A_steady_trickle_under_the_limit_is_never_suppressed()
    {
        var time = new FakeTimeProvider();
        var log = new RecordingLogger();
        using var sampler = new RefusalLogSampler(log, time);

        for (var i = 0; i < 100; i++)
        {
            Assert.True(sampler.ShouldLog(RefusalReasons.Untrusted));
            time.Advance(TimeSpan.FromSeconds(2)); // 5 an interval, under the limit of 10
        }
        Assert.Empty(log.Lines);
    }

    [Fact]
    public void Disposing_writes_the_pending_summary()
    {
        var time = new FakeTimeProvider();
        var log = new RecordingLogger();
        var sampler = new RefusalLogSampler(log, time, linesPerInterval: 2);
        for (var i = 0; i < 5; i++)
        {
            sampler.ShouldLog(RefusalReasons.SourceConnectionLimit);
        }

        sampler.Dispose();

        Assert.Contains("Suppressed 3 more source_connection_limit", Assert.Single(log.Lines).Message, StringComparison.Ordinal);
        Assert.False(sampler.ShouldLog(RefusalReasons.SourceConnectionLimit));
    }

    private sealed class RecordingLogger : ILogger
    {
        private readonly List<(LogLevel Level, string Message)> _lines = [];

        public IReadOnlyList<(LogLevel Level, string Message)> Lines
        {
            get
            {
                lock (_lines)
                {
                    return [.. _lines];
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_lines)
            {
                _lines.Add((logLevel, formatter(state, exception)));
            }
        }
    }
}
