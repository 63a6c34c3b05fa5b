namespace Portcullis.Audit;

/// <summary>Settings of the log backend (<c>audit.log</c>, kube-apiserver's <c>--audit-log-*</c> flags).</summary>
public sealed record AuditLogOptions
{
    /// <summary>The file to write, or <c>-</c> for standard output.</summary>
    public required string Path { get; init; }

    /// <summary>Days to keep rotated files, judged by the time in their names; 0 keeps them regardless of age.</summary>
    public int MaxAgeDays { get; init; }

    /// <summary>Rotated files to keep; 0 keeps all.</summary>
    public int MaxBackups { get; init; }

    /// <summary>Size in megabytes (2^20 bytes) at which the file is rotated; 0 never rotates (kube-apiserver 1.36).</summary>
    public int MaxSizeMegabytes { get; init; }

    public AuditMode Mode { get; init; } = AuditMode.Blocking;

    public AuditBatchOptions Batch { get; init; } = AuditBatchOptions.LogDefaults;
}

/// <summary>
/// Writes one JSON Event per line to a file (created 0600) or standard output, rotating as kube-apiserver's lumberjack
/// logger does: when the next event would take the file past MaxSize it is renamed to
/// <c>&lt;name&gt;-&lt;UTC yyyy-MM-ddTHH-mm-ss.fff&gt;&lt;ext&gt;</c> and a new file started; backups beyond MaxBackups or older
/// than MaxAge days are deleted. Every backend of one full path in the process writes through one shared open file
/// (<see cref="AuditLogFile"/>), which rotates with the settings of the newest of them still open.
/// </summary>
public sealed class AuditLogBackend : AuditBackendBase
{
    public const string PluginName = "log";

    private readonly AuditLogOptions _options;
    private readonly AuditLogFile _file;
    private int _detached;

    public AuditLogBackend(AuditLogOptions options, AuditMetrics metrics, Action<AuditBackendError>? onError = null,
        TimeProvider? timeProvider = null)
        : base(PluginName, (options ?? throw new ArgumentNullException(nameof(options))).Mode, options.Batch, metrics, onError, timeProvider)
    {
        if (string.IsNullOrEmpty(options.Path))
        {
            throw new ArgumentException("the audit log path is empty", nameof(options));
        }
        _options = options;
        _file = AuditLogFile.Attach(this, options.Path);
    }

    /// <summary>The file being written (<c>-</c> for standard output).</summary>
    public string Path => _options.Path;

    /// <summary>This backend's settings; the shared file rotates with the newest open backend's.</summary>
    internal AuditLogOptions Options => _options;

    internal TimeProvider Clock => Time;

    internal void ReportFileError(string message, Exception exception) => ReportError(0, message, exception);

    protected override ValueTask WriteBatchAsync(IReadOnlyList<AuditEvent> events, CancellationToken cancellationToken)
    {
        // Serialize outside any lock so concurrent writers format in parallel. One event (every blocking write) is
        // written from its own line array; a batch is joined into one buffer for one write.
        byte[] buffer;
        if (events.Count == 1)
        {
            buffer = events[0].LineArray;
        }
        else
        {
            var total = 0;
            for (var i = 0; i < events.Count; i++)
            {
                total += events[i].LineArray.Length;
            }
            buffer = new byte[total];
            var at = 0;
            for (var i = 0; i < events.Count; i++)
            {
                var line = events[i].LineArray;
                line.CopyTo(buffer, at);
                at += line.Length;
            }
        }
        return _file.WriteAsync(buffer);
    }

    protected override ValueTask CloseAsync()
    {
        if (Interlocked.Exchange(ref _detached, 1) == 0)
        {
            _file.Detach(this);
        }
        return default;
    }
}
