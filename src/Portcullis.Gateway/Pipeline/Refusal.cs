using System.Globalization;
using Microsoft.AspNetCore.Http;
using Portcullis.Audit;
using Portcullis.Gateway.Diagnostics;

namespace Portcullis.Gateway.Pipeline;

/// <summary>The layers that end requests: the <c>layer</c> label of the counter and the value of the audit annotation.</summary>
internal static class RefusalLayers
{
    public const string Http = "http";
    /// <summary>L1 per request: a client named by a trusted proxy is outside network.allow/deny or banned.</summary>
    public const string Network = "network";
    public const string Authentication = "authentication";
    public const string Audit = "audit";
    public const string Impersonation = "impersonation";
    public const string Authorization = "authorization";
    public const string SelfSubjectAccessReview = "selfsubjectaccessreview";
    /// <summary>L4: kubectl auth can-i --list, always answered by the gateway.</summary>
    public const string SelfSubjectRulesReview = "selfsubjectrulesreview";
    public const string Upstream = "upstream";
    public const string Apf = "apf";
    public const string EventRateLimit = "eventratelimit";
    public const string RateLimit = "ratelimit";
}

/// <summary>
/// How a layer ends a request: which layer, the HTTP status, the response kube-apiserver would write (a Status body,
/// or its plain-text 500 and 431), the responseStatus and reason the audit event records. Made by the factories below and
/// carried out by <see cref="Refusals.RefuseAsync"/>, the one way any layer refuses.
/// </summary>
internal sealed class Refusal
{
    private Refusal(string layer, int code, Func<HttpContext, Task> write)
    {
        Layer = layer;
        Code = code;
        Write = write;
    }

    public string Layer { get; }
    public int Code { get; }
    /// <summary>The audit event's responseStatus; null: the code only (or what an audited response body says).</summary>
    public AuditResponseStatus? Status { get; private init; }
    /// <summary>The audit annotation <c>portcullis.dev/reason</c>; null: none (the layer annotates its own reason).</summary>
    public string? Reason { get; private init; }
    /// <summary>HTTP/1.x: close the connection after the answer (the rest of the request is never read).</summary>
    public bool CloseConnection { get; private init; }
    internal Func<HttpContext, Task> Write { get; }

    /// <summary>A kube-apiserver Status body: <c>{"kind":"Status","status":"Failure","message":…,"reason":…,"code":…}</c>.</summary>
    public static Refusal WithStatus(string layer, int code, string reason, string message, string? auditReason = null, bool closeConnection = false, int? retryAfterSeconds = null)
    {
        var body = Portcullis.Http.Status.Failure(message, reason, code);
        return new(layer, code, retryAfterSeconds is { } seconds
            ? c =>
            {
                c.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                return StatusResponses.WriteAsync(c, code, body);
            }
            : c => StatusResponses.WriteAsync(c, code, body))
        {
            Status = new AuditResponseStatus(code, "Failure", message, reason),
            Reason = auditReason ?? message,
            CloseConnection = closeConnection,
        };
    }

    /// <summary>A JSON body made by the layer (kube-apiserver's exact 401 and 403 texts, a SelfSubjectAccessReview answer).</summary>
    public static Refusal WithBody(string layer, int code, byte[] body) =>
        new(layer, code, c => StatusResponses.WriteAsync(c, code, body));

    /// <summary>kube-apiserver's plain-text 500 (an authorizer error, a RequestInfo it cannot make, a failed audit write).</summary>
    public static Refusal InternalError(string layer, string message, string? auditReason = null) =>
        new(layer, StatusCodes.Status500InternalServerError, c => StatusResponses.InternalErrorTextAsync(c, message))
        {
            Status = new AuditResponseStatus(StatusCodes.Status500InternalServerError),
            Reason = auditReason,
        };

    /// <summary>431 as Go's HTTP server writes it; the connection is closed.</summary>
    public static Refusal HeaderFieldsTooLarge(string layer, string auditReason) =>
        new(layer, StatusCodes.Status431RequestHeaderFieldsTooLarge, StatusResponses.HeaderFieldsTooLargeAsync)
        {
            Status = new AuditResponseStatus(StatusCodes.Status431RequestHeaderFieldsTooLarge),
            Reason = auditReason,
        };

    /// <summary>
    /// kube-apiserver's 429 from API Priority and Fairness: plain text <c>Too many requests, please try again later.</c>
    /// with <c>Retry-After</c> (not a Status body).
    /// </summary>
    public static Refusal TooManyRequests(string layer, int retryAfterSeconds, string auditReason) =>
        new(layer, StatusCodes.Status429TooManyRequests, c => StatusResponses.TooManyRequestsAsync(c, retryAfterSeconds))
        {
            Status = new AuditResponseStatus(StatusCodes.Status429TooManyRequests),
            Reason = auditReason,
        };

    /// <summary>The client went away mid-request: nobody to answer, the code is recorded as given.</summary>
    public static Refusal Abandoned(string layer, int code, string auditReason) =>
        new(layer, code, c =>
        {
            c.Response.StatusCode = code;
            return Task.CompletedTask;
        })
        {
            Reason = auditReason,
        };
}

/// <summary>
/// Carries out a <see cref="Refusal"/>: records the layer and the audit responseStatus on the request, annotates
/// <c>portcullis.dev/rejected-by</c> (and <c>portcullis.dev/reason</c>), counts
/// <c>portcullis_requests_rejected_total{layer,code}</c> and writes the answer. The audit stage writes the event.
/// </summary>
internal sealed class Refusals(GatewayMetrics metrics, SourceBans bans)
{
    public Task RefuseAsync(HttpContext context, GatewayRequestFeature feature, Refusal refusal)
    {
        // network.autoBan: a 401 from authentication, or a 403 from impersonation or authorization, counts against the
        // source; a source banned now has its connection closed after this answer (new ones are refused at accept).
        var failure = refusal.Code switch
        {
            StatusCodes.Status401Unauthorized when refusal.Layer == RefusalLayers.Authentication => Portcullis.Network.FailureReason.Authentication,
            StatusCodes.Status403Forbidden when refusal.Layer is RefusalLayers.Authorization or RefusalLayers.Impersonation => Portcullis.Network.FailureReason.Authorization,
            _ => (Portcullis.Network.FailureReason?)null,
        };
        // A trusted proxy is never blamed for its clients: failures are counted against the client it names, never
        // against an address in network.trustedProxies, and a client banned behind a proxy does not close the proxy's
        // (shared) connection: its next request is refused by RequestStart instead.
        if (failure is { } counted && feature.SourceAddress is { } source && !feature.Snapshot.TrustedProxies.Contains(source)
            && bans.RecordFailure(source, counted, context.Connection.Id) && !feature.ViaProxy)
        {
            StatusResponses.CloseAfterResponse(context);
            context.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionLifetimeNotificationFeature>()?.RequestClose(); // HTTP/2: GOAWAY
        }
        feature.RejectedBy = refusal.Layer;
        feature.RefusalStatus = refusal.Status;
        feature.Annotate(AuditAnnotations.RejectedBy, refusal.Layer);
        if (refusal.Reason is { } reason)
        {
            feature.Annotate(AuditAnnotations.RejectReason, reason);
        }
        metrics.RequestsRejected.Add(1, new KeyValuePair<string, object?>("layer", refusal.Layer),
            new KeyValuePair<string, object?>("code", refusal.Code.ToString(CultureInfo.InvariantCulture)));
        if (refusal.CloseConnection)
        {
            StatusResponses.CloseAfterResponse(context);
        }
        return refusal.Write(context);
    }
}
