namespace Portcullis.Gateway.Tests.Infrastructure;

/// <summary>
/// A host clock whose timestamps stand still until the test moves them (token buckets do not refill while a slow
/// machine runs the test); timers and the wall clock stay the system's, so reloads, drains and certificates work as usual.
/// </summary>
public sealed class SteppedClock : TimeProvider
{
    private long _ticks = 1;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Read(ref _ticks);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}
