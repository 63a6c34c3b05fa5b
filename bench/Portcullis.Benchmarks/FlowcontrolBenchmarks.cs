using BenchmarkDotNet.Attributes;
using Portcullis.Admission.Flowcontrol;
using Portcullis.Authentication;
using Portcullis.Authorization;
using Portcullis.Configuration;

namespace Portcullis.Benchmarks;

/// <summary>
/// API Priority and Fairness dispatch of a request that does not wait, over kube-apiserver's default objects (600 seats):
/// classify (flow schemas in order, the flow's SHA-256 hash), take a seat in the level's queue set (shuffle sharding,
/// virtual time), give it back. Target: ≤ 1 µs and no allocation.
/// </summary>
[MemoryDiagnoser]
[MinColumn]
[MedianColumn]
public class FlowcontrolBenchmarks
{
    private FlowcontrolSystem _system = null!;
    private UserInfo _jane = null!;
    private UserInfo _root = null!;
    private RequestInfo _listPods = null!;
    private PriorityLevel _globalDefault = null!;

    [GlobalSetup]
    public void Setup()
    {
        var errors = new List<ConfigError>();
        _system = FlowcontrolSystem.Create([], [], 600, includeSuggested: true, TimeProvider.System, errors);
        if (errors.Count > 0)
        {
            throw new InvalidOperationException(string.Join("; ", errors));
        }
        _jane = UserInfo.Create("jane", ["developers", UserInfo.AuthenticatedGroup]);
        _root = UserInfo.Create("root", [UserInfo.MastersGroup, UserInfo.AuthenticatedGroup]);
        _listPods = RequestInfoParser.Parse("GET", "/api/v1/namespaces/dev/pods", "");
        _globalDefault = _system.Level("global-default");
    }

    /// <summary>jane's list: matched by global-default (precedence 9900, the tenth schema), ByUser hash, a free seat.</summary>
    [Benchmark]
    public bool ClassifyAndDispatchGlobalDefault()
    {
        var c = _system.Classify(_jane, _listPods);
        var queues = c.PriorityLevel.Queues!;
        var request = queues.TryStart(c.FlowHash, out _)!;
        var executing = request.IsExecuting;
        queues.Finish(request);
        return executing;
    }

    /// <summary>The parts: the flow's SHA-256 hash alone.</summary>
    [Benchmark]
    public ulong FlowHashOnly() => ShuffleShardDealer.FlowHash("global-default", "jane");

    /// <summary>The parts: a seat taken and given back in global-default's queue set (hash precomputed).</summary>
    [Benchmark]
    public bool DispatchOnly()
    {
        var queues = _globalDefault.Queues!;
        var request = queues.TryStart(6822407026147695384UL, out _)!;
        var executing = request.IsExecuting;
        queues.Finish(request);
        return executing;
    }

    /// <summary>system:masters: the first schema, an Exempt level (no queue set).</summary>
    [Benchmark]
    public bool ClassifyExempt() => _system.Classify(_root, _listPods).PriorityLevel.IsExempt;
}
