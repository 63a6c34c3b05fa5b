using Portcullis.Authentication;
using Portcullis.Authorization;
using Portcullis.Configuration;

namespace Portcullis.Admission.Flowcontrol;

/// <summary>
/// One priority level at run time: its configuration, kube-apiserver's limits computed from the server's total
/// (nominal = ceil(total × shares / Σshares); lendable and borrowing = round(nominal × percent / 100), half away from
/// zero; min = nominal − lendable; max = nominal + borrowing), and for a Limited level its <see cref="QueueSet"/>
/// holding <see cref="CurrentLimit"/> seats: nominal − lendable / 2 at first, as kube-apiserver starts a level, then
/// what <see cref="FlowcontrolSystem.AdjustLimits"/> (the borrowing between levels, every 10 s) gives it.
/// </summary>
public sealed class PriorityLevel
{
    internal PriorityLevel(PriorityLevelConfiguration config, int serverLimit, double shareSum, TimeProvider time)
    {
        Config = config;
        NominalLimit = shareSum <= 0 ? 0 : (int)Math.Ceiling(serverLimit * (double)config.NominalConcurrencyShares / shareSum);
        LendableLimit = (int)Math.Round(NominalLimit * config.LendablePercent / 100.0, MidpointRounding.AwayFromZero);
        BorrowingLimit = config.BorrowingLimitPercent is { } b
            ? (int)Math.Round(NominalLimit * b / 100.0, MidpointRounding.AwayFromZero)
            : serverLimit;
        _currentLimit = NominalLimit - LendableLimit / 2;
        Queues = config.Exempt ? null : new QueueSet(_currentLimit, config.Reject ? 0 : config.Queues, config.HandSize, config.QueueLengthLimit, time);
        ExemptSeats = config.Exempt ? new ExemptSeats(time) : null;
        // kube-apiserver's max seats of a queuing level: max(1, min(ceil(nominal × 0.15), nominal / handSize)); other
        // levels have none (the estimator's own maximum applies).
        MaxSeats = Queues is not null && !config.Reject && config.HandSize > 0
            ? Math.Max(1, Math.Min((int)Math.Ceiling(NominalLimit * MaxSeatsFraction), NominalLimit / config.HandSize))
            : 0;
        RetryAfter = new RetryAfterTracker(time);
    }

    /// <summary>kube-apiserver's priorityLevelMaxSeatsPercent.</summary>
    public const double MaxSeatsFraction = 0.15;

    private volatile int _currentLimit;

    public PriorityLevelConfiguration Config { get; }
    public string Name => Config.Name;
    public string Uid => Config.Uid;
    public bool IsExempt => Config.Exempt;
    public int NominalLimit { get; }
    public int LendableLimit { get; }
    public int BorrowingLimit { get; }
    public int LowerLimit => NominalLimit - LendableLimit;
    public int UpperLimit => NominalLimit + BorrowingLimit;
    /// <summary>The seats the level runs with now (kube-apiserver's CurrentCL), set by the borrowing every 10 s.</summary>
    public int CurrentLimit => _currentLimit;
    /// <summary>The last period's seat demand (high watermark, average, deviation, smoothed).</summary>
    public SeatDemandStats SeatDemand { get; } = new();
    /// <summary>The most seats the work estimator may give one request of this level; 0: no level maximum.</summary>
    public int MaxSeats { get; }
    /// <summary>Null for an Exempt level (never waits, never refused).</summary>
    public QueueSet? Queues { get; }
    /// <summary>An Exempt level's seats in use (its seat demand); null for a Limited level.</summary>
    public ExemptSeats? ExemptSeats { get; }

    internal SeatDemandResults ResetSeatDemand() => Queues?.ResetSeatDemand() ?? ExemptSeats!.ResetSeatDemand();

    internal void SetCurrentLimit(int limit)
    {
        _currentLimit = limit;
        Queues?.SetConcurrencyLimit(limit);
    }
    /// <summary>The level's adaptive Retry-After.</summary>
    public RetryAfterTracker RetryAfter { get; }

    /// <summary>Does a request of this flow schema go through queues (so its distinguisher is hashed)?</summary>
    public bool HashesFlows => Config is { Exempt: false, Reject: false, Queues: > 1 };
}

/// <summary>What a request was classified as: the flow schema that matched first, its level and the flow's hash.</summary>
public readonly record struct FlowClassification(FlowSchema FlowSchema, PriorityLevel PriorityLevel, ulong FlowHash);

/// <summary>
/// API Priority and Fairness as configured: the flow schemas in kube-apiserver's order (matchingPrecedence, then name),
/// the priority levels with their limits and queues. Built once per configuration; <see cref="Classify"/> and the
/// queue sets are safe to use from many requests at once.
/// </summary>
public sealed class FlowcontrolSystem
{
    private readonly FlowSchema[] _schemas;
    private readonly Dictionary<string, PriorityLevel> _levels;

    private readonly PriorityLevel[] _levelOrder;
    private readonly object _adjustLock = new();

    private FlowcontrolSystem(FlowSchema[] schemas, Dictionary<string, PriorityLevel> levels, int serverLimit, TimeProvider time)
    {
        _schemas = schemas;
        _levels = levels;
        _levelOrder = [.. levels.Values.OrderBy(l => l.Name, StringComparer.Ordinal)];
        ServerLimit = serverLimit;
        NominalLimitSum = levels.Values.Sum(l => l.NominalLimit);
        Time = time;
    }

    /// <summary>kube-apiserver's borrowingAdjustmentPeriod.</summary>
    public static readonly TimeSpan BorrowingAdjustmentPeriod = TimeSpan.FromSeconds(10);

    /// <summary>Σ of the levels' nominal limits (kube-apiserver's nominalCLSum; a little above the server's limit from rounding up).</summary>
    public int NominalLimitSum { get; }
    public TimeProvider Time { get; }

    /// <summary>
    /// Runs <see cref="AdjustLimits"/> every <see cref="BorrowingAdjustmentPeriod"/> on the system's TimeProvider and then
    /// <paramref name="adjusted"/> (e.g. to show the new limits); dispose the timer to stop.
    /// </summary>
    public ITimer StartBorrowing(Action<FlowcontrolSystem>? adjusted = null) =>
        Time.CreateTimer(_ =>
        {
            AdjustLimits();
            adjusted?.Invoke(this);
        }, null, BorrowingAdjustmentPeriod, BorrowingAdjustmentPeriod);

    /// <summary>
    /// kube-apiserver's updateBorrowing: each level's seat demand since the last call (seats in use + seats waiting,
    /// integrated over time) updates its statistics; an Exempt level keeps max(min, high watermark) and that is taken
    /// off the total; each Limited level gets at least max(min, min(nominal, high watermark)) and at most its upper limit,
    /// and the rest of Σ nominal is shared in proportion to the smoothed demand (<see cref="ConcurrencyAllocation"/>).
    /// When the total does not cover the lower bounds, levels get their min, or a share between min and their lower bound.
    /// </summary>
    public void AdjustLimits()
    {
        lock (_adjustLock)
        {
            var items = new List<ConcurrencyAllocation.Item>(_levelOrder.Length);
            var minCurrent = new int[_levelOrder.Length];
            int minSum = 0, minCurrentSum = 0;
            var remaining = NominalLimitSum;
            for (var i = 0; i < _levelOrder.Length; i++)
            {
                var level = _levelOrder[i];
                level.SeatDemand.Update(level.ResetSeatDemand());
                var highWatermark = level.SeatDemand.HighWatermark;
                if (level.IsExempt)
                {
                    minCurrent[i] = Math.Max(level.LowerLimit, highWatermark);
                    remaining -= minCurrent[i];
                    continue;
                }
                minCurrent[i] = Math.Max(level.LowerLimit, Math.Min(level.NominalLimit, highWatermark));
                items.Add(new ConcurrencyAllocation.Item(Math.Max(minCurrent[i], level.SeatDemand.Smoothed), minCurrent[i], level.UpperLimit));
                minSum += level.LowerLimit;
                minCurrentSum += minCurrent[i];
            }
            double shareFrac = 0;
            double[]? allocs = null;
            if (remaining <= minSum)
            {
            }
            else if (remaining <= minCurrentSum)
            {
                shareFrac = (remaining - minSum) / (double)(minCurrentSum - minSum);
            }
            else
            {
                allocs = ConcurrencyAllocation.Compute(NominalLimitSum, items)?.Allocs;
            }
            var item = 0;
            for (var i = 0; i < _levelOrder.Length; i++)
            {
                var level = _levelOrder[i];
                int current;
                if (level.IsExempt)
                {
                    current = minCurrent[i];
                }
                else if (remaining <= minSum)
                {
                    current = level.LowerLimit;
                }
                else if (remaining <= minCurrentSum)
                {
                    current = level.LowerLimit + (int)Math.Round((minCurrent[i] - level.LowerLimit) * shareFrac, MidpointRounding.AwayFromZero);
                }
                else
                {
                    // kube-apiserver keeps the current limits when the allocation is impossible (its backstop).
                    current = allocs is null ? level.CurrentLimit : (int)Math.Round(allocs[item], MidpointRounding.AwayFromZero);
                }
                if (!level.IsExempt)
                {
                    item++;
                }
                level.SetCurrentLimit(current);
            }
        }
    }

    /// <summary>maxRequestsInflight + maxMutatingRequestsInflight.</summary>
    public int ServerLimit { get; }
    /// <summary>The flow schemas in matching order (those whose priority level is missing left out, as kube-apiserver does).</summary>
    public IReadOnlyList<FlowSchema> FlowSchemas => _schemas;
    public IReadOnlyCollection<PriorityLevel> PriorityLevels => _levels.Values;
    public PriorityLevel Level(string name) => _levels[name];

    /// <summary>
    /// True for the requests APF does not see, as in kube-apiserver: long-running ones other than watches (exec, attach,
    /// port-forward, proxy, logs). A watch is classified and holds a seat while it starts.
    /// </summary>
    public static bool Bypasses(RequestInfo request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.IsLongRunning && request.Verb != "watch";
    }

    /// <summary>The first flow schema that matches (the mandatory catch-all matches every authenticated or anonymous request).</summary>
    public FlowClassification Classify(UserInfo user, RequestInfo request)
    {
        foreach (var schema in _schemas)
        {
            if (!schema.Matches(user, request))
            {
                continue;
            }
            var level = _levels[schema.PriorityLevelName];
            var hash = level.HashesFlows ? schema.FlowHash(schema.Distinguisher(user, request)) : 0UL;
            return new FlowClassification(schema, level, hash);
        }
        // A user in neither system:authenticated nor system:unauthenticated: kube-apiserver ends in catch-all too.
        var catchAll = _schemas.First(s => s.Name == FlowcontrolBootstrap.CatchAll);
        var catchAllLevel = _levels[catchAll.PriorityLevelName];
        return new FlowClassification(catchAll, catchAllLevel, 0UL);
    }

    /// <summary>
    /// Builds the system from the objects read (files first), kube-apiserver's mandatory objects (always; an object of a
    /// file with a mandatory name is replaced by the built-in, as kube-apiserver restores them) and, when
    /// <paramref name="includeSuggested"/>, the suggested ones (an object of a file with the same name wins).
    /// </summary>
    public static FlowcontrolSystem Create(IEnumerable<FlowSchema> schemas, IEnumerable<PriorityLevelConfiguration> levels, int serverLimit,
        bool includeSuggested, TimeProvider time, List<ConfigError> errors, string file = "")
    {
        var levelConfigs = new Dictionary<string, PriorityLevelConfiguration>(StringComparer.Ordinal);
        var schemaConfigs = new Dictionary<string, FlowSchema>(StringComparer.Ordinal);
        if (includeSuggested)
        {
            foreach (var l in FlowcontrolBootstrap.SuggestedPriorityLevels)
            {
                levelConfigs[l.Name] = l;
            }
            foreach (var s in FlowcontrolBootstrap.SuggestedFlowSchemas)
            {
                schemaConfigs[s.Name] = s;
            }
        }
        var seenLevels = new HashSet<string>(StringComparer.Ordinal);
        foreach (var l in levels)
        {
            if (!seenLevels.Add(l.Name))
            {
                errors.Add(new ConfigError(file, 0, "PriorityLevelConfiguration", $"\"{l.Name}\" is defined twice (again at {l.Source})"));
            }
            levelConfigs[l.Name] = l;
        }
        var seenSchemas = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in schemas)
        {
            if (!seenSchemas.Add(s.Name))
            {
                errors.Add(new ConfigError(file, 0, "FlowSchema", $"\"{s.Name}\" is defined twice (again at {s.Source})"));
            }
            schemaConfigs[s.Name] = s;
        }
        foreach (var l in FlowcontrolBootstrap.MandatoryPriorityLevels)
        {
            levelConfigs[l.Name] = l;
        }
        foreach (var s in FlowcontrolBootstrap.MandatoryFlowSchemas)
        {
            schemaConfigs[s.Name] = s;
        }
        var shareSum = levelConfigs.Values.Sum(l => (double)l.NominalConcurrencyShares);
        var built = levelConfigs.Values.ToDictionary(l => l.Name, l => new PriorityLevel(l, serverLimit, shareSum, time), StringComparer.Ordinal);
        var ordered = schemaConfigs.Values
            .Where(s => built.ContainsKey(s.PriorityLevelName))
            .OrderBy(s => s.MatchingPrecedence)
            .ThenBy(s => s.Name, StringComparer.Ordinal)
            .ToArray();
        return new FlowcontrolSystem(ordered, built, serverLimit, time);
    }

    /// <summary>Reads <paramref name="paths"/> (files or folders) and builds the system; errors name file:line.</summary>
    public static FlowcontrolSystem? Load(IEnumerable<string> paths, int serverLimit, bool includeSuggested, TimeProvider time, List<ConfigError> errors, List<string> notes)
    {
        var start = errors.Count;
        var reader = new FlowcontrolManifestReader(errors, notes);
        foreach (var path in paths)
        {
            reader.ReadPath(path);
        }
        if (errors.Count > start)
        {
            return null;
        }
        var system = Create(reader.FlowSchemas, reader.PriorityLevels, serverLimit, includeSuggested, time, errors);
        return errors.Count > start ? null : system;
    }
}

/// <summary>
/// kube-apiserver's adaptive Retry-After of a priority level (its dropped-requests tracker): starts at 1 s; doubles (up
/// to 32) when at least 3n requests were refused in the last n seconds, at most once every n seconds; goes down by 1 when
/// fewer than n were.
/// </summary>
public sealed class RetryAfterTracker(TimeProvider time)
{
    private const int Max = 32;
    private readonly object _lock = new();
    private readonly Queue<long> _drops = new();
    private int _retryAfter = 1;
    private long _lastChange = long.MinValue / 2;

    /// <summary>Records a refusal and returns the Retry-After seconds to send with it.</summary>
    public int RecordDrop()
    {
        lock (_lock)
        {
            var now = time.GetUtcNow().ToUnixTimeSeconds();
            _drops.Enqueue(now);
            Update(now);
            return _retryAfter;
        }
    }

    public int Current
    {
        get
        {
            lock (_lock)
            {
                Update(time.GetUtcNow().ToUnixTimeSeconds());
                return _retryAfter;
            }
        }
    }

    private void Update(long now)
    {
        while (_drops.Count > 0 && _drops.Peek() <= now - Max)
        {
            _drops.Dequeue();
        }
        if (now - _lastChange < _retryAfter)
        {
            return;
        }
        var recent = _drops.Count(t => t > now - _retryAfter);
        if (recent >= 3 * _retryAfter)
        {
            _retryAfter = Math.Min(Max, _retryAfter * 2);
            _lastChange = now;
        }
        else if (recent < _retryAfter && _retryAfter > 1)
        {
            _retryAfter--;
            _lastChange = now;
        }
    }
}
