using Microsoft.Extensions.Time.Testing;
using Portcullis.Admission.Flowcontrol;
using Portcullis.Configuration;

namespace Portcullis.Core.Tests.Admission;

/// <summary>Concurrency limits, shuffle sharding and fair queuing, deterministic: an injected clock and seeded hashes.</summary>
public sealed class QueueSetTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public void The_default_levels_get_kube_apiservers_limits_from_600_seats()
    {
        var errors = new List<ConfigError>();
        var system = FlowcontrolSystem.Create([], [], 400 + 200, true, TimeProvider.System, errors);
        Assert.Empty(errors);
        // nominal = ceil(600 × shares / 245); lendable = round(nominal × lendable% / 100) half away from zero
        var expected = new Dictionary<string, (int Nominal, int Lendable)>
        {
            ["exempt"] = (0, 0), ["catch-all"] = (13, 0), ["system"] = (74, 24), ["node-high"] = (98, 25), ["leader-election"] = (25, 0),
            ["workload-high"] = (98, 49), ["workload-low"] = (245, 221), ["global-default"] = (49, 25),
        };
        Assert.Equal(expected.OrderBy(e => e.Key), system.PriorityLevels.ToDictionary(l => l.Name, l => (l.NominalLimit, l.LendableLimit)).OrderBy(e => e.Key));
        var workloadLow = system.Level("workload-low");
        Assert.Equal((24, 245 + 600), (workloadLow.LowerLimit, workloadLow.UpperLimit)); // no borrowingLimitPercent: up to the server's limit
        Assert.Equal(245 - 221 / 2, workloadLow.Queues!.ConcurrencyLimit); // kube-apiserver starts a level at nominal − lendable / 2
        Assert.Null(system.Level("exempt").Queues);
    }

    [Fact]
    public void Borrowing_limit_percent_rounds_half_away_from_zero()
    {
        var errors = new List<ConfigError>();
        var level = new PriorityLevelConfiguration { Name = "p", Uid = "u", NominalConcurrencyShares = 5, LendablePercent = 50, BorrowingLimitPercent = 50, Reject = true, Queues = 0 };
        var system = FlowcontrolSystem.Create([], [level], 10, false, TimeProvider.System, errors);
        // Σ shares = 0 (exempt) + 5 (catch-all) + 5: nominal ceil(10 × 5 / 10) = 5; 2.5 rounds to 3
        var p = system.Level("p");
        Assert.Equal((5, 3, 3, 2, 8), (p.NominalLimit, p.LendableLimit, p.BorrowingLimit, p.LowerLimit, p.UpperLimit));
    }

    [Theory]
    [InlineData(8, 3, 0UL, new[] { 0, 1, 2 })]
    [InlineData(8, 3, 335UL, new[] { 7, 6, 5 })]
    [InlineData(8, 3, 9UL, new[] { 1, 2, 0 })]
    public void The_dealer_deals_kube_apiservers_hands(int deck, int hand, ulong hash, int[] expected)
    {
        var cards = new int[hand];
        new ShuffleShardDealer(deck, hand).Deal(hash, cards);
        Assert.Equal(expected, cards);
    }

    [Fact]
    public void Every_hand_holds_distinct_cards_of_the_deck()
    {
        var random = new Random(20261205);
        foreach (var (deck, handSize) in new[] { (64, 8), (128, 6), (16, 4), (7, 7), (1, 1) })
        {
            var dealer = new ShuffleShardDealer(deck, handSize);
            var cards = new int[handSize];
            for (var i = 0; i < 2000; i++)
            {
                dealer.Deal((ulong)random.NextInt64() ^ ((ulong)random.Next() << 40), cards);
                Assert.Equal(handSize, cards.Distinct().Count());
                Assert.All(cards, c => Assert.InRange(c, 0, deck - 1));
            }
        }
    }

    [Fact]
    public void A_Reject_level_refuses_only_when_its_seats_are_busy()
    {
        var time = new FakeTimeProvider();
        var set = new QueueSet(2, 0, 0, 0, time);
        var a = set.TryStart(1, out var r1);
        var b = set.TryStart(2, out var r2);
        Assert.True(a!.IsExecuting && b!.IsExecuting);
        Assert.Null(set.TryStart(3, out var reason));
        Assert.Equal(ApfRejectReasons.ConcurrencyLimit, reason);
        set.Finish(a);
        Assert.True(set.TryStart(3, out _)!.IsExecuting);
        Assert.Equal(2, set.SeatsInUse);
    }

    [Fact]
    public void A_request_is_refused_queue_full_only_when_every_seat_is_busy_and_its_queue_is_full()
    {
        var time = new FakeTimeProvider();
        var set = new QueueSet(2, 1, 1, 2, time);
        Assert.True(set.TryStart(1, out _)!.IsExecuting);
        Assert.True(set.TryStart(1, out _)!.IsExecuting);
        Assert.False(set.TryStart(1, out _)!.IsExecuting); // seats busy, queue 0 < 2: queued
        Assert.False(set.TryStart(1, out _)!.IsExecuting); // 1 < 2: queued
        Assert.Null(set.TryStart(1, out var reason));      // seats busy and queue at 2
        Assert.Equal(ApfRejectReasons.QueueFull, reason);
        Assert.Equal(2, set.RequestsWaiting);
    }

    [Fact]
    public void A_flow_is_shuffle_sharded_to_the_shortest_queue_of_its_hand()
    {
        var time = new FakeTimeProvider();
        var set = new QueueSet(1, 16, 4, 50, time);
        const ulong hash = 0xC0FFEE;
        var hand = new int[4];
        new ShuffleShardDealer(16, 4).Deal(hash, hand);
        set.TryStart(hash, out _); // takes the one seat
        var queued = Enumerable.Range(0, 8).Select(n => set.TryStart(hash, out _)!).ToList();
        Assert.All(queued, r => Assert.Contains(r.QueueIndex, hand));
        // the least-loaded queue of the hand each time: two in each of the four queues
        Assert.All(hand, q => Assert.Equal(2, set.QueueLengths()[q]));
        Assert.Equal(8, set.QueueLengths().Sum());
    }

    [Fact]
    public void A_queued_request_carries_its_queues_length_just_after_it_joined()
    {
        var time = new FakeTimeProvider();
        var set = new QueueSet(1, 16, 4, 50, time);
        const ulong hash = 0xC0FFEE;
        var running = set.TryStart(hash, out _)!; // joined an empty queue and was dispatched at once
        Assert.True(running.IsExecuting);
        Assert.Equal(1, running.QueueLengthAfterEnqueue);
        var queued = Enumerable.Range(0, 8).Select(n => set.TryStart(hash, out _)!).ToList();
        // shuffle sharding fills the hand's four queues evenly: in each, the first joined at 1, the second at 2
        Assert.Equal(4, queued.Select(r => r.QueueIndex).Distinct().Count());
        Assert.All(queued.GroupBy(r => r.QueueIndex), g => Assert.Equal([1, 2], g.Select(r => r.QueueLengthAfterEnqueue)));

        // a seat frees: one queue's head runs, so that queue is the hand's shortest and the next request joins it second
        set.Finish(running);
        var dispatched = Assert.Single(queued, r => r.IsExecuting);
        var next = set.TryStart(hash, out _)!;
        Assert.Equal(dispatched.QueueIndex, next.QueueIndex);
        Assert.Equal(2, next.QueueLengthAfterEnqueue);
        Assert.Equal(set.QueueLengths()[next.QueueIndex], next.QueueLengthAfterEnqueue);
    }

    [Fact]
    public async Task Fair_queuing_dispatches_the_queue_with_the_smallest_virtual_finish_time_first()
    {
        var time = new FakeTimeProvider();
        var set = new QueueSet(1, 64, 1, 50, time);
        var (flood, other) = TwoFlowsInDifferentQueues(64);
        var running = set.TryStart(flood, out _)!;
        Assert.True(running.IsExecuting);
        var floodQueued = Enumerable.Range(0, 3).Select(n => set.TryStart(flood, out _)!).ToList();
        var otherQueued = set.TryStart(other, out _)!;
        var names = floodQueued.Select((r, i) => (r, $"flood-{i}")).Append((otherQueued, "other")).ToDictionary(p => p.Item1, p => p.Item2);
        Assert.DoesNotContain(names.Keys, r => r.IsExecuting);

        time.Advance(TimeSpan.FromSeconds(1)); // the flood's running request took a second: its queue is charged for it
        set.Finish(running);
        var order = new List<string>();
        for (var i = 0; i < names.Count; i++)
        {
            var next = await NextDispatchedAsync(names.Keys.Where(r => !order.Contains(names[r])));
            order.Add(names[next]);
            time.Advance(TimeSpan.FromMilliseconds(100));
            set.Finish(next);
        }
        // FIFO would have run flood-0 first: it arrived before the other flow's request
        Assert.Equal(["other", "flood-0", "flood-1", "flood-2"], order);
    }

    [Fact]
    public async Task A_queued_request_times_out_at_its_wait_limit_and_leaves_its_queue()
    {
        var time = new FakeTimeProvider();
        var set = new QueueSet(1, 8, 2, 50, time);
        var running = set.TryStart(7, out _)!;
        var queued = set.TryStart(7, out _)!;
        var wait = set.WaitAsync(queued, TimeSpan.FromSeconds(15), CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(14));
        Assert.False(wait.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.False(await wait.WaitAsync(Timeout));
        Assert.Equal(0, set.RequestsWaiting);
        set.Finish(running);
        Assert.Equal(0, set.SeatsInUse); // the timed-out request was not dispatched into the freed seat

        var again = set.TryStart(7, out _)!; // runs: the seat is free
        var queued2 = set.TryStart(7, out _)!;
        var wait2 = set.WaitAsync(queued2, TimeSpan.FromSeconds(15), CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(5));
        set.Finish(again);
        Assert.True(await wait2.WaitAsync(Timeout)); // dispatched within its limit
        Assert.True(queued2.IsExecuting);
    }

    [Fact]
    public async Task A_client_that_goes_away_leaves_its_queue()
    {
        var time = new FakeTimeProvider();
        var set = new QueueSet(1, 8, 2, 50, time);
        set.TryStart(7, out _);
        var queued = set.TryStart(7, out _)!;
        using var gone = new CancellationTokenSource();
        var wait = set.WaitAsync(queued, TimeSpan.FromSeconds(15), gone.Token);
        await gone.CancelAsync();
        Assert.False(await wait.WaitAsync(Timeout));
        Assert.Equal(0, set.RequestsWaiting);
    }

    [Fact]
    public void Retry_after_doubles_under_a_burst_of_refusals_and_comes_back_down()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddSeconds(1000));
        var tracker = new RetryAfterTracker(time);
        Assert.Equal(1, tracker.RecordDrop());
        Assert.Equal(1, tracker.RecordDrop());
        Assert.Equal(2, tracker.RecordDrop()); // 3 drops within 1 s
        Assert.Equal(2, tracker.RecordDrop()); // at most one change per n seconds
        time.Advance(TimeSpan.FromSeconds(40));
        Assert.Equal(1, tracker.Current);
    }

    private static async Task<ApfRequest> NextDispatchedAsync(IEnumerable<ApfRequest> candidates)
    {
        var list = candidates.ToList();
        var deadline = DateTime.UtcNow + Timeout;
        while (DateTime.UtcNow < deadline)
        {
            var executing = list.Where(r => r.IsExecuting).ToList();
            if (executing.Count > 0)
            {
                return executing[0];
            }
            await Task.Yield();
        }
        throw new TimeoutException("nothing was dispatched");
    }

    /// <summary>Two flow hashes whose one-card hands (of <paramref name="queues"/>) differ, from a seeded source.</summary>
    private static (ulong, ulong) TwoFlowsInDifferentQueues(int queues)
    {
        var random = new Random(42);
        var dealer = new ShuffleShardDealer(queues, 1);
        var a = (ulong)random.NextInt64();
        var card = new int[1];
        dealer.Deal(a, card);
        var first = card[0];
        while (true)
        {
            var b = (ulong)random.NextInt64();
            dealer.Deal(b, card);
            if (card[0] != first)
            {
                return (a, b);
            }
        }
    }
}
