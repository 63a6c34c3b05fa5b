using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Prometheus;

namespace Portcullis.Gateway.Diagnostics;

/// <summary>
/// Feeds measurements of <see cref="System.Diagnostics.Metrics"/> instruments into prometheus-net families whose names,
/// HELP texts, label names and buckets are fixed by the caller (kube-apiserver's), so the exposition stays exactly as
/// dashboards expect: neither prometheus-net's <c>MeterAdapter</c> (meter-name prefix, HELP rewrite, counters as
/// gauges) nor the OpenTelemetry exporter (<c>_total</c> and unit suffixes) keeps them.
/// <para>
/// Only instruments of the one <see cref="Meter"/> instance given are listened to, so two gateways in one process never
/// see each other's measurements. A measurement is applied on the recording thread (no aggregation step, nothing copied
/// at scrape time): tags are matched to label names, the child for those label values is looked up in a per-target cache
/// and incremented, observed or set. For the instruments marked <see cref="ByReference"/>, the first
/// <see cref="MaxRecent"/> label sets a target sees with string values are also kept by the string instances themselves:
/// a measurement that passes the same instances again (names of configured objects) finds its child by reference,
/// without hashing nine strings. Observable instruments are observed when the registry collects (<see cref="Observe"/>).
/// Each target accepts at most <see cref="MaxSeriesPerTarget"/> label sets (or the bound given for it); a measurement
/// with a new label set beyond that is counted under all labels <c>other</c> (constant labels keep their value), so a tag
/// value that escaped its fixed set cannot grow <c>/metrics</c>.
/// </para>
/// </summary>
internal sealed class PrometheusBridge : IDisposable
{
    /// <summary>Label sets one target may create (the fixed sets used are far smaller: at most 7 × 3).</summary>
    public const int MaxSeriesPerTarget = 64;

    private readonly Meter _meter;
    private readonly Dictionary<string, Target[]> _routes = new(StringComparer.Ordinal);
    private readonly MeterListener _listener = new();

    public PrometheusBridge(Meter meter)
    {
        ArgumentNullException.ThrowIfNull(meter);
        _meter = meter;
    }

    /// <summary>Each measurement of the counter <paramref name="instrument"/> increments <paramref name="family"/> by its value
    /// (a measurement of 0 shows its series at 0 without moving it).</summary>
    /// <param name="instrument">The instrument's name on the bridged meter.</param>
    /// <param name="family">The family it feeds.</param>
    /// <param name="maxSeries">The label sets this family may hold (default <see cref="MaxSeriesPerTarget"/>).</param>
    /// <param name="constants">Labels of the family that no tag carries, with their one value (kube-apiserver's <c>component</c>).</param>
    public PrometheusBridge Counter(string instrument, Counter family, int maxSeries = MaxSeriesPerTarget, params (string Label, string Value)[] constants) =>
        Route(instrument, new CounterTarget(family, countOnly: false, maxSeries, constants));

    /// <summary>Each measurement of the histogram <paramref name="instrument"/> is observed in <paramref name="family"/>.</summary>
    /// <param name="instrument">The instrument's name on the bridged meter.</param>
    /// <param name="family">The family it feeds.</param>
    /// <param name="maxSeries">The label sets this family may hold (default <see cref="MaxSeriesPerTarget"/>).</param>
    /// <param name="constants">Labels of the family that no tag carries, with their one value.</param>
    public PrometheusBridge Histogram(string instrument, Histogram family, int maxSeries = MaxSeriesPerTarget, params (string Label, string Value)[] constants) =>
        Route(instrument, new HistogramTarget(family, maxSeries, constants));

    /// <summary>Each measurement of <paramref name="instrument"/> increments <paramref name="family"/> by one, whatever its value
    /// (a duration histogram that also feeds an attempts counter: one measurement, several families).</summary>
    public PrometheusBridge CountOf(string instrument, Counter family) => Route(instrument, new CounterTarget(family, countOnly: true, MaxSeriesPerTarget, []));

    /// <summary>Each measurement of the gauge <paramref name="instrument"/> (a <see cref="Gauge{T}"/>, or an
    /// <see cref="ObservableGauge{T}"/> observed at each scrape) sets <paramref name="family"/> to its value.</summary>
    public PrometheusBridge Gauge(string instrument, Gauge family, int maxSeries = MaxSeriesPerTarget) => Route(instrument, new GaugeTarget(family, maxSeries));

    /// <summary>An up-down counter's measurements move the gauge family's series by their value.</summary>
    public PrometheusBridge UpDown(string instrument, Gauge family, int maxSeries = MaxSeriesPerTarget) => Route(instrument, new GaugeDeltaTarget(family, maxSeries));

    /// <summary>The families fed by <paramref name="instrument"/> also find their first <see cref="MaxRecent"/> label sets by
    /// the tag value instances (for recorders that pass the same string instances for a label set, such as configured
    /// objects' names); call after its routes are added.</summary>
    public PrometheusBridge ByReference(string instrument)
    {
        foreach (var target in _routes[instrument])
        {
            target.ByReference = true;
        }
        return this;
    }

    /// <summary>Observes the observable instruments (their callbacks run now, setting their families); the host's
    /// registry calls this before each collection.</summary>
    public void Observe() => _listener.RecordObservableInstruments();

    /// <summary>Starts listening; call once, after every route is added.</summary>
    public void Start()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, _meter) && _routes.TryGetValue(instrument.Name, out var targets))
            {
                listener.EnableMeasurementEvents(instrument, targets);
            }
        };
        _listener.SetMeasurementEventCallback<long>(static (_, value, tags, state) =>
        {
            foreach (var target in (Target[])state!)
            {
                target.Record(value, tags);
            }
        });
        _listener.SetMeasurementEventCallback<int>(static (_, value, tags, state) =>
        {
            foreach (var target in (Target[])state!)
            {
                target.Record(value, tags);
            }
        });
        _listener.SetMeasurementEventCallback<double>(static (_, value, tags, state) =>
        {
            foreach (var target in (Target[])state!)
            {
                target.Record(value, tags);
            }
        });
        _listener.Start();
    }

    public void Dispose() => _listener.Dispose();

    private PrometheusBridge Route(string instrument, Target target)
    {
        _routes[instrument] = _routes.TryGetValue(instrument, out var existing) ? [.. existing, target] : [target];
        return this;
    }

    /// <summary>The label values of one series (families here have at most <see cref="MaxLabels"/> labels; unused ones are "").</summary>
    private readonly record struct LabelValues(string A, string B, string C, string D, string E, string F, string G, string H, string I);

    /// <summary>The most labels a bridged family may have (kube-apiserver's <c>apiserver_request_total</c> has nine).</summary>
    public const int MaxLabels = 9;

    /// <summary>Label sets per family found by reference before the keyed cache (the first ones seen with string values).</summary>
    public const int MaxRecent = 8;

    /// <summary>The tag values of one measurement, per label of the family (null: missing, or a constant label).</summary>
    [System.Runtime.CompilerServices.InlineArray(MaxLabels)]
    private struct TagRefs
    {
        private object? _value;
    }

    /// <summary>A label set's tag value instances (strings or null) and its child: a measurement with the same instances has the same values.</summary>
    private sealed class RecentChild
    {
        private readonly object?[] _refs;

        public RecentChild(in TagRefs refs, int count, object child)
        {
            _refs = new object?[count];
            for (var i = 0; i < count; i++)
            {
                _refs[i] = refs[i];
            }
            Child = child;
        }

        public object Child { get; }

        public bool Matches(in TagRefs refs, int count)
        {
            for (var i = 0; i < count; i++)
            {
                if (!ReferenceEquals(_refs[i], refs[i]))
                {
                    return false;
                }
            }
            return true;
        }
    }

    private abstract class Target
    {
        private readonly string[] _labelNames;
        private readonly string?[] _constants;
        private readonly int _maxSeries;
        private readonly ConcurrentDictionary<LabelValues, object> _children = new();
        private int _count;
        private object? _overflow;
        private RecentChild[] _recent = [];

        protected Target(string[] labelNames, int maxSeries, (string Label, string Value)[] constants)
        {
            if (labelNames.Length > MaxLabels)
            {
                throw new ArgumentException($"at most {MaxLabels} labels", nameof(labelNames));
            }
            ArgumentOutOfRangeException.ThrowIfLessThan(maxSeries, 1);
            _labelNames = labelNames;
            _maxSeries = maxSeries;
            _constants = [.. labelNames.Select(name => constants.Where(c => c.Label == name).Select(c => c.Value).FirstOrDefault())];
        }

        /// <summary>Set by <see cref="PrometheusBridge.ByReference"/>: the recent label sets are looked up by instance first.</summary>
        public bool ByReference { get; set; }

        /// <summary>False for a family without labels (the family itself is the series).</summary>
        protected bool HasLabels => _labelNames.Length > 0;

        public abstract void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags);

        protected abstract object Child(string[] labelValues);

        /// <summary>The child for the tags' values of this family's labels (a missing tag is the empty value).</summary>
        protected object ChildFor(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (!ByReference)
            {
                return KeyedChildFor(tags, out _);
            }
            // The fast path: the same string instances as a recent measurement (the recorders pass names of configured
            // objects or constants), compared by reference, no hashing. Anything else takes the keyed cache below.
            var refs = default(TagRefs);
            var cacheable = true;
            for (var i = 0; i < _labelNames.Length; i++)
            {
                if (_constants[i] is null)
                {
                    var value = RawValue(tags, _labelNames[i]);
                    refs[i] = value;
                    cacheable &= value is null or string;
                }
            }
            var recent = Volatile.Read(ref _recent);
            foreach (var entry in recent)
            {
                if (entry.Matches(in refs, _labelNames.Length))
                {
                    return entry.Child;
                }
            }
            var found = KeyedChildFor(tags, out var overflowed);
            if (cacheable && !overflowed && recent.Length < MaxRecent)
            {
                // Lost races only drop an entry (it is found through the keyed cache next time); the array is never mutated.
                Interlocked.CompareExchange(ref _recent, [.. recent, new RecentChild(in refs, _labelNames.Length, found)], recent);
            }
            return found;
        }

        private static object? RawValue(ReadOnlySpan<KeyValuePair<string, object?>> tags, string name)
        {
            foreach (var tag in tags)
            {
                if (string.Equals(tag.Key, name, StringComparison.Ordinal))
                {
                    return tag.Value;
                }
            }
            return null;
        }

        private object KeyedChildFor(ReadOnlySpan<KeyValuePair<string, object?>> tags, out bool overflowed)
        {
            overflowed = false;
            var key = new LabelValues(Value(tags, 0), Value(tags, 1), Value(tags, 2), Value(tags, 3), Value(tags, 4),
                Value(tags, 5), Value(tags, 6), Value(tags, 7), Value(tags, 8));
            if (_children.TryGetValue(key, out var child))
            {
                return child;
            }
            if (Interlocked.Increment(ref _count) > _maxSeries)
            {
                Interlocked.Decrement(ref _count);
                overflowed = true;
                return Volatile.Read(ref _overflow)
                    ?? Interlocked.CompareExchange(ref _overflow, Child([.. _labelNames.Select((_, i) => _constants[i] ?? RequestMetrics.Other)]), null)
                    ?? _overflow!;
            }
            string[] values = [.. new[] { key.A, key.B, key.C, key.D, key.E, key.F, key.G, key.H, key.I }.Take(_labelNames.Length)];
            // WithLabels returns the same child for the same values, so a lost race creates no second series.
            var created = Child(values);
            if (!_children.TryAdd(key, created))
            {
                Interlocked.Decrement(ref _count);
            }
            return created;
        }

        private string Value(ReadOnlySpan<KeyValuePair<string, object?>> tags, int label)
        {
            if (label >= _labelNames.Length)
            {
                return "";
            }
            if (_constants[label] is { } constant)
            {
                return constant;
            }
            var name = _labelNames[label];
            foreach (var tag in tags)
            {
                if (string.Equals(tag.Key, name, StringComparison.Ordinal))
                {
                    return tag.Value as string ?? Convert.ToString(tag.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
                }
            }
            return "";
        }
    }

    private sealed class CounterTarget(Counter family, bool countOnly, int maxSeries, (string Label, string Value)[] constants)
        : Target(family.LabelNames, maxSeries, constants)
    {
        public override void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (!countOnly && !(value >= 0))
            {
                return; // a counter only goes up (and NaN is no count)
            }
            var counter = HasLabels ? (ICounter)ChildFor(tags) : family;
            counter.Inc(countOnly ? 1 : value); // 0: the series is shown, unmoved
        }

        protected override object Child(string[] labelValues) => family.WithLabels(labelValues);
    }

    private sealed class HistogramTarget(Histogram family, int maxSeries, (string Label, string Value)[] constants)
        : Target(family.LabelNames, maxSeries, constants)
    {
        public override void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var histogram = HasLabels ? (IHistogram)ChildFor(tags) : family;
            histogram.Observe(value);
        }

        protected override object Child(string[] labelValues) => family.WithLabels(labelValues);
    }

    private sealed class GaugeDeltaTarget(Gauge family, int maxSeries) : Target(family.LabelNames, maxSeries, [])
    {
        public override void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var gauge = HasLabels ? (IGauge)ChildFor(tags) : family;
            gauge.Inc(value); // 0: the series is shown, unmoved
        }

        protected override object Child(string[] labelValues) => family.WithLabels(labelValues);
    }

    private sealed class GaugeTarget(Gauge family, int maxSeries) : Target(family.LabelNames, maxSeries, [])
    {
        public override void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (double.IsNaN(value))
            {
                return;
            }
            var gauge = HasLabels ? (IGauge)ChildFor(tags) : family;
            gauge.Set(value);
        }

        protected override object Child(string[] labelValues) => family.WithLabels(labelValues);
    }
}
