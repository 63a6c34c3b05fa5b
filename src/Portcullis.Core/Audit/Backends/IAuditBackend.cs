namespace Portcullis.Audit;

/// <summary>How a backend hands events to its destination (<c>--audit-{log,webhook}-mode</c>).</summary>
public enum AuditMode
{
    /// <summary>The caller waits until its events are stored; a failure is returned to the caller.</summary>
    Blocking,
    /// <summary>As <see cref="Blocking"/>; a failure to store RequestReceived fails the request (500).</summary>
    BlockingStrict,
    /// <summary>Events go to a bounded buffer and are stored in batches in the background; overflow is dropped and counted.</summary>
    Batch,
}

/// <summary>A destination for audit events (kube-apiserver's audit.Backend).</summary>
public interface IAuditBackend
{
    /// <summary>The plugin name used in metrics: <c>log</c> or <c>webhook</c>.</summary>
    string Name { get; }

    AuditMode Mode { get; }

    /// <summary>
    /// Stores or enqueues <paramref name="events"/>. In the blocking modes this completes once they are stored and throws
    /// <see cref="AuditBackendException"/> when they cannot be; in batch mode it never waits for I/O and never throws.
    /// </summary>
    ValueTask ProcessAsync(IReadOnlyList<AuditEvent> events, CancellationToken cancellationToken = default);

    /// <summary>Writes out everything accepted so far (buffered batches included).</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken = default);

    /// <summary>Stops accepting events, stores every event already accepted and releases the destination.</summary>
    ValueTask ShutdownAsync(CancellationToken cancellationToken = default);
}

/// <summary>Thrown by a blocking backend whose events could not be stored.</summary>
public sealed class AuditBackendException : Exception
{
    public AuditBackendException()
    {
        Plugin = "";
    }

    public AuditBackendException(string message) : base(message)
    {
        Plugin = "";
    }

    public AuditBackendException(string message, Exception innerException) : base(message, innerException)
    {
        Plugin = "";
    }

    public AuditBackendException(string plugin, string message, Exception? innerException)
        : base(message, innerException)
    {
        Plugin = plugin;
    }

    /// <summary><c>log</c> or <c>webhook</c>.</summary>
    public string Plugin { get; }
}

/// <summary>Parses mode names as the configuration and kube-apiserver's flags spell them.</summary>
public static class AuditModes
{
    public static bool TryParse(string? text, out AuditMode mode)
    {
        switch (text)
        {
            case "blocking": mode = AuditMode.Blocking; return true;
            case "blocking-strict": mode = AuditMode.BlockingStrict; return true;
            case "batch": mode = AuditMode.Batch; return true;
            default: mode = AuditMode.Blocking; return false;
        }
    }

    public static string Name(this AuditMode mode) => mode switch
    {
        AuditMode.Blocking => "blocking",
        AuditMode.BlockingStrict => "blocking-strict",
        _ => "batch",
    };
}
