using Microsoft.AspNetCore.Http;
using Portcullis.Gateway.Metrics;
using Portcullis.Gateway.Pipeline;

namespace Portcullis.Gateway.Audit;

/// <summary>
/// L6: wraps every request from the first layer on, so that requests ended by any layer are measured with kube-apiserver's
/// metric names and labels. Audit events are emitted here once the audit backends are configured.
/// </summary>
internal sealed class AuditMiddleware(RequestDelegate next, GatewayMetrics metrics, TimeProvider time)
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
            }
        }
    }

    private void Record(HttpContext context, GatewayRequestFeature feature, double seconds)
    {
        var info = feature.RequestInfo;
        var verb = MetricVerb(context.Request, info);
        var scope = !info.IsResourceRequest ? "" : info.Name.Length > 0 ? "resource" : info.Namespace.Length > 0 ? "namespace" : "cluster";
        var dryRun = context.Request.Query.ContainsKey("dryRun") ? "All" : "";
        var code = context.Response.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture);
        metrics.RequestTotal.WithLabels(verb, dryRun, info.ApiGroup, info.ApiVersion, info.Resource, info.Subresource, scope, "apiserver", code).Inc();
        if (!info.IsLongRunning)
        {
            metrics.RequestDuration.WithLabels(verb, dryRun, info.ApiGroup, info.ApiVersion, info.Resource, info.Subresource, scope, "apiserver").Observe(seconds);
        }
    }

    /// <summary>kube-apiserver's metric verb: upper case, LIST/WATCH/APPLY/CONNECT distinguished, else "other".</summary>
    internal static string MetricVerb(HttpRequest request, Portcullis.Authorization.RequestInfo info)
    {
        if (info.IsResourceRequest && info.Subresource is "exec" or "attach" or "portforward" or "proxy")
        {
            return "CONNECT";
        }
        return info.Verb switch
        {
            "get" => "GET",
            "list" => "LIST",
            "watch" => "WATCH",
            "create" => "POST",
            "update" => "PUT",
            "patch" => request.ContentType?.StartsWith("application/apply-patch", StringComparison.OrdinalIgnoreCase) == true ? "APPLY" : "PATCH",
            "delete" => "DELETE",
            "deletecollection" => "DELETECOLLECTION",
            "proxy" => "PROXY",
            _ => info.IsResourceRequest ? "other" : request.Method.ToUpperInvariant() is "GET" or "HEAD" or "POST" or "PUT" or "PATCH" or "DELETE" or "OPTIONS" ? request.Method.ToUpperInvariant() : "other",
        };
    }
}
