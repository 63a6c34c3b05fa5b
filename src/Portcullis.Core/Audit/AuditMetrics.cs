using System.Diagnostics.Metrics;

namespace Portcullis.Audit;

/// <summary>
/// kube-apiserver's audit metrics as <see cref="System.Diagnostics.Metrics"/> instruments, recorded where the audit code
/// counts (the sink and its backends), named as kube-apiserver names them:
/// <c>apiserver_audit_event_total</c> (<see cref="Events"/>), <c>apiserver_audit_error_total{plugin}</c>
/// (<see cref="Errors"/>), <c>apiserver_audit_level_total{level}</c> (<see cref="Levels"/>),
/// <c>apiserver_audit_requests_rejected_total</c> (<see cref="RequestsRejected"/>), plus Portcullis's own
/// <c>portcullis_audit_events_dropped_total{plugin}</c> (<see cref="Dropped"/>). Tag values come from fixed sets
/// (<see cref="Plugins"/>, the four <see cref="AuditLevel"/> names). The gateway passes the <see cref="Meter"/> its host
/// owns and exports what a listener on that meter sees; without one, the instance makes (and disposes) a meter of its own.
/// </summary>
public sealed class AuditMetrics : IDisposable
{
    /// <summary>The name of the meter made when none is given.</summary>
    public const string MeterName = "Portcullis.Audit";

    /// <summary>The plugin tag values, as kube-apiserver names its backends.</summary>
    public static readonly IReadOnlyList<string> Plugins = ["log", "webhook"];

    // Cached tag values: recording allocates nothing (an enum's ToString would).
    private static readonly string[] LevelNames = [.. Enum.GetValues<AuditLevel>().Select(l => l.ToString())];

    private readonly bool _ownsMeter;

    /// <summary>Records on a meter of its own (tests, tools); disposed with this instance.</summary>
    public AuditMetrics()
        : this(new Meter(MeterName), ownsMeter: true)
    {
    }

    /// <summary>Records on <paramref name="meter"/>, which the caller owns (the gateway: one meter per host).</summary>
    public AuditMetrics(Meter meter)
        : this(meter, ownsMeter: false)
    {
    }

    private AuditMetrics(Meter meter, bool ownsMeter)
    {
        ArgumentNullException.ThrowIfNull(meter);
        Meter = meter;
        _ownsMeter = ownsMeter;
        Events = meter.CreateCounter<long>("apiserver_audit_event_total", description: "Counter of audit events generated and sent to the audit backend.");
        Errors = meter.CreateCounter<long>("apiserver_audit_error_total", description: "Counter of audit events that failed to be audited properly.");
        Levels = meter.CreateCounter<long>("apiserver_audit_level_total", description: "Counter of policy levels for audit events (1 per request).");
        RequestsRejected = meter.CreateCounter<long>("apiserver_audit_requests_rejected_total", description: "Counter of apiserver requests rejected due to an error in audit logging backend.");
        Dropped = meter.CreateCounter<long>("portcullis_audit_events_dropped_total", description: "Audit events dropped by a batch backend whose buffer was full or that gave up.");
    }

    /// <summary>The meter the instruments belong to.</summary>
    public Meter Meter { get; }

    /// <summary>Events handed to the backends (one per emitted stage).</summary>
    public Counter<long> Events { get; }

    /// <summary>Events a plugin failed to store; tag <c>plugin</c> (<c>log</c> or <c>webhook</c>).</summary>
    public Counter<long> Errors { get; }

    /// <summary>Requests evaluated at a level (once per request, None included); tag <c>level</c>.</summary>
    public Counter<long> Levels { get; }

    /// <summary>Requests failed because a blocking backend could not store their RequestReceived event.</summary>
    public Counter<long> RequestsRejected { get; }

    /// <summary>Events a plugin dropped because its buffer was full or it had shut down; tag <c>plugin</c>.</summary>
    public Counter<long> Dropped { get; }

    internal void AddEvent() => Events.Add(1);

    internal void AddLevel(AuditLevel level) => Levels.Add(1, new KeyValuePair<string, object?>("level", LevelNames[(int)level]));

    internal void AddRejected() => RequestsRejected.Add(1);

    internal void AddErrors(string plugin, int count) => Errors.Add(count, new KeyValuePair<string, object?>("plugin", Plugin(plugin)));

    internal void AddDropped(string plugin, int count) => Dropped.Add(count, new KeyValuePair<string, object?>("plugin", Plugin(plugin)));

    // Backend names are "log" and "webhook"; anything else (a test double) is counted as log, as before.
    private static string Plugin(string plugin) => plugin == "webhook" ? "webhook" : "log";

    public void Dispose()
    {
        if (_ownsMeter)
        {
            Meter.Dispose();
        }
    }
}

/// <summary>A backend failure report for the gateway's logger; never carries credentials.</summary>
/// <param name="Plugin"><c>log</c> or <c>webhook</c>.</param>
/// <param name="Events">How many events the failure concerns.</param>
/// <param name="Message">What went wrong, for example the I/O error or the webhook's HTTP status.</param>
/// <param name="Exception">The underlying exception, if any.</param>
public sealed record AuditBackendError(string Plugin, int Events, string Message, Exception? Exception);
