using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Time.Testing;
using static Portcullis.Audit.Tests.TestSupport;

namespace Portcullis.Audit.Tests;

public sealed class BatchingTests
{
    private sealed class RecordingBackend(AuditBatchOptions batch, TimeProvider time)
        : AuditBackendBase("webhook", AuditMode.Batch, batch, new AuditMetrics(), null, time)
    {
        public ConcurrentQueue<int> Batches { get; } = new();

        public SemaphoreSlim Written { get; } = new(0);

        protected override ValueTask WriteBatchAsync(IReadOnlyList<AuditEvent> events, CancellationToken cancellationToken)
        {
            Batches.Enqueue(events.Count);
            Written.Release();
            return default;
        }
    }

    private static AuditEvent Event(int i) => new()
    {
        Level = AuditLevel.Metadata,
        AuditId = i.ToString(CultureInfo.InvariantCulture),
        Stage = AuditStage.ResponseComplete,
        RequestUri = "/api",
        Verb = "get",
        RequestReceivedTimestamp = DateTime.UnixEpoch,
        StageTimestamp = DateTime.UnixEpoch,
    };

    /// <summary>
    /// Moves the fake clock in <paramref name="step"/>s until the backend writes a batch, letting the writer loop run
    /// between steps (polled with a deadline, no sleep); returns how much fake time it took. The loop may arm its timer
    /// before or after a step: either way no batch can go out before its interval has passed on the fake clock.
    /// </summary>
    private static async Task<TimeSpan> AdvanceUntilWrittenAsync(FakeTimeProvider time, RecordingBackend backend, TimeSpan step)
    {
        var start = time.GetUtcNow();
        var deadline = TimeProvider.System.GetTimestamp();
        while (!await backend.Written.WaitAsync(TimeSpan.FromMilliseconds(20)))
        {
            Assert.True(TimeProvider.System.GetElapsedTime(deadline) < TestSupport.Timeout, "no batch was written in time");
            time.Advance(step);
        }
        return time.GetUtcNow() - start;
    }

    [Fact]
    public async Task The_throttle_lets_a_burst_through_then_one_batch_per_interval()
    {
        var time = new FakeTimeProvider();
        await using var backend = new RecordingBackend(new AuditBatchOptions
        {
            MaxBatchSize = 1,
            MaxBatchWait = TimeSpan.Zero,
            ThrottleEnabled = true,
            ThrottleQps = 10,
            ThrottleBurst = 2,
        }, time);

        await backend.ProcessAsync([Event(1), Event(2), Event(3), Event(4)]).WithTimeout();
        Assert.True(await backend.Written.WaitAsync(TestSupport.Timeout));
        Assert.True(await backend.Written.WaitAsync(TestSupport.Timeout));
        Assert.Equal(2, backend.Batches.Count); // the burst, with no time passing

        var third = await AdvanceUntilWrittenAsync(time, backend, TimeSpan.FromMilliseconds(10));
        Assert.Equal(3, backend.Batches.Count);
        Assert.True(third >= TimeSpan.FromMilliseconds(100), $"third batch after {third.TotalMilliseconds} ms");
        var fourth = await AdvanceUntilWrittenAsync(time, backend, TimeSpan.FromMilliseconds(10));
        Assert.Equal(4, backend.Batches.Count);
        Assert.True(fourth >= TimeSpan.FromMilliseconds(100), $"fourth batch after {fourth.TotalMilliseconds} ms");
    }

    [Fact]
    public async Task A_partial_batch_waits_MaxBatchWait_then_goes_out_whole()
    {
        var time = new FakeTimeProvider();
        await using var backend = new RecordingBackend(new AuditBatchOptions
        {
            MaxBatchSize = 400,
            MaxBatchWait = TimeSpan.FromSeconds(30),
        }, time);

        await backend.ProcessAsync([Event(1), Event(2), Event(3)]).WithTimeout();
        await backend.ProcessAsync([Event(4)]).WithTimeout();
        var waited = await AdvanceUntilWrittenAsync(time, backend, TimeSpan.FromSeconds(1));

        Assert.True(waited >= TimeSpan.FromSeconds(30), $"partial batch after {waited.TotalSeconds} s");
        Assert.Equal([4], backend.Batches);
    }

    [Fact]
    public async Task A_full_batch_goes_out_without_waiting()
    {
        var time = new FakeTimeProvider();
        await using var backend = new RecordingBackend(new AuditBatchOptions
        {
            MaxBatchSize = 3,
            MaxBatchWait = TimeSpan.FromSeconds(30),
        }, time);

        await backend.ProcessAsync([Event(1), Event(2), Event(3), Event(4), Event(5), Event(6)]).WithTimeout();
        Assert.True(await backend.Written.WaitAsync(TestSupport.Timeout));
        Assert.True(await backend.Written.WaitAsync(TestSupport.Timeout));

        Assert.Equal([3, 3], backend.Batches);
    }
}
