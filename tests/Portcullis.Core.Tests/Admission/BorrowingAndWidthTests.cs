using Microsoft.Extensions.Time.Testing;
using Portcullis.Admission.Flowcontrol;
using Portcullis.Authorization;
using Portcullis.Configuration;

namespace Portcullis.Core.Tests.Admission;

/// <summary>
/// kube-apiserver's borrowing between priority levels (seat demand integrated on an injected clock, the allocation
/// every 10 s), request width from the list work estimator, and the request wait limit. Deterministic: a fake clock,
/// no threads.
/// </summary>
public sealed class BorrowingAndWidthTests
{
    private static PriorityLevelConfiguration Level(string name, int lendable, int? borrowing) => new()
    {
        Name = name, Uid = name, NominalConcurrencyShares = 10, LendablePercent = lendable, BorrowingLimitPercent = borrowing,
        Queues = 1, HandSize = 1, QueueLengthLimit = 100,
    };

    /// <summary>20 seats; busy and idle 10 shares each, catch-all 5: nominal ceil(20 × 10 / 25) = 8, 8, 4 (Σ 20).</summary>
    private static FlowcontrolSystem TwoLevels(FakeTimeProvider time, PriorityLevelConfiguration busy, PriorityLevelConfiguration idle)
    {
        var errors = new List<ConfigError>();
        var system = FlowcontrolSystem.Create([], [busy, idle], 20, includeSuggested: false, time, errors);
        Assert.Empty(errors);
        Assert.Equal(20, system.NominalLimitSum);
        return system;
    }

    private static List<ApfRequest> Flood(QueueSet queues, int count)
    {
        var requests = new List<ApfRequest>();
        for (var i = 0; i < count; i++)
        {
            requests.Add(queues.TryStart(1UL, out var reason) ?? throw new InvalidOperationException(reason));
        }
        return requests;
    }

    [Fact]
    public void A_busy_level_borrows_an_idle_levels_lendable_seats_up_to_its_borrowing_limit_every_10_seconds()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 5, 12, 0, 0, TimeSpan.Zero));
        // busy: lendable 0, borrowingLimitPercent 50 → upper 8 + 4 = 12; idle: lends all its 8 seats (lower 0).
        var system = TwoLevels(time, Level("busy", 0, 50), Level("idle", 100, 0));
        var busy = system.Level("busy");
        var idle = system.Level("idle");
        Assert.Equal((8, 8, 12), (busy.NominalLimit, busy.LowerLimit, busy.UpperLimit));
        Assert.Equal((8, 0, 8), (idle.NominalLimit, idle.LowerLimit, idle.UpperLimit));
        // kube-apiserver starts a level at nominal − lendable / 2.
        Assert.Equal((8, 4), (busy.CurrentLimit, idle.CurrentLimit));

        var adjustments = 0;
        using var timer = system.StartBorrowing(_ => adjustments++);
        Flood(busy.Queues!, 30); // 8 run, 22 wait: a demand of 30 seats for the whole period
        Assert.Equal((8, 22), (busy.Queues!.SeatsInUse, busy.Queues.RequestsWaiting));
        time.Advance(TimeSpan.FromSeconds(9.9));
        Assert.Equal(0, adjustments);
        time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Equal(1, adjustments);

        Assert.Equal((30, 30.0, 0.0), (busy.SeatDemand.HighWatermark, busy.SeatDemand.Average, busy.SeatDemand.Deviation));
        Assert.Equal(30.0, busy.SeatDemand.Smoothed);
        Assert.Equal(0, idle.SeatDemand.HighWatermark);
        // busy gets its upper limit, no more; idle goes down to its lower limit; the rest of Σ nominal (20) goes to
        // catch-all, in proportion to its target (kube-apiserver's computeConcurrencyAllocation).
        Assert.Equal(12, busy.CurrentLimit);
        Assert.Equal(0, idle.CurrentLimit);
        Assert.Equal(8, system.Level("catch-all").CurrentLimit);
        Assert.Equal(20, system.PriorityLevels.Sum(l => l.CurrentLimit));
        // The four borrowed seats went to four waiting requests at once.
        Assert.Equal((12, 18), (busy.Queues.SeatsInUse, busy.Queues.RequestsWaiting));
        Assert.Equal(12, busy.Queues.ConcurrencyLimit);
    }

    [Fact]
    public void Lending_never_takes_a_level_below_nominal_minus_lendable()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 5, 12, 0, 0, TimeSpan.Zero));
        // busy may borrow without limit (upper 8 + 20); idle lends at most half its 8 seats (lower 4).
        var system = TwoLevels(time, Level("busy", 0, null), Level("idle", 50, null));
        var busy = system.Level("busy");
        var idle = system.Level("idle");
        Assert.Equal((8, 4, 28), (idle.NominalLimit, idle.LowerLimit, idle.UpperLimit));
        Flood(busy.Queues!, 100);
        for (var period = 0; period < 5; period++)
        {
            time.Advance(TimeSpan.FromSeconds(10));
            system.AdjustLimits();
            Assert.Equal(4, idle.CurrentLimit);
            Assert.Equal(4, system.Level("catch-all").CurrentLimit); // lendablePercent 0: never below its nominal 4
            Assert.Equal(12, busy.CurrentLimit); // 20 − 4 − 4
        }
        // The idle level still serves its own four requests at once.
        for (var i = 0; i < 4; i++)
        {
            Assert.True(idle.Queues!.TryStart((ulong)i, out _)!.IsExecuting);
        }
        Assert.False(idle.Queues!.TryStart(9UL, out _)!.IsExecuting);
    }

    [Fact]
    public void A_level_whose_demand_returns_gets_its_nominal_back_at_the_next_adjustment()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 5, 12, 0, 0, TimeSpan.Zero));
        var system = TwoLevels(time, Level("busy", 0, null), Level("idle", 100, null));
        var busy = system.Level("busy");
        var idle = system.Level("idle");
        Flood(busy.Queues!, 100);
        time.Advance(TimeSpan.FromSeconds(10));
        system.AdjustLimits();
        Assert.Equal(0, idle.CurrentLimit);
        // idle now wants 8 seats: with a limit of 0 its requests wait, and its demand's high watermark is 8.
        var waiting = Flood(idle.Queues!, 8);
        Assert.All(waiting, r => Assert.False(r.IsExecuting));
        time.Advance(TimeSpan.FromSeconds(10));
        system.AdjustLimits();
        // minCurrent = max(lower 0, min(nominal 8, high watermark 8)) = 8: it gets at least its nominal back.
        Assert.True(idle.CurrentLimit >= 8, $"idle: {idle.CurrentLimit}");
        Assert.All(waiting, r => Assert.True(r.IsExecuting));
    }

    [Fact]
    public void Seat_demand_statistics_are_time_weighted_with_kube_apiservers_smoothing()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 5, 12, 0, 0, TimeSpan.Zero));
        var queues = new QueueSet(2, 4, 2, 100, time);
        var stats = new SeatDemandStats();
        var a = queues.TryStart(1UL, out _)!;
        time.Advance(TimeSpan.FromSeconds(5)); // demand 1 for 5 s
        var b = queues.TryStart(2UL, 3, out _)!; // 3 seats wide: waits (1 free), demand 4
        Assert.False(b.IsExecuting);
        time.Advance(TimeSpan.FromSeconds(5)); // demand 4 for 5 s
        stats.Update(queues.ResetSeatDemand());
        Assert.Equal(4, stats.HighWatermark);
        Assert.Equal(2.5, stats.Average, 9);
        Assert.Equal(1.5, stats.Deviation, 9); // sqrt((1 + 16) / 2 − 2.5²)
        Assert.Equal(4.0, stats.Smoothed, 9); // max(envelope 4, 0.977 × 0 + 0.023 × 4)
        queues.Finish(a);
        Assert.True(b.IsExecuting); // wider than the limit of 2: runs alone once nothing else does
        Assert.Equal(3, queues.SeatsInUse);
        time.Advance(TimeSpan.FromSeconds(10)); // demand 3 for 10 s
        stats.Update(queues.ResetSeatDemand());
        Assert.Equal((4, 3.0, 0.0), (stats.HighWatermark, stats.Average, stats.Deviation)); // the period began at 4
        Assert.Equal(Math.Max(3, 0.977 * 4 + 0.023 * 3), stats.Smoothed, 9);
    }

    [Fact]
    public void A_wide_request_occupies_its_seats_and_waits_until_that_many_are_free()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 5, 12, 0, 0, TimeSpan.Zero));
        var queues = new QueueSet(4, 8, 2, 100, time);
        var one = queues.TryStart(1UL, out _)!;
        var two = queues.TryStart(2UL, out _)!;
        var wide = queues.TryStart(3UL, 3, out _)!;
        Assert.Equal((true, true, false), (one.IsExecuting, two.IsExecuting, wide.IsExecuting));
        Assert.Equal(2, queues.SeatsInUse);
        queues.Finish(one);
        Assert.True(wide.IsExecuting);
        Assert.Equal(4, queues.SeatsInUse);
        Assert.Equal(3, wide.Seats);
        // A one-seat request now waits: the wide one holds three of the four, two the fourth.
        var late = queues.TryStart(4UL, out _)!;
        Assert.False(late.IsExecuting);
        queues.Finish(wide);
        Assert.True(late.IsExecuting);
        Assert.Equal(2, queues.SeatsInUse);

        // Reject: a request wider than the free seats is refused, not queued.
        var reject = new QueueSet(4, 0, 0, 0, time);
        Assert.NotNull(reject.TryStart(0UL, 2, out _));
        Assert.Null(reject.TryStart(0UL, 3, out var reason));
        Assert.Equal(ApfRejectReasons.ConcurrencyLimit, reason);
    }

    [Fact]
    public void Queues_are_chosen_by_waiting_seats_not_by_waiting_requests()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 5, 12, 0, 0, TimeSpan.Zero));
        var queues = new QueueSet(1, 2, 2, 100, time); // one seat, two queues, every hand holds both
        var running = queues.TryStart(0UL, out _)!;
        Assert.True(running.IsExecuting);
        queues.TryStart(0UL, 5, out _); // one request of 5 seats in one queue
        var lengths = queues.QueueLengths();
        var wideQueue = Array.IndexOf(lengths, 1);
        // Two one-seat requests: both go to the other queue (1 then 2 seats waiting, less than 5).
        var a = queues.TryStart(0UL, out _)!;
        var b = queues.TryStart(0UL, out _)!;
        Assert.Equal(1 - wideQueue, a.QueueIndex);
        Assert.Equal(1 - wideQueue, b.QueueIndex);
    }

    private sealed class Counts(Dictionary<string, long> counts) : IObjectCounts
    {
        public long? Count(string groupResource) => counts.TryGetValue(groupResource, out var c) ? c : null;
    }

    [Theory]
    [InlineData("GET", "/api/v1/pods", "", 10, 10)]                                       // 1000 from the watch cache: 10 seats, the max
    [InlineData("GET", "/api/v1/pods", "", 3, 3)]                                         // the level's max seats
    [InlineData("GET", "/api/v1/pods", "", 0, 10)]                                        // a level without max seats: 10
    [InlineData("GET", "/api/v1/namespaces/dev/pods", "limit=50&resourceVersion=7", 10, 1)] // from etcd: 2 × 50 = 100 objects
    [InlineData("GET", "/api/v1/pods", "limit=50&resourceVersion=7&labelSelector=app%3Dx", 10, 10)] // 1000 + 50
    [InlineData("GET", "/api/v1/pods", "limit=150&resourceVersionMatch=Exact&resourceVersion=7", 10, 3)] // 2 × 150
    [InlineData("GET", "/apis/apps/v1/deployments", "", 10, 3)]                          // 250 deployments.apps
    [InlineData("GET", "/api/v1/pods", "fieldSelector=metadata.name%3Dweb", 10, 1)]    // one object
    [InlineData("GET", "/api/v1/configmaps", "", 10, 1)]                                   // count unknown: the minimum
    [InlineData("GET", "/api/v1/pods?watch=1", "watch=1&resourceVersion=123", 10, 1)]    // a watch from a version: no initial events
    [InlineData("GET", "/api/v1/pods", "watch=1", 10, 10)]                               // a legacy watch: initial events
    [InlineData("GET", "/api/v1/pods", "watch=1&resourceVersion=123&sendInitialEvents=true", 10, 10)]
    [InlineData("GET", "/api/v1/namespaces/dev/pods/web", "", 10, 1)]                   // get
    [InlineData("POST", "/api/v1/namespaces/dev/pods", "", 10, 1)]                     // create
    [InlineData("GET", "/api/v1/pods", "limit=x", 4, 4)]                                 // options that do not convert: the max
    public void List_width_follows_kube_apiservers_list_work_estimator(string method, string path, string query, int levelMaxSeats, int expected)
    {
        var counts = new Counts(new() { ["pods"] = 1000, ["deployments.apps"] = 250 });
        var info = RequestInfoParser.Parse(method, path.Split('?')[0], query);
        Assert.Equal(expected, WorkEstimator.Seats(info, query, levelMaxSeats, counts));
        if (!query.Contains("limit=x", StringComparison.Ordinal))
        {
            Assert.Equal(1, WorkEstimator.Seats(info, query, levelMaxSeats, counts: null)); // no counts at all: the minimum
        }
    }

    [Fact]
    public void Levels_get_kube_apiservers_max_seats()
    {
        var errors = new List<ConfigError>();
        var system = FlowcontrolSystem.Create([], [], 600, true, TimeProvider.System, errors);
        // max(1, min(ceil(nominal × 0.15), nominal / handSize)): global-default 49 seats, hand 6 → min(8, 8) = 8
        Assert.Equal(8, system.Level("global-default").MaxSeats);
        Assert.Equal(37, system.Level("workload-low").MaxSeats); // min(ceil(36.75) = 37, 245 / 6 = 40); the estimator caps at 10
        Assert.Equal(0, system.Level("catch-all").MaxSeats); // Reject: none
    }

    [Theory]
    [InlineData(60, "", "GET", "/api/v1/pods", 15)]                  // no ?timeout=: --request-timeout / 4
    [InlineData(60, "timeout=8s", "GET", "/api/v1/pods", 2)]         // a quarter of the request's own deadline
    [InlineData(60, "timeout=10m", "GET", "/api/v1/pods", 15)]       // above --request-timeout: that deadline
    [InlineData(60, "timeout=0s", "GET", "/api/v1/pods", 15)]        // 0: no deadline of the client's
    [InlineData(60, "timeout=junk", "GET", "/api/v1/pods", 15)]
    [InlineData(600, "", "GET", "/api/v1/pods", 60)]                 // never more than a minute
    [InlineData(600, "timeout=5m", "GET", "/api/v1/pods", 60)]
    [InlineData(60, "watch=1&timeout=8s", "GET", "/api/v1/pods", 15)] // a watch has no deadline: the default
    public void The_wait_limit_is_kube_apiservers(int requestTimeoutSeconds, string query, string method, string path, double expectedSeconds)
    {
        var info = RequestInfoParser.Parse(method, path, query);
        Assert.Equal(TimeSpan.FromSeconds(expectedSeconds), RequestWaitLimit.For(TimeSpan.FromSeconds(requestTimeoutSeconds), info, query));
    }
}
