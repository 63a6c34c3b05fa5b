using Portcullis.Authentication;
using Portcullis.Authorization;

namespace Portcullis.Audit;

/// <summary>The outcome of emitting one stage.</summary>
/// <param name="Stage">The stage emitted.</param>
/// <param name="Failed">A blocking or blocking-strict backend could not store the event.</param>
/// <param name="StrictFailure">The failing backend runs in blocking-strict mode.</param>
public readonly record struct AuditWriteResult(AuditStage Stage, bool Failed, bool StrictFailure)
{
    /// <summary>The message kube-apiserver answers (HTTP 500) when a strict audit backend fails.</summary>
    public const string FailedToStoreMessage = "failed to store audit event";

    /// <summary>
    /// True when the gateway must not serve the request and answer 500 <see cref="FailedToStoreMessage"/> instead:
    /// the RequestReceived event could not be stored by a blocking or blocking-strict backend (fail closed).
    /// </summary>
    public bool RejectRequest => Failed && Stage == AuditStage.RequestReceived;
}

/// <summary>
/// The audit record of one request, created by <see cref="AuditSink.BeginRequest"/> once the request is authenticated.
/// The gateway adds what it learns (impersonated user, annotations, bodies, response status) and emits each stage;
/// every stage snapshots the current state into an <see cref="AuditEvent"/>. Annotations may be added from any thread.
/// A request whose policy level is None gets a shared no-op instance.
/// </summary>
public sealed class AuditRequest
{
    /// <summary>The no-op record of a request that is not audited.</summary>
    public static AuditRequest Disabled { get; } = new();

    /// <summary>
    /// The default of <see cref="MaxObjectBytes"/>: kube-apiserver's default <c>--max-request-body-bytes</c> (3 MiB), so
    /// that every request body kube-apiserver accepts can be recorded.
    /// </summary>
    public const int DefaultMaxObjectBytes = 3 * 1024 * 1024;

    private readonly AuditSink? _sink;
    private readonly Lock _gate = new();
    private readonly RequestInfo? _requestInfo;
    private List<KeyValuePair<string, string>>? _annotations;
    private UserInfo? _impersonatedUser;
    private AuditResponseStatus? _status;
    private ReadOnlyMemory<byte> _requestObject;
    private ReadOnlyMemory<byte> _responseObject;
    private int _emitted;
    private AuditObjectReference? _objectRef;

    private AuditRequest()
    {
        MaxObjectBytes = DefaultMaxObjectBytes;
        AuditId = "";
        RequestUri = "";
        Verb = "";
        SourceIps = [];
        UserAgent = "";
    }

    internal AuditRequest(AuditSink sink, AuditPolicyDecision decision, string auditId, string requestUri, string verb,
        UserInfo? user, IReadOnlyList<string> sourceIps, string? userAgent, RequestInfo requestInfo, DateTime receivedTimestamp,
        int maxObjectBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxObjectBytes);
        MaxObjectBytes = maxObjectBytes;
        _sink = sink;
        Decision = decision;
        AuditId = auditId;
        RequestUri = requestUri;
        Verb = verb;
        User = user;
        SourceIps = sourceIps;
        UserAgent = AuditEventSerializer.TruncateUserAgent(userAgent);
        _requestInfo = requestInfo;
        RequestReceivedTimestamp = receivedTimestamp.Kind == DateTimeKind.Local ? receivedTimestamp.ToUniversalTime() : receivedTimestamp;
        if (requestInfo.IsResourceRequest)
        {
            _objectRef = new AuditObjectReference(requestInfo.Resource, requestInfo.Namespace, requestInfo.Name,
                requestInfo.ApiGroup, requestInfo.ApiVersion, requestInfo.Subresource);
        }
    }

    public AuditPolicyDecision Decision { get; }

    /// <summary>
    /// Largest request or response object kept in an event (the gateway passes <c>limits.maxRequestBodyBytes</c>); a
    /// larger one is left out and the event carries kube-apiserver's <c>audit.k8s.io/truncated: "true"</c>.
    /// </summary>
    public int MaxObjectBytes { get; }

    public AuditLevel Level => Decision.Level;

    /// <summary>False for requests the policy does not audit; every other member is then a no-op.</summary>
    public bool IsEnabled => _sink is not null && Decision.Level != AuditLevel.None;

    /// <summary>True when the gateway should capture the request body (level Request or above, resource request).</summary>
    public bool WantsRequestObject => IsEnabled && Level >= AuditLevel.Request && _requestInfo!.IsResourceRequest;

    /// <summary>True when the gateway should capture the response body (level RequestResponse, resource request).</summary>
    public bool WantsResponseObject => IsEnabled && Level >= AuditLevel.RequestResponse && _requestInfo!.IsResourceRequest;

    public string AuditId { get; }
    public string RequestUri { get; }
    public string Verb { get; }
    public UserInfo? User { get; }
    public IReadOnlyList<string> SourceIps { get; }
    public string UserAgent { get; }
    public AuditObjectReference? ObjectRef => _objectRef;
    public DateTime RequestReceivedTimestamp { get; }

    /// <summary>Records the user the request acts as (<c>kubectl --as</c>); the event's <c>user</c> stays the authenticated one.</summary>
    public void SetImpersonatedUser(UserInfo? user)
    {
        if (IsEnabled)
        {
            _impersonatedUser = user;
        }
    }

    /// <summary>
    /// Adds an annotation such as <c>authorization.k8s.io/decision</c> or <c>portcullis.dev/denied-by</c>. As in
    /// kube-apiserver the first value of a key is kept. Values must not contain credentials.
    /// </summary>
    public void AddAnnotation(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!IsEnabled)
        {
            return;
        }
        lock (_gate)
        {
            _annotations ??= new List<KeyValuePair<string, string>>(4);
            foreach (var a in _annotations)
            {
                if (a.Key == key)
                {
                    return;
                }
            }
            _annotations.Add(new(key, value ?? ""));
        }
    }

    /// <summary>Sets the response status: just the code for a response that is not a Status, else its fields too.</summary>
    public void SetResponseStatus(int code, string status = "", string message = "", string reason = "", AuditStatusDetails? details = null)
    {
        if (IsEnabled)
        {
            _status = new AuditResponseStatus(code, status, message, reason, details);
        }
    }

    public void SetResponseStatus(AuditResponseStatus status)
    {
        if (IsEnabled)
        {
            _status = status;
        }
    }

    /// <summary>
    /// Sets the response status from a response body: a Kubernetes <c>Status</c> object gives status, message, reason and
    /// details; anything else (a Pod, plain text) gives only the code.
    /// </summary>
    public void SetResponseStatusFromBody(int code, ReadOnlySpan<byte> body)
    {
        if (IsEnabled)
        {
            _status = AuditResponseStatusParser.FromBody(code, body);
        }
    }

    /// <summary>
    /// The request body (JSON) of a write. At every audited level its metadata completes objectRef (name, namespace,
    /// uid, resourceVersion where RequestInfo left them empty, as for a create); the body itself is kept only when
    /// <see cref="WantsRequestObject"/>, compacted, and left out with the truncated annotation when it is larger than
    /// <see cref="MaxObjectBytes"/>. Bytes that are not valid UTF-8 are read as U+FFFD, as kube-apiserver's decoder
    /// reads them; a body that is not a JSON object is left out. Never throws for any content. The bytes are referenced,
    /// not copied: pass a buffer that is not reused.
    /// </summary>
    public void SetRequestObject(ReadOnlyMemory<byte> json)
    {
        if (!IsEnabled || !_requestInfo!.IsResourceRequest)
        {
            return;
        }
        json = AuditEventSerializer.ReplaceInvalidUtf8(json);
        CompleteObjectRef(json.Span);
        if (WantsRequestObject)
        {
            _requestObject = Bound(json);
        }
    }

    /// <summary>
    /// The request had a body that was not read because it was larger than a limit (the gateway refused it with 413):
    /// at <c>Request</c> level and above the event says so with <c>audit.k8s.io/truncated: "true"</c>.
    /// </summary>
    public void SetRequestObjectTruncated()
    {
        if (WantsRequestObject)
        {
            AddAnnotation(AuditAnnotations.Truncated, "true");
        }
    }

    private void CompleteObjectRef(ReadOnlySpan<byte> json)
    {
        var current = _objectRef;
        if (current is null || (current.Name.Length > 0 && current.Namespace.Length > 0 && current.Uid.Length > 0 && current.ResourceVersion.Length > 0))
        {
            return;
        }
        var (name, ns, uid, rv) = AuditResponseStatusParser.ReadMetadata(json);
        _objectRef = current with
        {
            Name = current.Name.Length > 0 ? current.Name : name,
            Namespace = current.Namespace.Length > 0 ? current.Namespace : ns,
            Uid = current.Uid.Length > 0 ? current.Uid : uid,
            ResourceVersion = current.ResourceVersion.Length > 0 ? current.ResourceVersion : rv,
        };
    }

    /// <summary>
    /// The response body (JSON). Kept only when <see cref="WantsResponseObject"/>, as <see cref="SetRequestObject"/> keeps
    /// the request body; never pass a streamed (watch) body.
    /// </summary>
    public void SetResponseObject(ReadOnlyMemory<byte> json)
    {
        if (WantsResponseObject)
        {
            _responseObject = Bound(json);
        }
    }

    /// <summary>The response body was larger than <see cref="MaxObjectBytes"/> and not kept: the event says so.</summary>
    public void SetResponseObjectTruncated()
    {
        if (WantsResponseObject)
        {
            AddAnnotation(AuditAnnotations.Truncated, "true");
        }
    }

    // The limit applies to the object as recorded (compacted), so whitespace padding neither hides a body nor counts.
    private ReadOnlyMemory<byte> Bound(ReadOnlyMemory<byte> json)
    {
        var prepared = AuditEventSerializer.PrepareObject(json, Decision.OmitManagedFields);
        if (prepared.Length > MaxObjectBytes)
        {
            AddAnnotation(AuditAnnotations.Truncated, "true");
            return ReadOnlyMemory<byte>.Empty;
        }
        return prepared;
    }

    /// <summary>
    /// Emits <paramref name="stage"/> if the policy keeps it: each stage at most once, ResponseStarted only for
    /// long-running requests, and ResponseComplete without a status as kube-apiserver's "Connection closed early".
    /// Await the result in every mode; check <see cref="AuditWriteResult.RejectRequest"/> after RequestReceived.
    /// </summary>
    /// <param name="stage">RequestReceived, ResponseStarted or ResponseComplete (use <see cref="EmitPanicAsync"/> for Panic).</param>
    /// <param name="timestamp">The stage time; default now. RequestReceived always uses the receive time.</param>
    public ValueTask<AuditWriteResult> EmitAsync(AuditStage stage, DateTime? timestamp = null, CancellationToken cancellationToken = default)
    {
        if (!IsEnabled || !Decision.ShouldEmit(stage))
        {
            return new(new AuditWriteResult(stage, false, false));
        }
        if (stage == AuditStage.ResponseStarted && !_requestInfo!.IsLongRunning)
        {
            return new(new AuditWriteResult(stage, false, false));
        }
        if (stage == AuditStage.Panic)
        {
            return EmitPanicAsync("", timestamp, cancellationToken);
        }
        var bit = 1 << (int)stage;
        if ((Interlocked.Or(ref _emitted, bit) & bit) != 0)
        {
            return new(new AuditWriteResult(stage, false, false));
        }
        var status = _status;
        if (stage == AuditStage.ResponseComplete && status is null)
        {
            status = new AuditResponseStatus(200, "Success", "Connection closed early");
        }
        var when = stage == AuditStage.RequestReceived ? RequestReceivedTimestamp : timestamp ?? _sink!.UtcNow();
        return _sink!.ProcessAsync(Snapshot(stage, stage == AuditStage.RequestReceived ? null : status, when), cancellationToken);
    }

    /// <summary>Emits the Panic stage: code 500, reason InternalError, message <c>APIServer panic'd: &lt;message&gt;</c>.</summary>
    public ValueTask<AuditWriteResult> EmitPanicAsync(string message, DateTime? timestamp = null, CancellationToken cancellationToken = default)
    {
        if (!IsEnabled || !Decision.ShouldEmit(AuditStage.Panic))
        {
            return new(new AuditWriteResult(AuditStage.Panic, false, false));
        }
        var bit = 1 << (int)AuditStage.Panic;
        if ((Interlocked.Or(ref _emitted, bit) & bit) != 0)
        {
            return new(new AuditWriteResult(AuditStage.Panic, false, false));
        }
        var status = new AuditResponseStatus(500, "Failure", "APIServer panic'd: " + message, "InternalError");
        return _sink!.ProcessAsync(Snapshot(AuditStage.Panic, status, timestamp ?? _sink.UtcNow()), cancellationToken);
    }

    internal AuditEvent Snapshot(AuditStage stage, AuditResponseStatus? status, DateTime stageTimestamp)
    {
        KeyValuePair<string, string>[] annotations;
        lock (_gate)
        {
            annotations = _annotations is null ? [] : [.. _annotations];
        }
        if (annotations.Length > 1)
        {
            Array.Sort(annotations, static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        }
        var level = Level;
        return new AuditEvent
        {
            Level = level,
            AuditId = AuditId,
            Stage = stage,
            RequestUri = RequestUri,
            Verb = Verb,
            User = User,
            ImpersonatedUser = _impersonatedUser,
            SourceIps = SourceIps,
            UserAgent = UserAgent,
            ObjectRef = _objectRef,
            ResponseStatus = status,
            RequestObject = level >= AuditLevel.Request ? _requestObject : default,
            ResponseObject = level >= AuditLevel.RequestResponse ? _responseObject : default,
            RequestReceivedTimestamp = RequestReceivedTimestamp,
            StageTimestamp = stageTimestamp.Kind == DateTimeKind.Local ? stageTimestamp.ToUniversalTime() : stageTimestamp,
            Annotations = annotations,
        };
    }
}
