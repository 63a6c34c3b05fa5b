using Microsoft.AspNetCore.Http;
using Portcullis.Audit;
using Portcullis.Gateway.Metrics;
using Portcullis.Gateway.Pipeline;

namespace Portcullis.Gateway.Audit;

/// <summary>
/// L6, outermost: wraps every request from the first layer on, so that requests ended by any layer are measured with
/// kube-apiserver's metric names and labels and their audit record is completed (ResponseComplete, or the single
/// ResponseStarted event of a failed authentication, as kube-apiserver writes it).
/// </summary>
internal sealed class AuditMiddleware(RequestDelegate next, GatewayMetrics metrics, AuditSink sink, TimeProvider time)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var start = time.GetTimestamp();
        try
        {
            await next(context);
        }
        finally
        {
            if (context.Features.Get<GatewayRequestFeature>() is { } feature)
            {
                Record(context, feature, time.GetElapsedTime(start).TotalSeconds);
                await CompleteAuditAsync(context, feature);
            }
        }
    }

    private async Task CompleteAuditAsync(HttpContext context, GatewayRequestFeature feature)
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
        var audit = feature.Audit;
        if (!audit.IsEnabled)
        {
            return;
        }
        if (feature.RejectedBy is { } layer)
        {
            audit.AddAnnotation("portcullis.dev/rejected-by", layer);
        }
        if (context.Features.Get<AuditCapture>() is { } capture)
        {
            capture.Apply(audit, context.Response.StatusCode);
        }
        else
        {
            audit.SetResponseStatus(context.Response.StatusCode);
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
