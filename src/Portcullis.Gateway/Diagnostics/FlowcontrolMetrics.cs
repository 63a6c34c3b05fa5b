using System.Diagnostics.Metrics;
using Portcullis.Admission.Flowcontrol;

namespace Portcullis.Gateway.Diagnostics;

/// <summary>
/// API Priority and Fairness metrics under kube-apiserver's names and labels (<c>apiserver_flowcontrol_*</c>). The
/// <c>flow_schema</c> and <c>priority_level</c> values are names of configured objects only, so the series are bounded
/// by the configuration (and capped by the bridge).
/// </summary>
internal sealed class FlowcontrolMetrics
{
    public const string Rejected = "apiserver_flowcontrol_rejected_requests_total";
    public const string Dispatched = "apiserver_flowcontrol_dispatched_requests_total";
    public const string InQueue = "apiserver_flowcontrol_current_inqueue_requests";
    public const string Executing = "apiserver_flowcontrol_current_executing_requests";
    public const string WaitDuration = "apiserver_flowcontrol_request_wait_duration_seconds";
    public const string NominalLimit = "apiserver_flowcontrol_nominal_limit_seats";
    public const string LowerLimit = "apiserver_flowcontrol_lower_limit_seats";
    public const string UpperLimit = "apiserver_flowcontrol_upper_limit_seats";
    public const string CurrentLimit = "apiserver_flowcontrol_current_limit_seats";
    public const string QueueLength = "apiserver_flowcontrol_request_queue_length_after_enqueue";
    public const string ExecutionDuration = "apiserver_flowcontrol_request_execution_seconds";
    public const string ConcurrencyLimit = "apiserver_flowcontrol_request_concurrency_limit";
    public const string InQueueSeats = "apiserver_flowcontrol_current_inqueue_seats";
    public const string ExecutingSeats = "apiserver_flowcontrol_current_executing_seats";
    public const string DemandHighWatermark = "apiserver_flowcontrol_demand_seats_high_watermark";
    public const string DemandAverage = "apiserver_flowcontrol_demand_seats_average";
    public const string DemandStdev = "apiserver_flowcontrol_demand_seats_stdev";
    public const string DemandSmoothed = "apiserver_flowcontrol_demand_seats_smoothed";
    public const int MaxSeries = 512;

    /// <summary>The instruments recorded per request with the flow schema's and priority level's name instances.</summary>
    public static readonly string[] PerRequest = [Rejected, Dispatched, InQueue, Executing, WaitDuration, QueueLength, ExecutionDuration, InQueueSeats, ExecutingSeats];

    public static readonly double[] WaitBuckets = [0, 0.005, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30];

    /// <summary>kube-apiserver's buckets of <c>apiserver_flowcontrol_request_execution_seconds</c> (those of the wait).</summary>
    public static readonly double[] ExecutionBuckets = WaitBuckets;

    /// <summary>kube-apiserver's buckets of <c>apiserver_flowcontrol_request_queue_length_after_enqueue</c>.</summary>
    public static readonly double[] QueueLengthBuckets = [0, 10, 25, 50, 100, 250, 500, 1000];

    private readonly Counter<long> _rejected;
    private readonly Counter<long> _dispatched;
    private readonly UpDownCounter<long> _inQueue;
    private readonly UpDownCounter<long> _executing;
    private readonly Histogram<double> _wait;
    private readonly Gauge<long> _nominal;
    private readonly Gauge<long> _lower;
    private readonly Gauge<long> _upper;
    private readonly Gauge<long> _current;
    private readonly Gauge<long> _concurrencyLimit;
    private readonly Histogram<double> _queueLength;
    private readonly Histogram<double> _execution;
    private readonly UpDownCounter<long> _inQueueSeats;
    private readonly UpDownCounter<long> _executingSeats;
    private readonly Gauge<long> _demandHigh;
    private readonly Gauge<double> _demandAverage;
    private readonly Gauge<double> _demandStdev;
    private readonly Gauge<double> _demandSmoothed;

    public FlowcontrolMetrics(Meter meter)
    {
        _rejected = meter.CreateCounter<long>(Rejected);
        _dispatched = meter.CreateCounter<long>(Dispatched);
        _inQueue = meter.CreateUpDownCounter<long>(InQueue);
        _executing = meter.CreateUpDownCounter<long>(Executing);
        _wait = meter.CreateHistogram<double>(WaitDuration);
        _nominal = meter.CreateGauge<long>(NominalLimit);
        _lower = meter.CreateGauge<long>(LowerLimit);
        _upper = meter.CreateGauge<long>(UpperLimit);
        _current = meter.CreateGauge<long>(CurrentLimit);
        _concurrencyLimit = meter.CreateGauge<long>(ConcurrencyLimit);
        _queueLength = meter.CreateHistogram<double>(QueueLength);
        _execution = meter.CreateHistogram<double>(ExecutionDuration);
        _inQueueSeats = meter.CreateUpDownCounter<long>(InQueueSeats);
        _executingSeats = meter.CreateUpDownCounter<long>(ExecutingSeats);
        _demandHigh = meter.CreateGauge<long>(DemandHighWatermark);
        _demandAverage = meter.CreateGauge<double>(DemandAverage);
        _demandStdev = meter.CreateGauge<double>(DemandStdev);
        _demandSmoothed = meter.CreateGauge<double>(DemandSmoothed);
    }

    private static KeyValuePair<string, object?> Pl(string level) => new("priority_level", level);
    private static KeyValuePair<string, object?> Fs(string schema) => new("flow_schema", schema);

    public void Reject(string schema, string level, string reason) =>
        _rejected.Add(1, Fs(schema), Pl(level), new KeyValuePair<string, object?>("reason", reason));

    public void Dispatch(string schema, string level) => _dispatched.Add(1, Fs(schema), Pl(level));

    /// <summary>A request of <paramref name="seats"/> seats joins (delta 1) or leaves (−1) a queue.</summary>
    public void AddQueued(string schema, string level, int delta, int seats)
    {
        _inQueue.Add(delta, Fs(schema), Pl(level));
        _inQueueSeats.Add(delta * seats, Fs(schema), Pl(level));
    }

    /// <summary>A request of <paramref name="seats"/> seats starts (delta 1) or ends (−1) executing.</summary>
    public void AddExecuting(string schema, string level, int delta, int seats)
    {
        _executing.Add(delta, Fs(schema), Pl(level));
        _executingSeats.Add(delta * seats, Fs(schema), Pl(level));
    }

    public void Waited(string schema, string level, bool executed, double seconds) =>
        _wait.Record(seconds, Fs(schema), Pl(level), new KeyValuePair<string, object?>("execute", executed ? "true" : "false"));

    /// <summary>The length of the queue a request joined, itself included (kube-apiserver observes it after the enqueue).</summary>
    public void Enqueued(string schema, string level, int length) => _queueLength.Record(length, Pl(level), Fs(schema));

    /// <summary>How long a request held its seat; <c>type</c> is <c>watch</c> for a watch (its seat is held while it starts), else <c>regular</c>.</summary>
    public void Executed(string schema, string level, bool watch, double seconds) =>
        _execution.Record(seconds, Pl(level), Fs(schema), new KeyValuePair<string, object?>("type", watch ? "watch" : "regular"));

    /// <summary>Shows the limits of every level of a configuration now serving, and the last period's seat demand.</summary>
    public void Limits(FlowcontrolSystem system)
    {
        foreach (var level in system.PriorityLevels)
        {
            _nominal.Record(level.NominalLimit, Pl(level.Name));
            _lower.Record(level.LowerLimit, Pl(level.Name));
            _upper.Record(level.UpperLimit, Pl(level.Name));
            _current.Record(level.CurrentLimit, Pl(level.Name));
            _concurrencyLimit.Record(level.NominalLimit, Pl(level.Name)); // kube-apiserver sets it with the nominal limit
            var demand = level.SeatDemand;
            _demandHigh.Record(demand.HighWatermark, Pl(level.Name));
            _demandAverage.Record(demand.Average, Pl(level.Name));
            _demandStdev.Record(demand.Deviation, Pl(level.Name));
            _demandSmoothed.Record(demand.Smoothed, Pl(level.Name));
        }
    }
}
