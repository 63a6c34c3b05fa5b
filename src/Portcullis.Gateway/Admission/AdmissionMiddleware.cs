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
            var sourceAndObject = limiter.NeedsSourceAndObject && context.Request.Body is MemoryStream body && body.TryGetBuffer(out var bytes)
                ? EventRateLimiter.SourceAndObjectKey(bytes.AsMemory())
                : "";
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

    // kube-apiserver: admission.NewHandler(Create, Update) and attr.GetKind().GroupKind() == core Event; events.k8s.io
    // Events are another group. A dry run (?dryRun=All) writes nothing and takes no token.
    private static bool IsEventWrite(HttpContext context, Portcullis.Authorization.RequestInfo info) =>
        info.IsResourceRequest && info.ApiGroup.Length == 0 && info.Resource == "events" && info.Subresource.Length == 0 &&
        info.Verb is "create" or "update" or "patch" && !IsDryRun(context);

    // Only kube-apiserver's one accepted value: any other dryRun value is refused upstream (400) and writes nothing
    // either, but is counted here so that no spelling slips past the limit.
    private static bool IsDryRun(HttpContext context) =>
        context.Request.Query.TryGetValue("dryRun", out var values) && values.Count > 0 && values.All(v => v == "All");
}
