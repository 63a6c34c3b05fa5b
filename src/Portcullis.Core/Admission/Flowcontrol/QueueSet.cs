namespace Portcullis.Admission.Flowcontrol;

/// <summary>Why API Priority and Fairness refused a request: kube-apiserver's <c>reason</c> label values.</summary>
public static class ApfRejectReasons
{
    public const string ConcurrencyLimit = "concurrency-limit";
    public const string QueueFull = "queue-full";
    public const string TimeOut = "time-out";
    public static IReadOnlyList<string> All { get; } = [QueueFull, ConcurrencyLimit, TimeOut];
}

/// <summary>One request admitted to (or waiting in) a <see cref="QueueSet"/>; finish it with <see cref="QueueSet.Finish"/>.</summary>
public sealed class ApfRequest
{
    internal const int Waiting = 0, Executing = 1, Ejected = 2, Finished = 3;

    internal ApfRequest(FairQueue? queue, double arrivalR, int seats)
    {
        Queue = queue;
        ArrivalR = arrivalR;
        Seats = seats;
        Node = new LinkedListNode<ApfRequest>(this);
    }

    /// <summary>The seats the request occupies while it runs (its width); it waits for that many at once.</summary>
    public int Seats { get; internal set; }

    internal FairQueue? Queue { get; set; }
    internal double ArrivalR { get; set; }
    /// <summary>The request's own queue node, reused with the request (so queuing allocates nothing).</summary>
    internal LinkedListNode<ApfRequest> Node { get; }
    internal long StartTimestamp { get; set; }
    internal TaskCompletionSource<bool>? Waiter { get; set; }
    internal int State { get; set; }

    /// <summary>True once the request holds its seat (dispatched at once or from its queue).</summary>
    public bool IsExecuting => State == Executing;

    /// <summary>The index of the queue it was put in; -1 for a level without queues.</summary>
    public int QueueIndex => Queue?.Index ?? -1;

    /// <summary>
    /// How many requests waited in its queue just after it joined (itself included), taken under the queue set's lock
    /// as kube-apiserver observes <c>apiserver_flowcontrol_request_queue_length_after_enqueue</c>; 0 for a level
    /// without queues.
    /// </summary>
    public int QueueLengthAfterEnqueue { get; internal set; }
}

internal sealed class FairQueue(int index)
{
    public int Index { get; } = index;
    public LinkedList<ApfRequest> Waiting { get; } = new();
    /// <summary>The seats the waiting requests ask for (the queue's waiting work, in seats of 3 ms).</summary>
    public int SeatsWaiting { get; set; }
    public int Executing { get; set; }
    /// <summary>The virtual time (seat-seconds) at which the queue's next request would start.</summary>
    public double NextDispatchR { get; set; }
}

/// <summary>
/// The queues of one Limited priority level, as kube-apiserver's queueset: a request is shuffle-sharded into the
/// least-loaded queue of its flow's hand and refused (<c>queue-full</c>) only when every seat is busy and that queue is
/// at <c>queueLengthLimit</c>; queued requests are dispatched by fair queuing — while a seat is free, the queue whose head
/// has the smallest virtual finish time (the queue's next dispatch R plus the head's work) goes next. Virtual time R
/// advances at min(seats requested, limit) / active queues seat-seconds per second. A request takes its width in seats
/// (<see cref="ApfRequest.Seats"/>; one unless the work estimator says more) and is estimated at 3 ms per seat; when it
/// finishes, its queue is charged for its real duration. A request wider than the whole limit runs only when nothing
/// else does. A level with <c>Reject</c> has no queues: a request runs at once or is refused (<c>concurrency-limit</c>).
/// The seat demand (seats in use + seats waiting) is integrated over time for the borrowing between levels (<see
/// cref="SeatDemand"/>), and <see cref="ConcurrencyLimit"/> is set by it. Every operation takes one lock; time comes from
/// the injected <see cref="TimeProvider"/>.
/// </summary>
public sealed class QueueSet
{
    /// <summary>kube-apiserver's estimated service time of a request (seat-seconds per seat).</summary>
    public const double EstimatedServiceSeconds = 0.003;

    private readonly object _lock = new();
    private readonly TimeProvider _time;
    private readonly FairQueue[] _queues;
    private readonly ShuffleShardDealer? _dealer;
    private readonly int _queueLengthLimit;
    private long _lastTimestamp;
    private double _currentR;
    private int _seatsInUse;
    private int _executing;
    private int _waiting;
    private int _seatsWaiting;
    private int _concurrencyLimit;
    private int _robinIndex = -1;
    // Queues with a request waiting or executing, and the requests executing from queues: virtual time in O(1).
    private int _activeQueues;
    private int _seatsInUseInQueues;
    private uint _enqueues;
    // Finished requests, reused so that a request that does not wait allocates nothing (under _lock).
    private readonly Stack<ApfRequest> _pool = new();
    private const int PoolLimit = 256;

    /// <param name="concurrencyLimit">seats this level may use at once</param>
    /// <param name="queues">0: Reject (no queuing); otherwise queues, handSize and queueLengthLimit of Queue</param>
    public QueueSet(int concurrencyLimit, int queues, int handSize, int queueLengthLimit, TimeProvider time)
    {
        _concurrencyLimit = concurrencyLimit;
        _time = time;
        _lastTimestamp = time.GetTimestamp();
        SeatDemand = new SeatDemandIntegrator(_lastTimestamp, time.TimestampFrequency);
        _queueLengthLimit = queueLengthLimit;
        _queues = new FairQueue[Math.Max(0, queues)];
        for (var i = 0; i < _queues.Length; i++)
        {
            _queues[i] = new FairQueue(i);
        }
        _dealer = queues > 0 ? new ShuffleShardDealer(queues, handSize) : null;
    }

    /// <summary>The seats the level may use now: its current limit (set by the borrowing between levels).</summary>
    public int ConcurrencyLimit
    {
        get
        {
            lock (_lock)
            {
                return _concurrencyLimit;
            }
        }
    }

    /// <summary>The level's seat demand over time (seats in use + seats waiting), guarded by the queue set's lock.</summary>
    internal SeatDemandIntegrator SeatDemand { get; }

    /// <summary>Integrates the seat demand up to now and returns its statistics since the last reset, then resets.</summary>
    internal SeatDemandResults ResetSeatDemand()
    {
        lock (_lock)
        {
            SyncTime();
            return SeatDemand.Reset(_lastTimestamp);
        }
    }

    /// <summary>Sets the current limit (kube-apiserver's CurrentCL); requests waiting for the new seats are dispatched.</summary>
    public void SetConcurrencyLimit(int limit)
    {
        lock (_lock)
        {
            SyncTime();
            _concurrencyLimit = Math.Max(0, limit);
            DispatchAsMuchAsPossible();
        }
    }

    public int SeatsInUse
    {
        get
        {
            lock (_lock)
            {
                return _seatsInUse;
            }
        }
    }

    public int RequestsWaiting
    {
        get
        {
            lock (_lock)
            {
                return _waiting;
            }
        }
    }

    /// <summary>How many requests wait in each queue, copied (for tests and diagnostics; a request's own queue length
    /// at enqueue is <see cref="ApfRequest.QueueLengthAfterEnqueue"/>).</summary>
    public int[] QueueLengths()
    {
        lock (_lock)
        {
            return [.. _queues.Select(q => q.Waiting.Count)];
        }
    }

    /// <summary>The current virtual time R in seat-seconds.</summary>
    public double VirtualTime
    {
        get
        {
            lock (_lock)
            {
                SyncTime();
                return _currentR;
            }
        }
    }

    /// <summary>
    /// A request of the flow with <paramref name="flowHash"/> arrives: it is dispatched at once (<see
    /// cref="ApfRequest.IsExecuting"/>), queued (then <see cref="WaitAsync"/>), or refused: null with the reason.
    /// </summary>
    public ApfRequest? TryStart(ulong flowHash, out string? rejectReason) => TryStart(flowHash, 1, out rejectReason);

    /// <summary>As <see cref="TryStart(ulong, out string?)"/> for a request <paramref name="seats"/> wide (at least 1).</summary>
    public ApfRequest? TryStart(ulong flowHash, int seats, out string? rejectReason)
    {
        seats = Math.Max(1, seats);
        lock (_lock)
        {
            SyncTime();
            rejectReason = null;
            if (_dealer is null)
            {
                if (!CanAccommodate(seats))
                {
                    rejectReason = ApfRejectReasons.ConcurrencyLimit;
                    return null;
                }
                var sansQueue = Rent(null, seats);
                sansQueue.QueueLengthAfterEnqueue = 0;
                sansQueue.State = ApfRequest.Executing;
                sansQueue.StartTimestamp = _lastTimestamp;
                _seatsInUse += seats;
                _executing++;
                SeatDemand.Set(_seatsInUse + _seatsWaiting, _lastTimestamp);
                return sansQueue;
            }
            var queue = _queues[ShuffleShard(flowHash)];
            if (_seatsInUse >= _concurrencyLimit && queue.Waiting.Count >= _queueLengthLimit)
            {
                rejectReason = ApfRejectReasons.QueueFull;
                return null;
            }
            var request = Rent(queue, seats);
            if (queue.Waiting.Count == 0 && queue.Executing == 0)
            {
                queue.NextDispatchR = _currentR;
            }
            if (queue.Waiting.Count == 0 && queue.Executing == 0)
            {
                _activeQueues++;
            }
            queue.Waiting.AddLast(request.Node);
            request.QueueLengthAfterEnqueue = queue.Waiting.Count;
            queue.SeatsWaiting += seats;
            _waiting++;
            _seatsWaiting += seats;
            BoundNextDispatch(queue);
            if (_waiting == 1)
            {
                // Nothing else waits anywhere: this queue's head is the one with the smallest virtual finish time.
                if (_seatsInUse < _concurrencyLimit && CanAccommodate(seats))
                {
                    Dispatch(queue);
                }
                else
                {
                    SeatDemand.Set(_seatsInUse + _seatsWaiting, _lastTimestamp);
                }
                return request;
            }
            SeatDemand.Set(_seatsInUse + _seatsWaiting, _lastTimestamp);
            DispatchAsMuchAsPossible();
            return request;
        }
    }

    /// <summary>
    /// Waits until the queued request is dispatched (true: it holds its seat) or <paramref name="limit"/> passes or
    /// <paramref name="cancel"/> fires (false: it was taken out of its queue; kube-apiserver counts it <c>time-out</c>).
    /// </summary>
    public async Task<bool> WaitAsync(ApfRequest request, TimeSpan limit, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(request);
        TaskCompletionSource<bool> waiter;
        lock (_lock)
        {
            if (request.State != ApfRequest.Waiting)
            {
                return request.State == ApfRequest.Executing;
            }
            waiter = request.Waiter = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        try
        {
            return await waiter.Task.WaitAsync(limit < TimeSpan.Zero ? TimeSpan.Zero : limit, _time, cancel).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            lock (_lock)
            {
                if (request.State == ApfRequest.Executing)
                {
                    return true; // dispatched as the wait ended: it holds a seat, the caller runs or finishes it
                }
                SyncTime();
                if (request.State == ApfRequest.Waiting)
                {
                    var queue = request.Queue!;
                    queue.Waiting.Remove(request.Node);
                    queue.SeatsWaiting -= request.Seats;
                    request.State = ApfRequest.Ejected;
                    _waiting--;
                    _seatsWaiting -= request.Seats;
                    SeatDemand.Set(_seatsInUse + _seatsWaiting, _lastTimestamp);
                    if (queue.Waiting.Count == 0 && queue.Executing == 0)
                    {
                        _activeQueues--;
                    }
                    BoundNextDispatch(queue);
                }
                return false;
            }
        }
    }

    /// <summary>The request's work is done (or, for a watch, its response has started): its seat goes to the next.</summary>
    public void Finish(ApfRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        lock (_lock)
        {
            if (request.State != ApfRequest.Executing)
            {
                return;
            }
            SyncTime();
            request.State = ApfRequest.Finished;
            _seatsInUse -= request.Seats;
            _executing--;
            SeatDemand.Set(_seatsInUse + _seatsWaiting, _lastTimestamp);
            if (request.Queue is { } queue)
            {
                queue.Executing--;
                _seatsInUseInQueues -= request.Seats;
                if (queue.Waiting.Count == 0 && queue.Executing == 0)
                {
                    _activeQueues--;
                }
                var actual = _time.GetElapsedTime(request.StartTimestamp, _lastTimestamp).TotalSeconds;
                queue.NextDispatchR -= request.Seats * (EstimatedServiceSeconds - actual);
                BoundNextDispatch(queue);
            }
            if (request.Waiter is null && _pool.Count < PoolLimit)
            {
                _pool.Push(request); // the caller finishes a request once and does not touch it after
            }
            DispatchAsMuchAsPossible();
        }
    }

    private ApfRequest Rent(FairQueue? queue, int seats)
    {
        if (_pool.TryPop(out var request))
        {
            request.Queue = queue;
            request.ArrivalR = _currentR;
            request.Seats = seats;
            request.Waiter = null;
            request.State = ApfRequest.Waiting;
            return request;
        }
        return new ApfRequest(queue, _currentR, seats);
    }

    /// <summary>kube-apiserver's canAccommodateSeatsLocked: wider than the limit runs only alone.</summary>
    private bool CanAccommodate(int seats) =>
        seats > _concurrencyLimit ? _executing == 0 : _seatsInUse + seats <= _concurrencyLimit;

    private void SyncTime()
    {
        var now = _time.GetTimestamp();
        var elapsed = _time.GetElapsedTime(_lastTimestamp, now).TotalSeconds;
        _lastTimestamp = now;
        if (elapsed <= 0)
        {
            return;
        }
        if (_activeQueues > 0)
        {
            _currentR += Math.Min(_seatsInUseInQueues + _seatsWaiting, _concurrencyLimit) / (double)_activeQueues * elapsed;
        }
    }

    private int ShuffleShard(ulong hash)
    {
        Span<int> hand = stackalloc int[ShuffleShardDealer.MaxHandSize];
        var n = _dealer!.Deal(hash, hand);
        var offset = (int)(_enqueues % (uint)n);
        _enqueues++;
        var best = -1;
        var least = int.MaxValue;
        for (var i = 0; i < n; i++)
        {
            var index = hand[(offset + i) % n];
            var queued = _queues[index].SeatsWaiting; // 3 ms per seat: the waiting seat-seconds are proportional
            if (queued < least)
            {
                least = queued;
                best = index;
            }
        }
        return best;
    }

    private void DispatchAsMuchAsPossible()
    {
        while (_waiting > 0 && _seatsInUse < _concurrencyLimit && DispatchOne())
        {
        }
    }

    private bool DispatchOne()
    {
        FairQueue? min = null;
        var minIndex = 0;
        var minFinish = double.MaxValue;
        for (var i = 0; i < _queues.Length; i++)
        {
            _robinIndex = (_robinIndex + 1) % _queues.Length;
            var q = _queues[_robinIndex];
            if (q.Waiting.Count == 0)
            {
                continue;
            }
            var finish = q.NextDispatchR + q.Waiting.First!.Value.Seats * EstimatedServiceSeconds;
            if (finish < minFinish)
            {
                minFinish = finish;
                min = q;
                minIndex = _robinIndex;
            }
        }
        if (min is null || !CanAccommodate(min.Waiting.First!.Value.Seats))
        {
            return false;
        }
        _robinIndex = minIndex;
        Dispatch(min);
        return true;
    }

    /// <summary>The head of <paramref name="queue"/> takes a seat.</summary>
    private void Dispatch(FairQueue queue)
    {
        var request = queue.Waiting.First!.Value;
        queue.Waiting.RemoveFirst();
        queue.SeatsWaiting -= request.Seats;
        _robinIndex = queue.Index;
        _waiting--;
        _seatsWaiting -= request.Seats;
        request.State = ApfRequest.Executing;
        request.StartTimestamp = _lastTimestamp;
        _seatsInUse += request.Seats;
        _executing++;
        _seatsInUseInQueues += request.Seats;
        SeatDemand.Set(_seatsInUse + _seatsWaiting, _lastTimestamp);
        queue.Executing++;
        queue.NextDispatchR += request.Seats * EstimatedServiceSeconds;
        BoundNextDispatch(queue);
        request.Waiter?.TrySetResult(true);
    }

    /// <summary>kube-apiserver's anti-windup: a queue's next dispatch R is never before its head's arrival R.</summary>
    private static void BoundNextDispatch(FairQueue queue)
    {
        if (queue.Waiting.First is { } head && queue.NextDispatchR < head.Value.ArrivalR)
        {
            queue.NextDispatchR = head.Value.ArrivalR;
        }
    }
}
