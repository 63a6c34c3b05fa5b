using Microsoft.AspNetCore.Http;
using Portcullis.Admission.RateLimiting;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;

namespace Portcullis.Gateway.Admission;

/// <summary>
/// L5 after authorization and after the body is read, where kube-apiserver runs its admission plugins: EventRateLimit
/// (from <c>admission.admissionControlConfigFile</c>) on creates and updates (a PATCH is an update) of core
/// <c>events</c>, not on dry runs. A refusal is kube-apiserver's 429 Status (<c>TooManyRequests</c>, no
/// <c>Retry-After</c>), audited as <c>rejected-by: eventratelimit</c> and counted in
/// <c>portcullis_ratelimit_rejected_total{type="eventratelimit:&lt;type&gt;"}</c> once per limit that refused.
/// API Priority and Fairness runs before authorization, in <see cref="PriorityAndFairnessMiddleware"/>.
/// </summary>
internal sealed class AdmissionMiddleware(RequestDelegate next, Refusals refusals, GatewayMetrics metrics)
{
    public Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetGatewayFeature();
        if (feature.Snapshot.EventRateLimit is { } limiter && IsEventWrite(context, feature.RequestInfo))
        {
            var sourceAndObject = limiter.NeedsSourceAndObject ? SourceAndObjectKey(context, feature) : "";
            var failures = limiter.Admit(feature.RequestInfo.Namespace, context.GetAuthenticatedRequest().EffectiveUser.Name, sourceAndObject);
            if (failures.Count > 0)
            {
                foreach (var type in failures.Select(f => f.Type).Distinct(StringComparer.Ordinal))
                {
                    metrics.RateLimitRejected.Add(1, new KeyValuePair<string, object?>("type", "eventratelimit:" + type));
                }
                var message = EventRateLimiter.Message(failures);
                return refusals.RefuseAsync(context, feature, Refusal.WithStatus(RefusalLayers.EventRateLimit, StatusCodes.Status429TooManyRequests, "TooManyRequests", message));
            }
        }
        return next(context);
    }

    // kube-apiserver keys SourceAndObject on the Event that admission sees. For a create or an update that is the body,
    // which the body stage has read whole whatever its framing (Content-Length, chunked, HTTP/2), decoded by its
    // Content-Type (JSON, YAML, protobuf). For a patch it is the stored event after the patch, which the gateway never
    // sees: an event's source and involved object stay as they were created, so the event itself (namespace/name)
    // stands for them — repeated patches of one event (client-go's count updates) share one bucket, and patches of
    // events from other sources or about other objects never do. A body that was not read or does not decode gets the
    // empty key: all such events share one bucket (kube-apiserver's key for an object that is not an Event).
    private static string SourceAndObjectKey(HttpContext context, GatewayRequestFeature feature)
    {
        var info = feature.RequestInfo;
        if (info.Verb == "patch")
        {
            return info.Namespace + "/" + info.Name;
        }
        return feature.RequestBody is { } body ? EventRateLimiter.SourceAndObjectKey(body, context.Request.ContentType) : "";
    }

    // kube-apiserver: admission.NewHandler(Create, Update) and attr.GetKind().GroupKind() == core Event; events.k8s.io
    // Events are another group. A dry run (?dryRun=All) writes nothing and takes no token.
    private static bool IsEventWrite(HttpContext context, Portcullis.Authorization.RequestInfo info) =>
        info.IsResourceRequest && info.ApiGroup.Length == 0 && info.Resource == "events" && info.Subresource.Length == 0 &&
        info.Verb is "create" or "update" or "patch" && !IsDryRun(context);

    // Only kube-apiserver's one accepted value: any other dryRun value is refused upstream (400) and writes nothing
    // either, but is counted here so that no spelling slips past the limit. The same reading of the query as the request
    // metrics' dry_run label (one definition: RequestMetrics.DryRunLabel).
    private static bool IsDryRun(HttpContext context) => RequestMetrics.DryRunLabel(context.Request.Query) == "All";
}
