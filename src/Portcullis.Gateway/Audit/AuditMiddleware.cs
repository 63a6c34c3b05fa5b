using Microsoft.AspNetCore.Http;
using Portcullis.Audit;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;

namespace Portcullis.Gateway.Audit;

/// <summary>
/// L6, one stage at two points of the request path, as in kube-apiserver. <see cref="Wrap"/> is outermost: it wraps
/// every request from the first layer on, so that requests ended by any layer are measured with kube-apiserver's metric
/// names and labels and their audit record is completed (ResponseComplete, or the single ResponseStarted event of a
/// failed authentication, as kube-apiserver writes it; a single ResponseComplete event for a request refused before
/// authentication). The code recorded is always the code the client got: an exception that escapes the layers is
/// answered 500 by Kestrel, so it is measured as 500 and audited as kube-apiserver audits a panic (stage Panic, code
/// 500). <see cref="Begin"/> sits right after authentication: it starts the record for the authenticated
/// (pre-impersonation) user, writes RequestReceived (a blocking backend that cannot store it fails the request closed
/// with 500), captures response bodies at RequestResponse level up to the audit object limit
/// (<c>limits.maxRequestBodyBytes</c>), and writes ResponseStarted for long-running requests when their response
/// begins. The request body is handed to the record by the request body stage (<c>Http/RequestBodyMiddleware</c>),
/// which reads it whole before it is forwarded. Streams are never buffered for audit.
/// </summary>
internal sealed class AuditMiddleware(GatewayMetrics metrics, Refusals refusals, TimeProvider time)
{
    /// <summary>The outermost middleware: measures and completes the audit record of every request.</summary>
    public RequestDelegate Wrap(RequestDelegate next) => context => WrapAsync(context, next);

    /// <summary>The middleware right after authentication: starts the audit record.</summary>
    public RequestDelegate Begin(RequestDelegate next) => context => BeginAsync(context, next);

    private async Task WrapAsync(HttpContext context, RequestDelegate next)
    {
        var start = time.GetTimestamp();
        Exception? failure = null;
        try
        {
            await next(context);
        }
        catch (Exception ex) when (!(ex is OperationCanceledException && context.RequestAborted.IsCancellationRequested))
        {
            // (A cancellation because the client went away is not a failure of the gateway: nobody gets an answer.)
            failure = ex;
            if (!context.Response.HasStarted)
            {
                context.Response.StatusCode = StatusCodes.Status500InternalServerError; // what Kestrel answers for it
            }
            throw;
        }
        finally
        {
            if (context.Features.Get<GatewayRequestFeature>() is { } feature)
            {
                try
                {
                    Record(context, feature, time.GetElapsedTime(start).TotalSeconds);
                    await CompleteAuditAsync(context, feature, failure);
                }
                finally
                {
                    // The request's last event is with the sink: a retired snapshot may now close it.
                    feature.Snapshot.Exit();
                }
            }
        }
    }

    private async Task BeginAsync(HttpContext context, RequestDelegate next)
    {
        var feature = context.GetGatewayFeature();
        var sink = feature.Snapshot.AuditSink;
        if (!sink.IsEnabled)
        {
            // Audit off (no policy or no backend): nothing to compute for a record that would be discarded.
            await next(context);
            return;
        }
        var audit = sink.BeginRequest(feature.AuditId, RequestUri(context), feature.RequestInfo.Verb, context.GetAuthenticatedRequest().User,
            SourceIps(feature), context.Request.Headers.UserAgent.ToString(), feature.RequestInfo, feature.ReceivedAt.UtcDateTime,
            feature.Snapshot.Config.Limits.MaxRequestBodyBytes);
        if (!audit.IsEnabled)
        {
            await next(context);
            return;
        }
        feature.Audit = audit;
        foreach (var (key, value) in feature.Annotations)
        {
            audit.AddAnnotation(key, value);
        }
        var received = await audit.EmitAsync(AuditStage.RequestReceived, cancellationToken: context.RequestAborted);
        if (received.RejectRequest)
        {
            await refusals.RefuseAsync(context, feature, Refusal.InternalError(RefusalLayers.Audit, AuditWriteResult.FailedToStoreMessage));
            return;
        }

        if (feature.RequestInfo.IsLongRunning)
        {
            context.Response.OnStarting(static state =>
            {
                var a = (AuditRequest)state;
                return a.EmitAsync(AuditStage.ResponseStarted).AsTask();
            }, audit);
        }
        else if (audit.WantsResponseObject)
        {
            var capture = new AuditCapture(context.Response.Body, audit.MaxObjectBytes);
            context.Features.Set(capture);
            context.Response.Body = capture;
        }
        await next(context);
    }

    private static async Task CompleteAuditAsync(HttpContext context, GatewayRequestFeature feature, Exception? failure)
    {
        var sink = feature.Snapshot.AuditSink;
        if (feature.RejectedBy == RefusalLayers.Authentication)
        {
            if (!sink.IsEnabled)
            {
                return;
            }
            await sink.AuditFailedAuthenticationAsync(feature.AuditId, RequestUri(context), feature.RequestInfo.Verb,
                SourceIps(feature), context.Request.Headers.UserAgent.ToString(), feature.RequestInfo, feature.ReceivedAt.UtcDateTime,
                annotations: feature.Annotations);
            return;
        }
        var code = context.Response.StatusCode;
        if (feature.Authenticated is null && feature.RejectedBy is not null)
        {
            // Refused before authentication (RequestStartMiddleware): no audit record was started.
            if (!sink.IsEnabled)
            {
                return;
            }
            await sink.AuditRefusedRequestAsync(feature.AuditId, RequestUri(context), feature.RequestInfo.Verb, SourceIps(feature),
                context.Request.Headers.UserAgent.ToString(), feature.RequestInfo, feature.ReceivedAt.UtcDateTime,
                feature.RefusalStatus is { } refusal && refusal.Code == code ? refusal : new AuditResponseStatus(code), feature.Annotations);
            return;
        }
        var audit = feature.Audit;
        if (!audit.IsEnabled)
        {
            return;
        }
        if (failure is not null && code == StatusCodes.Status500InternalServerError)
        {
            // The type only: an exception message is not an audit field.
            await audit.EmitPanicAsync(failure.GetType().Name, cancellationToken: CancellationToken.None);
            return;
        }
        if (context.Features.Get<AuditCapture>() is { } capture)
        {
            capture.Apply(audit, code);
        }
        else if (feature.RefusalStatus is { } refusal && refusal.Code == code)
        {
            audit.SetResponseStatus(refusal);
        }
        else
        {
            audit.SetResponseStatus(code);
        }
        await audit.EmitAsync(AuditStage.ResponseComplete, cancellationToken: CancellationToken.None);
    }

    private static string RequestUri(HttpContext context) =>
        context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget ?? (context.Request.Path + context.Request.QueryString).ToString();

    private static IReadOnlyList<string> SourceIps(GatewayRequestFeature feature) =>
        [.. feature.SourceIps.Select(ip => ip.ToString())];

    // The label values are bounded by RequestMetrics (Metrics/RequestMetrics.cs): fixed sets, built-in or learned
    // resources, and a cap per family.
    private void Record(HttpContext context, GatewayRequestFeature feature, double seconds) =>
        metrics.Requests.Record(context.Request.Method, context.Request.ContentType, feature.RequestInfo, feature.Authenticated is not null,
            RequestMetrics.DryRunLabel(context.Request.Query), context.Response.StatusCode, feature.RejectedBy is not null, seconds);
}
