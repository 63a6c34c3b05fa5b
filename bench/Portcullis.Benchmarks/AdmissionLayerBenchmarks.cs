using BenchmarkDotNet.Attributes;
using Portcullis.Admission.Flowcontrol;
using Portcullis.Admission.RateLimiting;
using Portcullis.Authentication;
using Portcullis.Authorization;
using Portcullis.Configuration;
using Portcullis.Gateway.Diagnostics;

namespace Portcullis.Benchmarks;

/// <summary>
/// Layer 5's per-request work outside HTTP, as the load harness's "L5 on" state does it for its user (kube-apiserver's
/// default objects, <c>rateLimits: [User, Server]</c>): two token buckets, APF classification and seat, and the APF
/// metrics the stage records for a request that does not wait (dispatched, executing ±1 with its seats, wait and
/// execution histograms), through the gateway's <see cref="PrometheusBridge"/> into its prometheus-net families.
/// Run: <c>dotnet run -c Release --project bench/Portcullis.Benchmarks -- --filter '*AdmissionLayer*' --job short --inProcess</c>.
/// </summary>
[MemoryDiagnoser]
[MinColumn]
[MedianColumn]
public class AdmissionLayerBenchmarks : IDisposable
{
    private GatewayMetrics _metrics = null!;
    private FlowcontrolSystem _system = null!;
    private RequestRateLimiter _limiter = null!;
    private UserInfo _loader = null!;
    private RequestInfo _listPods = null!;

    [GlobalSetup]
    public void Setup()
    {
        _metrics = new GatewayMetrics();
        var errors = new List<ConfigError>();
        _system = FlowcontrolSystem.Create([], [], 600, includeSuggested: true, TimeProvider.System, errors);
        if (errors.Count > 0)
        {
            throw new InvalidOperationException(string.Join("; ", errors));
        }
        _limiter = new RequestRateLimiter(
            [new RequestRateLimit(RequestRateLimiter.User, 1e9, 1_000_000_000, 4096), new RequestRateLimit(RequestRateLimiter.Server, 1e9, 1_000_000_000, 1)],
            TimeProvider.System);
        _loader = UserInfo.Create("loader", ["developers", UserInfo.AuthenticatedGroup]);
        _listPods = RequestInfoParser.Parse("GET", "/api/v1/namespaces/default/pods", "");
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _metrics.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>The APF metrics of one request that does not wait (seven measurements).</summary>
    [Benchmark]
    public void ApfMetricsOneRequest()
    {
        var m = _metrics.Flowcontrol;
        m.Dispatch("global-default", "global-default");
        m.AddExecuting("global-default", "global-default", 1, 1);
        m.Waited("global-default", "global-default", true, 0);
        m.AddExecuting("global-default", "global-default", -1, 1);
        m.Executed("global-default", "global-default", false, 0.0002);
    }

    /// <summary>The rate limits' two buckets (User and Server) of one admitted request.</summary>
    [Benchmark]
    public int RateLimitsOneRequest() => _limiter.Admit("loader", System.Net.IPAddress.Loopback, "default").Count;

    /// <summary>Everything above plus classification and the seat: the layer's whole per-request work outside HTTP.</summary>
    [Benchmark]
    public bool WholeLayerOneRequest()
    {
        var admitted = _limiter.Admit("loader", System.Net.IPAddress.Loopback, "default").Count == 0;
        var c = _system.Classify(_loader, _listPods);
        var schema = c.FlowSchema.Name;
        var level = c.PriorityLevel.Name;
        var queues = c.PriorityLevel.Queues!;
        var request = queues.TryStart(c.FlowHash, out _)!;
        var m = _metrics.Flowcontrol;
        m.Waited(schema, level, true, 0);
        m.Dispatch(schema, level);
        m.AddExecuting(schema, level, 1, 1);
        m.AddExecuting(schema, level, -1, 1);
        m.Executed(schema, level, false, 0.0002);
        queues.Finish(request);
        return admitted;
    }
}
