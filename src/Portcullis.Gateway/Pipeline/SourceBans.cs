using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using Portcullis.Audit;
using Portcullis.Authentication;
using Portcullis.Configuration;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Snapshots;
using Portcullis.Network;

namespace Portcullis.Gateway.Pipeline;

/// <summary>
/// <c>network.autoBan</c> in the gateway: one <see cref="AutoBanner"/> per host, built from the configuration the host
/// started with (its settings change only at a restart; a reload that changes them is reported as restart-required).
/// The refusal path records failures (<see cref="RecordFailure"/>), the accept check asks <see cref="IsBanned"/>, and
/// the admin endpoints ban and unban by hand. Every ban and unban is logged, counted and audited, and every ban (automatic
/// or manual) aborts the connections the address still has open (<see cref="Connections"/>), except the one whose refused
/// request imposed it, which is closed after its answer.
/// </summary>
internal sealed class SourceBans : IDisposable
{
    /// <summary>The annotation of a ban's audit event: the banned address.</summary>
    public const string BanAnnotation = "portcullis.dev/ban";
    /// <summary>The annotation of an unban's audit event: the address whose ban ended.</summary>
    public const string UnbanAnnotation = "portcullis.dev/unban";
    /// <summary>The user of ban and unban audit events.</summary>
    public const string AuditUser = "system:portcullis:autoban";

    private readonly SnapshotHolder _snapshots;
    private readonly GatewayMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;

    // The connection whose refused request is being recorded on this thread (AutoBanner raises its events synchronously).
    [ThreadStatic]
    private static string? t_sparedConnection;

    private SourceBans(AutoBanner? banner, SnapshotHolder snapshots, GatewayMetrics metrics, ILogger logger, TimeProvider time)
    {
        Banner = banner;
        _snapshots = snapshots;
        _metrics = metrics;
        _logger = logger;
        _time = time;
    }

    /// <summary>Null when <c>network.autoBan.enabled</c> is false.</summary>
    public AutoBanner? Banner { get; private set; }

    /// <summary>The open connections of each source, registered by the connection filter while auto-ban is on.</summary>
    public SourceConnections Connections { get; } = new();

    /// <summary>
    /// Builds the host's banner from <paramref name="config"/> and restores its state file.
    /// </summary>
    /// <exception cref="ConfigurationException">The state file cannot be read or is not a ban state file (fail closed).</exception>
    public static SourceBans Create(GatewayConfiguration config, SnapshotHolder snapshots, GatewayMetrics metrics, ILogger logger, TimeProvider time)
    {
        var bans = new SourceBans(null, snapshots, metrics, logger, time);
        var settings = config.Network.AutoBan;
        if (!settings.Enabled)
        {
            return bans;
        }
        var options = Options(config);
        try
        {
            bans.Banner = new AutoBanner(options, time, bans.OnEvent, e => Log.BanStateFailed(logger, e.Message));
        }
        catch (AutoBanStateException e)
        {
            throw new ConfigurationException([new ConfigError(config.SourcePath, config.LineOf("network.autoBan.stateFile"), "network.autoBan.stateFile",
                $"{e.Message}; the gateway does not start without its bans (fix or remove the file)")]);
        }
        metrics.ObserveActiveBans(() => bans.Banner.ActiveBanCount);
        foreach (var reason in Enum.GetValues<BanReason>())
        {
            metrics.BansTotal.Add(0, new KeyValuePair<string, object?>("reason", Label(reason))); // every reason present from the start, at 0
        }
        return bans;
    }

    /// <summary>The engine's settings from <c>network.autoBan</c> (paths relative to the configuration file).</summary>
    public static AutoBanOptions Options(GatewayConfiguration config)
    {
        var settings = config.Network.AutoBan;
        return new AutoBanOptions
        {
            Failures = settings.Failures,
            Window = settings.Window,
            Duration = settings.Duration,
            MaxDuration = settings.MaxDuration,
            StateFile = settings.StateFile.Length == 0 ? null : config.Resolve(settings.StateFile),
            CountAuthorizationFailures = settings.CountForbidden,
            NeverBan = CidrSet.Parse(settings.NeverBan),
        };
    }

    public bool IsBanned(IPAddress address) => Banner is { } banner && banner.IsBanned(address);

    /// <summary>
    /// Counts a refused request against its source; true when the source is banned now (by this failure or before),
    /// so its connection should be closed after the answer. A ban imposed by this failure aborts the source's other open
    /// connections at once; <paramref name="connectionId"/> (the refused request's connection) is spared for its answer.
    /// </summary>
    public bool RecordFailure(IPAddress address, FailureReason reason, string? connectionId = null)
    {
        if (Banner is not { } banner)
        {
            return false;
        }
        t_sparedConnection = connectionId;
        try
        {
            return banner.RecordFailure(address, reason) is not null || banner.IsBanned(address);
        }
        finally
        {
            t_sparedConnection = null;
        }
    }

    public static string Label(BanReason reason) => reason switch
    {
        BanReason.Authentication => "authentication",
        BanReason.Authorization => "authorization",
        _ => "manual",
    };

    public static string Label(UnbanReason reason) => reason switch
    {
        UnbanReason.Expired => "expired",
        UnbanReason.Manual => "manual",
        _ => "evicted",
    };

    private void OnEvent(BanEvent e)
    {
        var address = e.Address.ToString();
        var reason = Label(e.Reason);
        var comment = e.Comment is { Length: > 0 } c ? $": {c}" : "";
        if (e.Kind == BanEventKind.Banned)
        {
            _metrics.BansTotal.Add(1, new KeyValuePair<string, object?>("reason", reason));
            Log.Banned(_logger, address, e.ExpiresAt, GoDuration.Format(e.Duration), reason, e.Failures, e.Ban.Level, comment);
            Connections.AbortAll(e.Address, t_sparedConnection, "the address is banned");
        }
        else
        {
            Log.Unbanned(_logger, address, Label(e.UnbanReason ?? UnbanReason.Expired), reason, e.Failures, comment);
        }
        Audit(e, address, reason);
    }

    /// <summary>
    /// One audit event per ban and per unban, whatever the audit policy's rules say (a ban is not a request): level
    /// Metadata, stage ResponseComplete, user <see cref="AuditUser"/>, sourceIPs the address, verb <c>create</c> or
    /// <c>delete</c> on <c>/bans/{address}</c>, and the <c>portcullis.dev/ban</c> or <c>portcullis.dev/unban</c>
    /// annotation with the reason, failures, duration and expiry beside it.
    /// </summary>
    private void Audit(BanEvent e, string address, string reason)
    {
        var snapshot = _snapshots.Current;
        if (!snapshot.TryEnter())
        {
            return; // retired at shutdown: its sink is closing
        }
        try
        {
            var sink = snapshot.AuditSink;
            if (!sink.IsEnabled)
            {
                snapshot.Exit();
                return;
            }
            var now = _time.GetUtcNow().UtcDateTime;
            var banned = e.Kind == BanEventKind.Banned;
            var annotations = new List<KeyValuePair<string, string>>
            {
                new(banned ? BanAnnotation : UnbanAnnotation, address),
                new("portcullis.dev/ban-reason", reason),
                new("portcullis.dev/ban-failures", e.Failures.ToString(CultureInfo.InvariantCulture)),
                new("portcullis.dev/ban-duration", GoDuration.Format(e.Duration)),
                new("portcullis.dev/ban-expires", e.ExpiresAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)),
                new("portcullis.dev/ban-level", e.Ban.Level.ToString(CultureInfo.InvariantCulture)),
            };
            if (!banned)
            {
                annotations.Add(new("portcullis.dev/unban-reason", Label(e.UnbanReason ?? UnbanReason.Expired)));
            }
            if (e.Comment is { Length: > 0 } comment)
            {
                annotations.Add(new("portcullis.dev/ban-comment", comment));
            }
            var auditEvent = new AuditEvent
            {
                Level = AuditLevel.Metadata,
                AuditId = Guid.NewGuid().ToString(),
                Stage = AuditStage.ResponseComplete,
                RequestUri = "/bans/" + address,
                Verb = banned ? "create" : "delete",
                User = new UserInfo(AuditUser, "", [], new Dictionary<string, IReadOnlyList<string>>()),
                SourceIps = [address],
                UserAgent = "portcullis",
                RequestReceivedTimestamp = now,
                StageTimestamp = now,
                Annotations = annotations,
            };
            var pending = sink.ProcessAsync(auditEvent);
            if (pending.IsCompleted)
            {
                snapshot.Exit();
            }
            else
            {
                _ = pending.AsTask().ContinueWith(_ => snapshot.Exit(), TaskScheduler.Default);
            }
        }
        catch
        {
            snapshot.Exit();
            throw;
        }
    }

    public void Dispose() => Banner?.Dispose();
}
