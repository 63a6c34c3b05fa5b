using Portcullis.Authentication;

namespace Portcullis.Audit;

/// <summary>
/// One <c>audit.k8s.io/v1</c> Event: an immutable snapshot of a request at one stage. Serialized by
/// <see cref="AuditEventSerializer"/> with kube-apiserver's field names and order. There is deliberately no place for
/// request headers: credentials cannot reach an event.
/// </summary>
public sealed class AuditEvent
{
    public const string EventKind = "Event";
    public const string EventApiVersion = "audit.k8s.io/v1";

    private byte[]? _line;

    public required AuditLevel Level { get; init; }
    public required string AuditId { get; init; }
    public required AuditStage Stage { get; init; }
    public required string RequestUri { get; init; }
    public required string Verb { get; init; }
    /// <summary>The authenticated (pre-impersonation) user; null writes <c>"user":{}</c> as for a failed authentication.</summary>
    public UserInfo? User { get; init; }
    public UserInfo? ImpersonatedUser { get; init; }
    public IReadOnlyList<string> SourceIps { get; init; } = [];
    /// <summary>Already truncated by <see cref="AuditEventSerializer.TruncateUserAgent"/>.</summary>
    public string UserAgent { get; init; } = "";
    public AuditObjectReference? ObjectRef { get; init; }
    public AuditResponseStatus? ResponseStatus { get; init; }
    /// <summary>Raw JSON of the request object (Request level and above), written unchanged.</summary>
    public ReadOnlyMemory<byte> RequestObject { get; init; }
    /// <summary>Raw JSON of the response object (RequestResponse level), written unchanged.</summary>
    public ReadOnlyMemory<byte> ResponseObject { get; init; }
    public required DateTime RequestReceivedTimestamp { get; init; }
    public required DateTime StageTimestamp { get; init; }
    /// <summary>Annotations, written sorted by key as Go marshals a map.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Annotations { get; init; } = [];

    /// <summary>The event as one line of JSON without the trailing newline; computed once and shared by every backend.</summary>
    public ReadOnlyMemory<byte> Json
    {
        get
        {
            var line = LineArray;
            return line.AsMemory(0, line.Length - 1);
        }
    }

    /// <summary>
    /// The event's JSON followed by <c>\n</c>, as the log backend writes it: the same bytes as <see cref="Json"/>, in one
    /// array computed once, so that a single event is written without another copy. Never modify it.
    /// </summary>
    internal byte[] LineArray => _line ??= AuditEventSerializer.SerializeLine(this);
}

/// <summary>
/// The <c>objectRef</c> of an event, filled from the request's RequestInfo and completed (name, namespace, uid,
/// resourceVersion) from the request object's metadata as kube-apiserver does.
/// </summary>
public sealed record AuditObjectReference(
    string Resource = "",
    string Namespace = "",
    string Name = "",
    string ApiGroup = "",
    string ApiVersion = "",
    string Subresource = "")
{
    public string Uid { get; init; } = "";
    public string ResourceVersion { get; init; } = "";
}

/// <summary>
/// The <c>responseStatus</c> of an event: a subset of a Kubernetes Status. For responses that are not a Status only
/// <see cref="Code"/> is set, which writes <c>{"metadata":{},"code":N}</c>.
/// </summary>
public sealed record AuditResponseStatus(
    int Code,
    string Status = "",
    string Message = "",
    string Reason = "",
    AuditStatusDetails? Details = null);

/// <summary>Status <c>details</c>: name, group, kind and retryAfterSeconds (empty members are omitted).</summary>
public sealed record AuditStatusDetails(string Name = "", string Group = "", string Kind = "", int RetryAfterSeconds = 0);
