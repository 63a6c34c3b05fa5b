using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Portcullis.Audit.Tests;

/// <summary>
/// What the audit code recorded on one <see cref="AuditMetrics"/>'s instruments, read with a <see cref="MeterListener"/>
/// on that instance's meter only (so tests running in parallel never see each other's events). Create it before the
/// measurements it should see.
/// </summary>
internal sealed class AuditCounts : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<(string Instrument, string Tag), long> _sums = new();

    public AuditCounts(AuditMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, metrics.Meter))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var tag = tags.Length == 0 ? "" : tags[0].Value as string ?? "";
            _sums.AddOrUpdate((instrument.Name, tag), value, (_, sum) => sum + value);
        });
        _listener.Start();
    }

    public long EventsTotal => Sum("apiserver_audit_event_total", "");

    public long RequestsRejected => Sum("apiserver_audit_requests_rejected_total", "");

    public long Errors(string plugin) => Sum("apiserver_audit_error_total", plugin);

    public long Dropped(string plugin) => Sum("portcullis_audit_events_dropped_total", plugin);

    public long LevelCount(AuditLevel level) => Sum("apiserver_audit_level_total", level.ToString());

    private long Sum(string instrument, string tag) => _sums.GetValueOrDefault((instrument, tag));

    public void Dispose() => _listener.Dispose();
}
