using Portcullis.Authentication;
using Portcullis.Authorization;
using Portcullis.Configuration;
using Portcullis.Kubeconfig;

namespace Portcullis.Audit;

/// <summary>
/// Layer 6 in one object: the current policy snapshot, the configured backends (log, webhook) and the counters.
/// The gateway creates it from the configuration, calls <see cref="BeginRequest"/> per authenticated request (or
/// <see cref="AuditFailedAuthenticationAsync"/> for a 401), and calls <see cref="ShutdownAsync"/> on SIGTERM so every
/// buffered batch is written before the process exits.
/// </summary>
public sealed class AuditSink : IAsyncDisposable
{
    private readonly IAuditBackend[] _backends;
    private readonly TimeProvider _time;
    private volatile AuditPolicy? _policy;
    private int _shutdown;
    private bool _ownsMetrics;

    public AuditSink(AuditPolicy? policy, IReadOnlyList<IAuditBackend> backends, AuditMetrics? metrics = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(backends);
        _policy = policy;
        _backends = [.. backends];
        _ownsMetrics = metrics is null;
        Metrics = metrics ?? new AuditMetrics();
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>
    /// Builds the sink that <paramref name="configuration"/>'s <c>audit</c> section describes: no policy file means audit
    /// is off (as kube-apiserver without <c>--audit-policy-file</c>); a log path adds the log backend, a webhook config file
    /// the webhook backend. Throws <see cref="ConfigurationException"/> naming file and line for a bad policy or kubeconfig.
    /// </summary>
    /// <param name="onError">Receives backend failures for the gateway's logger.</param>
    public static AuditSink Create(GatewayConfiguration configuration, AuditMetrics? metrics = null,
        Action<AuditBackendError>? onError = null, TimeProvider? timeProvider = null)
    {
        var errors = new List<ConfigError>();
        var plan = Plan(configuration, errors);
        return plan is null ? throw new ConfigurationException(errors) : Create(plan, metrics, onError, timeProvider);
    }

    /// <summary>
    /// Reads everything the <c>audit</c> section names (the policy, the webhook's kubeconfig) and checks its modes,
    /// without opening the log or connecting anywhere; returns null and adds every error when something is wrong.
    /// The gateway does this at every load and reload, so that a configuration the sink could not be built from is
    /// refused before anything is served.
    /// </summary>
    public static AuditSinkPlan? Plan(GatewayConfiguration configuration, List<ConfigError> errors)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(errors);
        var audit = configuration.Audit;
        var before = errors.Count;
        AuditPolicy? policy = null;
        if (!string.IsNullOrEmpty(audit.PolicyFile))
        {
            try
            {
                policy = AuditPolicyLoader.Load(configuration.Resolve(audit.PolicyFile));
            }
            catch (ConfigurationException ex)
            {
                errors.AddRange(ex.Errors);
            }
        }
        var source = string.IsNullOrEmpty(configuration.SourcePath) ? "(configuration)" : configuration.SourcePath;
        if (!AuditModes.TryParse(audit.Log.Mode, out var logMode))
        {
            errors.Add(new ConfigError(source, 0, "audit.log.mode", $"\"{audit.Log.Mode}\" must be blocking, blocking-strict or batch"));
        }
        if (!AuditModes.TryParse(audit.Webhook.Mode, out var webhookMode))
        {
            errors.Add(new ConfigError(source, 0, "audit.webhook.mode", $"\"{audit.Webhook.Mode}\" must be blocking, blocking-strict or batch"));
        }
        AuditLogOptions? log = null;
        if (policy is not null && !string.IsNullOrEmpty(audit.Log.Path))
        {
            log = new AuditLogOptions
            {
                Path = audit.Log.Path == "-" ? "-" : configuration.Resolve(audit.Log.Path),
                MaxAgeDays = audit.Log.MaxAge,
                MaxBackups = audit.Log.MaxBackup,
                MaxSizeMegabytes = audit.Log.MaxSize,
                Mode = logMode,
            };
        }
        AuditWebhookOptions? webhook = null;
        KubeconfigEndpoint? webhookEndpoint = null;
        if (!string.IsNullOrEmpty(audit.Webhook.ConfigFile))
        {
            webhook = new AuditWebhookOptions { KubeconfigPath = configuration.Resolve(audit.Webhook.ConfigFile), Mode = webhookMode };
            webhookEndpoint = KubeconfigFile.LoadEndpoint(webhook.KubeconfigPath, errors);
        }
        if (errors.Count > before)
        {
            return null;
        }
        return new AuditSinkPlan(policy, log, policy is null ? null : webhook, policy is null ? null : webhookEndpoint);
    }

    /// <summary>Builds the sink from a plan that <see cref="Plan"/> made.</summary>
    public static AuditSink Create(AuditSinkPlan plan, AuditMetrics? metrics = null,
        Action<AuditBackendError>? onError = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var ownsMetrics = metrics is null;
        metrics ??= new AuditMetrics();
        var backends = new List<IAuditBackend>();
        if (plan.Log is { } log)
        {
            backends.Add(new AuditLogBackend(log, metrics, onError, timeProvider));
        }
        if (plan.Webhook is { } webhook && plan.WebhookEndpoint is { } endpoint)
        {
            backends.Add(new AuditWebhookBackend(webhook, endpoint, metrics, onError, timeProvider));
        }
        return new AuditSink(plan.Policy, backends, metrics, timeProvider) { _ownsMetrics = ownsMetrics };
    }

    /// <summary>The <c>apiserver_audit_*</c> instruments this sink and its backends record on.</summary>
    public AuditMetrics Metrics { get; }

    /// <summary>The policy in force; null when audit is off.</summary>
    public AuditPolicy? Policy => _policy;

    public IReadOnlyList<IAuditBackend> Backends => _backends;

    /// <summary>True when a policy is loaded and at least one backend is configured.</summary>
    public bool IsEnabled => _policy is not null && _backends.Length > 0;

    /// <summary>Swaps in a reloaded policy (validate with <see cref="AuditPolicyLoader"/> first; a failed reload keeps the old one).</summary>
    public void UpdatePolicy(AuditPolicy? policy) => _policy = policy;

    internal DateTime UtcNow() => _time.GetUtcNow().UtcDateTime;

    /// <summary>
    /// Starts the audit record of an authenticated request. <paramref name="user"/> is the authenticated user before
    /// impersonation; <paramref name="verb"/> is RequestInfo's verb (lower-case method for non-resource requests);
    /// <paramref name="requestUri"/> is path and query as sent. Counts the request's level. Returns
    /// <see cref="AuditRequest.Disabled"/> when the policy says None. <paramref name="maxObjectBytes"/> bounds the request
    /// and response objects kept (<see cref="AuditRequest.MaxObjectBytes"/>).
    /// </summary>
    public AuditRequest BeginRequest(string auditId, string requestUri, string verb, UserInfo? user,
        IReadOnlyList<string> sourceIps, string? userAgent, RequestInfo requestInfo, DateTime receivedTimestamp,
        int maxObjectBytes = AuditRequest.DefaultMaxObjectBytes)
    {
        ArgumentNullException.ThrowIfNull(requestInfo);
        var policy = _policy;
        if (policy is null || _backends.Length == 0)
        {
            return AuditRequest.Disabled;
        }
        var decision = policy.Evaluate(user, requestInfo);
        Metrics.AddLevel(decision.Level);
        if (decision.Level == AuditLevel.None)
        {
            return AuditRequest.Disabled;
        }
        return new AuditRequest(this, decision, auditId, requestUri, verb, user, sourceIps ?? [], userAgent, requestInfo, receivedTimestamp, maxObjectBytes);
    }

    /// <summary>
    /// Audits a request that failed authentication as kube-apiserver does: the policy is evaluated with no user, and a
    /// single event at stage ResponseStarted is emitted with <c>user: {}</c> and the 401 Status as responseStatus
    /// (<see cref="Unauthorized"/> by default). <paramref name="annotations"/> (the gateway's
    /// <c>portcullis.dev/authentication</c> reason) are added to the event.
    /// </summary>
    public ValueTask<AuditWriteResult> AuditFailedAuthenticationAsync(string auditId, string requestUri, string verb,
        IReadOnlyList<string> sourceIps, string? userAgent, RequestInfo requestInfo, DateTime receivedTimestamp,
        AuditResponseStatus? status = null, DateTime? stageTimestamp = null, IReadOnlyDictionary<string, string>? annotations = null,
        CancellationToken cancellationToken = default)
    {
        var request = BeginRequest(auditId, requestUri, verb, null, sourceIps, userAgent, requestInfo, receivedTimestamp);
        if (!request.IsEnabled || !request.Decision.ShouldEmit(AuditStage.ResponseStarted))
        {
            return new(new AuditWriteResult(AuditStage.ResponseStarted, false, false));
        }
        if (annotations is not null)
        {
            foreach (var (key, value) in annotations)
            {
                request.AddAnnotation(key, value);
            }
        }
        var e = request.Snapshot(AuditStage.ResponseStarted, status ?? Unauthorized, stageTimestamp ?? UtcNow());
        return ProcessAsync(e, cancellationToken);
    }

    /// <summary>
    /// Audits a request the gateway refused before authentication (a malformed or ambiguous path, too many header
    /// lines): as for a failed authentication the policy is evaluated with no user, and a single event at stage
    /// <c>ResponseComplete</c> is emitted with <c>user: {}</c>, <paramref name="status"/> as responseStatus and
    /// <paramref name="annotations"/> (<see cref="AuditAnnotations.RejectedBy"/> and <see cref="AuditAnnotations.RejectReason"/>).
    /// </summary>
    public ValueTask<AuditWriteResult> AuditRefusedRequestAsync(string auditId, string requestUri, string verb,
        IReadOnlyList<string> sourceIps, string? userAgent, RequestInfo requestInfo, DateTime receivedTimestamp,
        AuditResponseStatus status, IEnumerable<KeyValuePair<string, string>> annotations, DateTime? stageTimestamp = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(status);
        ArgumentNullException.ThrowIfNull(annotations);
        var request = BeginRequest(auditId, requestUri, verb, null, sourceIps, userAgent, requestInfo, receivedTimestamp);
        if (!request.IsEnabled || !request.Decision.ShouldEmit(AuditStage.ResponseComplete))
        {
            return new(new AuditWriteResult(AuditStage.ResponseComplete, false, false));
        }
        foreach (var (key, value) in annotations)
        {
            request.AddAnnotation(key, value);
        }
        var e = request.Snapshot(AuditStage.ResponseComplete, status, stageTimestamp ?? UtcNow());
        return ProcessAsync(e, cancellationToken);
    }

    /// <summary>The responseStatus of kube-apiserver's 401: <c>{"metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}</c>.</summary>
    public static AuditResponseStatus Unauthorized { get; } = new(401, "Failure", "Unauthorized", "Unauthorized");

    /// <summary>Hands one event to every backend; blocking backends are awaited, batch backends only enqueue.</summary>
    public ValueTask<AuditWriteResult> ProcessAsync(AuditEvent auditEvent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(auditEvent);
        Metrics.AddEvent();
        var one = new[] { auditEvent };
        var failed = false;
        var strict = false;
        for (var i = 0; i < _backends.Length; i++)
        {
            var backend = _backends[i];
            ValueTask pending;
            try
            {
                pending = backend.ProcessAsync(one, cancellationToken);
            }
            catch (AuditBackendException)
            {
                failed = true;
                strict |= backend.Mode == AuditMode.BlockingStrict;
                continue;
            }
            if (!pending.IsCompletedSuccessfully)
            {
                return ProcessSlowAsync(pending, i, one, auditEvent.Stage, failed, strict, cancellationToken);
            }
        }
        return new(Result(auditEvent.Stage, failed, strict));
    }

    private async ValueTask<AuditWriteResult> ProcessSlowAsync(ValueTask pending, int index, AuditEvent[] one, AuditStage stage,
        bool failed, bool strict, CancellationToken cancellationToken)
    {
        for (var i = index; i < _backends.Length; i++)
        {
            var backend = _backends[i];
            try
            {
                if (i == index)
                {
                    await pending;
                }
                else
                {
                    await backend.ProcessAsync(one, cancellationToken);
                }
            }
            catch (AuditBackendException)
            {
                failed = true;
                strict |= backend.Mode == AuditMode.BlockingStrict;
            }
        }
        return Result(stage, failed, strict);
    }

    private AuditWriteResult Result(AuditStage stage, bool failed, bool strict)
    {
        var result = new AuditWriteResult(stage, failed, strict);
        if (result.RejectRequest)
        {
            Metrics.AddRejected();
        }
        return result;
    }

    /// <summary>Waits until every backend has written everything accepted so far.</summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        foreach (var backend in _backends)
        {
            await backend.FlushAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Graceful shutdown: every backend stops accepting events, writes every event it accepted (all buffered batches),
    /// and closes. If <paramref name="cancellationToken"/> fires first, what is left is counted as dropped.
    /// </summary>
    public async ValueTask ShutdownAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _shutdown, 1) != 0)
        {
            return;
        }
        var tasks = new Task[_backends.Length];
        for (var i = 0; i < _backends.Length; i++)
        {
            tasks[i] = _backends[i].ShutdownAsync(cancellationToken).AsTask();
        }
        await Task.WhenAll(tasks);
    }

    public async ValueTask DisposeAsync()
    {
        await ShutdownAsync();
        foreach (var backend in _backends)
        {
            if (backend is IAsyncDisposable d)
            {
                await d.DisposeAsync();
            }
        }
        if (_ownsMetrics)
        {
            Metrics.Dispose();
        }
    }
}

/// <summary>
/// What the <c>audit</c> section asks for, read and checked: the policy (null: audit off) and the backends' settings.
/// Made by <see cref="AuditSink.Plan"/>; nothing is opened until <see cref="AuditSink.Create(AuditSinkPlan, AuditMetrics?, Action{AuditBackendError}?, TimeProvider?)"/>.
/// </summary>
public sealed record AuditSinkPlan(AuditPolicy? Policy, AuditLogOptions? Log, AuditWebhookOptions? Webhook, KubeconfigEndpoint? WebhookEndpoint);
