namespace Portcullis.Admission.Flowcontrol;

/// <summary>What a <see cref="SeatDemandIntegrator"/> saw since its last reset (kube-apiserver's IntegratorResults).</summary>
public readonly record struct SeatDemandResults(double Duration, double Average, double Deviation, double Max);

/// <summary>
/// kube-apiserver's fairqueuing integrator of a priority level's seat demand (seats in use + seats waiting): the
/// time-weighted average, standard deviation and maximum since the last reset. Not thread-safe: the owner (a queue set,
/// the exempt counter) calls it under its own lock, with timestamps of the level's <see cref="TimeProvider"/>.
/// </summary>
internal sealed class SeatDemandIntegrator(long start, long frequency)
{
    private long _last = start;
    private double _x;
    private double _elapsed, _integralX, _integralXX;
    private double _max;

    public void Set(double x, long now)
    {
        Advance(now);
        _x = x;
        if (x > _max)
        {
            _max = x;
        }
    }

    public SeatDemandResults Reset(long now)
    {
        Advance(now);
        double average = double.NaN, deviation = double.NaN;
        if (_elapsed > 0)
        {
            average = _integralX / _elapsed;
            var variance = _integralXX / _elapsed - average * average;
            deviation = variance >= 0 ? Math.Sqrt(variance) : double.NaN;
        }
        var results = new SeatDemandResults(_elapsed, average, deviation, _max);
        _elapsed = _integralX = _integralXX = 0;
        _max = _x;
        return results;
    }

    private void Advance(long now)
    {
        var dt = (now - _last) / (double)frequency;
        _last = now;
        if (dt > 0)
        {
            _elapsed += dt;
            _integralX += _x * dt;
            _integralXX += _x * _x * dt;
        }
    }
}

/// <summary>
/// kube-apiserver's seatDemandStats of a priority level: the last period's high watermark, average and deviation, and
/// the smoothed demand: max(envelope, A × smoothed + (1 − A) × envelope) with envelope = average + deviation, A = 0.977.
/// </summary>
public sealed class SeatDemandStats
{
    /// <summary>kube-apiserver's seatDemandSmoothingCoefficient.</summary>
    public const double SmoothingCoefficient = 0.977;

    public int HighWatermark { get; private set; }
    public double Average { get; private set; }
    public double Deviation { get; private set; }
    public double Smoothed { get; private set; }

    internal void Update(SeatDemandResults obs)
    {
        HighWatermark = (int)Math.Round(obs.Max, MidpointRounding.AwayFromZero);
        if (obs.Duration <= 0)
        {
            return;
        }
        var deviation = double.IsNaN(obs.Deviation) ? 0 : obs.Deviation;
        Average = obs.Average;
        Deviation = deviation;
        var envelope = obs.Average + deviation;
        Smoothed = Math.Max(envelope, SmoothingCoefficient * Smoothed + (1 - SmoothingCoefficient) * envelope);
    }
}

/// <summary>The seats an Exempt level's requests hold, for its seat demand (an exempt request never waits).</summary>
public sealed class ExemptSeats
{
    private readonly object _lock = new();
    private readonly TimeProvider _time;
    private int _inUse;

    internal ExemptSeats(TimeProvider time)
    {
        _time = time;
        SeatDemand = new SeatDemandIntegrator(time.GetTimestamp(), time.TimestampFrequency);
    }

    internal SeatDemandIntegrator SeatDemand { get; }

    public void Add(int delta)
    {
        lock (_lock)
        {
            _inUse += delta;
            SeatDemand.Set(_inUse, _time.GetTimestamp());
        }
    }

    internal SeatDemandResults ResetSeatDemand()
    {
        lock (_lock)
        {
            return SeatDemand.Reset(_time.GetTimestamp());
        }
    }
}

/// <summary>
/// kube-apiserver's computeConcurrencyAllocation: the allocations, summing to <c>requiredSum</c>, that give each class
/// fairProp × target clamped to its [lower, upper] bounds, for the one fairProp that makes them sum right.
/// </summary>
public static class ConcurrencyAllocation
{
    /// <summary>A target smaller than this is treated as this (no division by zero).</summary>
    public const double MinTarget = 0.001;
    private const double Epsilon = 0.0000001;

    public readonly record struct Item(double Target, double LowerBound, double UpperBound);

    /// <summary>The allocations and the fair proportion, or null when the bounds make it impossible.</summary>
    public static (double[] Allocs, double FairProp)? Compute(int requiredSum, IReadOnlyList<Item> classes)
    {
        ArgumentNullException.ThrowIfNull(classes);
        if (requiredSum < 0)
        {
            return null;
        }
        double required = requiredSum, lowSum = 0, highSum = 0, targetSum = 0;
        double lbMin = float.MaxValue, lbMax = double.MinValue, ubMin = float.MaxValue, ubMax = double.MinValue;
        var targets = new double[classes.Count];
        var relLower = new double[classes.Count];
        var relUpper = new double[classes.Count];
        for (var i = 0; i < classes.Count; i++)
        {
            var item = classes[i];
            if (item.LowerBound < 0 || item.Target < item.LowerBound || item.UpperBound < item.LowerBound)
            {
                return null;
            }
            var target = Math.Max(item.Target, MinTarget);
            lowSum += item.LowerBound;
            highSum += item.UpperBound;
            targetSum += target;
            targets[i] = target;
            relLower[i] = item.LowerBound / target;
            relUpper[i] = item.UpperBound / target;
            ubMin = Math.Min(ubMin, relUpper[i]);
            ubMax = Math.Max(ubMax, relUpper[i]);
            lbMin = Math.Min(lbMin, relLower[i]);
            lbMax = Math.Max(lbMax, relLower[i]);
        }
        if (lbMax > 1 || lowSum - required > Epsilon || required - highSum > Epsilon)
        {
            return null;
        }
        var ans = new double[classes.Count];
        if (requiredSum == 0)
        {
            return (ans, 0);
        }
        if (lowSum - required > -Epsilon)
        {
            for (var i = 0; i < ans.Length; i++)
            {
                ans[i] = classes[i].LowerBound;
            }
            return (ans, lbMin);
        }
        if (required - highSum > -Epsilon)
        {
            for (var i = 0; i < ans.Length; i++)
            {
                ans[i] = classes[i].UpperBound;
            }
            return (ans, ubMax);
        }
        var fairProp = required / targetSum;
        if (lbMax <= fairProp && fairProp <= ubMin)
        {
            for (var i = 0; i < ans.Length; i++)
            {
                ans[i] = targets[i] * fairProp;
            }
            return (ans, fairProp);
        }
        // Some bounds matter: walk the bounds in ascending order, raising fairProp until the sum is reached.
        // Bound k: 2i = lower bound of class i, 2i + 1 = its upper bound; equal bounds are consumed together below, so
        // their order among themselves does not change the result.
        var order = Enumerable.Range(0, classes.Count * 2).ToArray();
        double Bound(int k) => k % 2 == 0 ? relLower[k / 2] : relUpper[k / 2];
        Array.Sort(order, (a, b) => Bound(a).CompareTo(Bound(b)));
        var sumSoFar = lowSum;
        fairProp = lbMin;
        double sensitiveTargetSum = 0, deltaSensitiveTargetSum = 0;
        int sensitiveClasses = 0, deltaSensitiveClasses = 0;
        var next = 0;
        while (sumSoFar < required)
        {
            double nextBound;
            while (true)
            {
                sensitiveTargetSum += deltaSensitiveTargetSum;
                sensitiveClasses += deltaSensitiveClasses;
                if (next >= order.Length)
                {
                    return null;
                }
                var k = order[next];
                nextBound = Bound(k);
                deltaSensitiveTargetSum = k % 2 == 0 ? targets[k / 2] : -targets[k / 2];
                deltaSensitiveClasses = k % 2 == 0 ? 1 : -1;
                next++;
                if (nextBound > fairProp)
                {
                    break;
                }
            }
            if (sensitiveClasses == 0)
            {
                fairProp = nextBound;
                continue;
            }
            var nextProp = fairProp + (required - sumSoFar) / sensitiveTargetSum;
            if (nextProp <= nextBound)
            {
                fairProp = nextProp;
                break;
            }
            sumSoFar += (nextBound - fairProp) * sensitiveTargetSum;
            fairProp = nextBound;
        }
        for (var i = 0; i < ans.Length; i++)
        {
            ans[i] = Math.Max(classes[i].LowerBound, Math.Min(classes[i].UpperBound, fairProp * targets[i]));
        }
        return (ans, fairProp);
    }
}
