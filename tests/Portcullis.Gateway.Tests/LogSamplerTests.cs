using Portcullis.Gateway.Diagnostics;

namespace Portcullis.Gateway.Tests;

/// <summary>The sampler that keeps per-handshake lines (certificate lifetime) from flooding the log.</summary>
public sealed class LogSamplerTests
{
    private sealed class Clock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);
        public override DateTimeOffset GetUtcNow() => Now;
    }

    [Fact]
    public void At_most_the_allowed_lines_per_interval_and_the_next_line_says_how_many_were_held_back()
    {
        var clock = new Clock();
        var sampler = new LogSampler(clock, perInterval: 3, interval: TimeSpan.FromMinutes(1));

        var written = Enumerable.Range(0, 1000).Count(i => sampler.TryLog(out _));
        Assert.Equal(3, written);

        clock.Now += TimeSpan.FromSeconds(59);
        Assert.False(sampler.TryLog(out _));

        clock.Now += TimeSpan.FromSeconds(1);
        Assert.True(sampler.TryLog(out var suppressed));
        Assert.Equal(998, suppressed);
        Assert.Equal(" (998 similar line(s) not logged)", LogSampler.Note(suppressed));
        Assert.True(sampler.TryLog(out var none));
        Assert.Equal(0, none);
        Assert.Equal("", LogSampler.Note(none));
    }
}
