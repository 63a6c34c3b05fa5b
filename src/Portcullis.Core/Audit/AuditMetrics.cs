namespace Portcullis.Audit;

/// <summary>
/// Plain counters behind kube-apiserver's audit metrics, for the gateway to export:
/// <c>apiserver_audit_event_total</c> (<see cref="EventsTotal"/>), <c>apiserver_audit_error_total{plugin}</c>
/// (<see cref="Errors"/>), <c>apiserver_audit_level_total{level}</c> (<see cref="LevelCount"/>),
/// <c>apiserver_audit_requests_rejected_total</c> (<see cref="RequestsRejected"/>), plus Portcullis's own
/// <c>portcullis_audit_events_dropped_total{plugin}</c> (<see cref="Dropped"/>).
/// </summary>
public sealed class AuditMetrics
{
    /// <summary>The plugin label values, as kube-apiserver names its backends.</summary>
    public static readonly IReadOnlyList<string> Plugins = ["log", "webhook"];

    private long _eventsTotal;
    private long _requestsRejected;
    private readonly long[] _levels = new long[4];
    private readonly long[] _errors = new long[2];
    private readonly long[] _dropped = new long[2];

    /// <summary>Events handed to the backends (one per emitted stage).</summary>
    public long EventsTotal => Interlocked.Read(ref _eventsTotal);

    /// <summary>Requests failed because a blocking backend could not store their RequestReceived event.</summary>
    public long RequestsRejected => Interlocked.Read(ref _requestsRejected);

    /// <summary>Requests evaluated at <paramref name="level"/> (counted once per request, None included).</summary>
    public long LevelCount(AuditLevel level) => Interlocked.Read(ref _levels[(int)level]);

    /// <summary>Events a plugin failed to store (<c>log</c> or <c>webhook</c>).</summary>
    public long Errors(string plugin) => Interlocked.Read(ref _errors[PluginIndex(plugin)]);

    /// <summary>Events a plugin dropped because its buffer was full or it had shut down.</summary>
    public long Dropped(string plugin) => Interlocked.Read(ref _dropped[PluginIndex(plugin)]);

    internal void AddEvent() => Interlocked.Increment(ref _eventsTotal);

    internal void AddLevel(AuditLevel level) => Interlocked.Increment(ref _levels[(int)level]);

    internal void AddRejected() => Interlocked.Increment(ref _requestsRejected);

    internal void AddErrors(string plugin, int count) => Interlocked.Add(ref _errors[PluginIndex(plugin)], count);

    internal void AddDropped(string plugin, int count) => Interlocked.Add(ref _dropped[PluginIndex(plugin)], count);

    private static int PluginIndex(string plugin) => plugin == "webhook" ? 1 : 0;
}

/// <summary>A backend failure report for the gateway's logger; never carries credentials.</summary>
/// <param name="Plugin"><c>log</c> or <c>webhook</c>.</param>
/// <param name="Events">How many events the failure concerns.</param>
/// <param name="Message">What went wrong, for example the I/O error or the webhook's HTTP status.</param>
/// <param name="Exception">The underlying exception, if any.</param>
public sealed record AuditBackendError(string Plugin, int Events, string Message, Exception? Exception);
