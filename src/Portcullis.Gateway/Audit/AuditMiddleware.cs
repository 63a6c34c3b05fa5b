using Microsoft.AspNetCore.Http;
using Portcullis.Audit;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;

namespace Portcullis.Gateway.Audit;

/// <summary>
/// L6, outermost: wraps every request from the first layer on, so that requests ended by any layer are measured with
/// kube-apiserver's metric names and labels and their audit record is completed (ResponseComplete, or the single
/// ResponseStarted event of a failed authentication, as kube-apiserver writes it; a single ResponseComplete event for
/// a request refused before authentication). The code recorded is always the code the client got: an exception that
/// escapes the layers is answered 500 by Kestrel, so it is measured as 500 and audited as kube-apiserver audits a
/// panic (stage Panic, code 500).
/// </summary>
internal sealed class AuditMiddleware(RequestDelegate next, GatewayMetrics metrics, AuditSink sink, TimeProvider time)
{
    public async Task InvokeAsync(HttpContext context)
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
                Record(context, feature, time.GetElapsedTime(start).TotalSeconds);
                await CompleteAuditAsync(context, feature, failure);
            }
        }
    }

    private async Task CompleteAuditAsync(HttpContext context, GatewayRequestFeature feature, Exception? failure)
    {
        if (feature.RejectedBy == "authentication")
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
        if (feature.User is null && feature.RejectedBy is { } early)
        {
            // Refused before authentication (RequestStartMiddleware): no audit record was started.
            if (!sink.IsEnabled)
            {
                return;
            }
            var annotations = new List<KeyValuePair<string, string>>(feature.Annotations) { new(AuditAnnotations.RejectedBy, early) };
            await sink.AuditRefusedRequestAsync(feature.AuditId, RequestUri(context), feature.RequestInfo.Verb, SourceIps(feature),
                context.Request.Headers.UserAgent.ToString(), feature.RequestInfo, feature.ReceivedAt.UtcDateTime,
                feature.RefusalStatus is { } refusal && refusal.Code == code ? refusal : new AuditResponseStatus(code), annotations);
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
        if (feature.RejectedBy is { } layer)
        {
            audit.AddAnnotation(AuditAnnotations.RejectedBy, layer);
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

    internal static string RequestUri(HttpContext context) =>
        context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget ?? (context.Request.Path + context.Request.QueryString).ToString();

    internal static IReadOnlyList<string> SourceIps(GatewayRequestFeature feature) =>
        feature.SourceAddress is { } ip ? [ip.ToString()] : [];

    // The label values are bounded by RequestMetrics (Metrics/RequestMetrics.cs): fixed sets, built-in or learned
    // resources, and a cap per family.
    private void Record(HttpContext context, GatewayRequestFeature feature, double seconds) =>
        metrics.Requests.Record(context.Request.Method, context.Request.ContentType, feature.RequestInfo, feature.User is not null,
            context.Request.Query.ContainsKey("dryRun"), context.Response.StatusCode, feature.RejectedBy is not null, seconds);
}
