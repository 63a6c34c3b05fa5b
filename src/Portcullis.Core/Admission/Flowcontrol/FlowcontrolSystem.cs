using Portcullis.Authentication;
using Portcullis.Authorization;
using Portcullis.Configuration;

namespace Portcullis.Admission.Flowcontrol;

/// <summary>
/// One priority level at run time: its configuration, kube-apiserver's limits computed from the server's total
/// (nominal = ceil(total × shares / Σshares); lendable and borrowing = round(nominal × percent / 100), half away from
/// zero; min = nominal − lendable; max = nominal + borrowing), and for a Limited level its <see cref="QueueSet"/>
/// holding <see cref="CurrentLimit"/> seats. Levels do not lend or borrow seats at run time (no dynamic rebalancing):
/// each runs at its nominal limit.
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
        Queues = config.Exempt ? null : new QueueSet(CurrentLimit, config.Reject ? 0 : config.Queues, config.HandSize, config.QueueLengthLimit, time);
        RetryAfter = new RetryAfterTracker(time);
    }

    public PriorityLevelConfiguration Config { get; }
    public string Name => Config.Name;
    public string Uid => Config.Uid;
    public bool IsExempt => Config.Exempt;
    public int NominalLimit { get; }
    public int LendableLimit { get; }
    public int BorrowingLimit { get; }
    public int LowerLimit => NominalLimit - LendableLimit;
    public int UpperLimit => NominalLimit + BorrowingLimit;
    /// <summary>The seats the level's queue set runs with: the nominal limit (no dynamic borrowing).</summary>
    public int CurrentLimit => NominalLimit;
    /// <summary>Null for an Exempt level (never waits, never refused).</summary>
    public QueueSet? Queues { get; }
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

    private FlowcontrolSystem(FlowSchema[] schemas, Dictionary<string, PriorityLevel> levels, int serverLimit)
    {
        _schemas = schemas;
        _levels = levels;
        ServerLimit = serverLimit;
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
        return new FlowcontrolSystem(ordered, built, serverLimit);
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
