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
/// and incremented or observed. Each target accepts at most <see cref="MaxSeriesPerTarget"/> label sets; a measurement
/// with a new label set beyond that is counted under all labels <c>other</c>, so a tag value that escaped its fixed set
/// cannot grow <c>/metrics</c>.
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

    /// <summary>Each measurement of the counter <paramref name="instrument"/> increments <paramref name="family"/> by its value.</summary>
    public PrometheusBridge Counter(string instrument, Counter family) => Route(instrument, new CounterTarget(family, countOnly: false));

    /// <summary>Each measurement of the histogram <paramref name="instrument"/> is observed in <paramref name="family"/>.</summary>
    public PrometheusBridge Histogram(string instrument, Histogram family) => Route(instrument, new HistogramTarget(family));

    /// <summary>Each measurement of <paramref name="instrument"/> increments <paramref name="family"/> by one, whatever its value
    /// (a duration histogram that also feeds an attempts counter: one measurement, several families).</summary>
    public PrometheusBridge CountOf(string instrument, Counter family) => Route(instrument, new CounterTarget(family, countOnly: true));

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

    /// <summary>The label values of one series (families here have at most three labels).</summary>
    private readonly record struct LabelValues(string A, string B, string C);

    private abstract class Target
    {
        private readonly string[] _labelNames;
        private readonly ConcurrentDictionary<LabelValues, object> _children = new();
        private int _count;
        private object? _overflow;

        protected Target(string[] labelNames)
        {
            if (labelNames.Length > 3)
            {
                throw new ArgumentException("at most three labels", nameof(labelNames));
            }
            _labelNames = labelNames;
        }

        /// <summary>False for a family without labels (the family itself is the series).</summary>
        protected bool HasLabels => _labelNames.Length > 0;

        public abstract void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags);

        protected abstract object Child(string[] labelValues);

        /// <summary>The child for the tags' values of this family's labels (a missing tag is the empty value).</summary>
        protected object ChildFor(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var key = new LabelValues(Value(tags, 0), Value(tags, 1), Value(tags, 2));
            if (_children.TryGetValue(key, out var child))
            {
                return child;
            }
            if (Interlocked.Increment(ref _count) > MaxSeriesPerTarget)
            {
                Interlocked.Decrement(ref _count);
                return Volatile.Read(ref _overflow)
                    ?? Interlocked.CompareExchange(ref _overflow, Child([.. _labelNames.Select(_ => RequestMetrics.Other)]), null)
                    ?? _overflow!;
            }
            string[] values = _labelNames.Length switch { 0 => [], 1 => [key.A], 2 => [key.A, key.B], _ => [key.A, key.B, key.C] };
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

    private sealed class CounterTarget(Counter family, bool countOnly) : Target(family.LabelNames)
    {
        public override void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (!countOnly && !(value > 0))
            {
                return; // a counter only goes up (and NaN is no count)
            }
            var counter = HasLabels ? (ICounter)ChildFor(tags) : family;
            counter.Inc(countOnly ? 1 : value);
        }

        protected override object Child(string[] labelValues) => family.WithLabels(labelValues);
    }

    private sealed class HistogramTarget(Histogram family) : Target(family.LabelNames)
    {
        public override void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var histogram = HasLabels ? (IHistogram)ChildFor(tags) : family;
            histogram.Observe(value);
        }

        protected override object Child(string[] labelValues) => family.WithLabels(labelValues);
    }
}
