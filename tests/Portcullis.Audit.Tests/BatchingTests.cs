using System.Collections.Concurrent;
using System.Globalization;
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

    [Fact]
    public async Task The_throttle_lets_a_burst_through_then_one_batch_per_interval()
    {
        var time = new ManualTimeProvider();
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
        Assert.True(await time.TimerArmed.WaitAsync(TestSupport.Timeout)); // the loop now waits for a token

        Assert.Equal(2, backend.Batches.Count);
        time.Advance(TimeSpan.FromMilliseconds(100));
        Assert.True(await backend.Written.WaitAsync(TestSupport.Timeout));
        Assert.True(await time.TimerArmed.WaitAsync(TestSupport.Timeout));
        Assert.Equal(3, backend.Batches.Count);
        time.Advance(TimeSpan.FromMilliseconds(100));
        Assert.True(await backend.Written.WaitAsync(TestSupport.Timeout));
        Assert.Equal(4, backend.Batches.Count);
    }

    [Fact]
    public async Task A_partial_batch_waits_MaxBatchWait_then_goes_out_whole()
    {
        var time = new ManualTimeProvider();
        await using var backend = new RecordingBackend(new AuditBatchOptions
        {
            MaxBatchSize = 400,
            MaxBatchWait = TimeSpan.FromSeconds(30),
        }, time);

        await backend.ProcessAsync([Event(1), Event(2), Event(3)]).WithTimeout();
        Assert.True(await time.TimerArmed.WaitAsync(TestSupport.Timeout)); // the 30 s batch timer
        await backend.ProcessAsync([Event(4)]).WithTimeout();
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.True(await backend.Written.WaitAsync(TestSupport.Timeout));

        Assert.Equal([4], backend.Batches);
    }

    [Fact]
    public async Task A_full_batch_goes_out_without_waiting()
    {
        var time = new ManualTimeProvider();
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
