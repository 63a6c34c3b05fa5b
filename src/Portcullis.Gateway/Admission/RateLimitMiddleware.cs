using System.Globalization;
using Microsoft.AspNetCore.Http;
using Portcullis.Admission.RateLimiting;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;

namespace Portcullis.Gateway.Admission;

/// <summary>
/// L5 for every authenticated request, after impersonation and before API Priority and Fairness (a refused request
/// takes no seat): <c>admission.rateLimits</c> (token buckets per User, SourceIP, Namespace or Server) and
/// <c>admission.longRunning.maxPerUser</c> (open watches, exec, attach, port-forward, proxy and log requests of one
/// authenticated user, which APF does not hold). Both key on the authenticated user, not the impersonated one, so
/// impersonating many users does not multiply a client's share. A refusal is a 429 Status (<c>TooManyRequests</c>)
/// with <c>Retry-After</c>, audited as <c>rejected-by: ratelimit</c> and counted in
/// <c>portcullis_ratelimit_rejected_total{type}</c> (<c>ratelimit:&lt;type&gt;</c> once per limit that refused, or
/// <c>long-running</c>).
/// </summary>
internal sealed class RateLimitMiddleware(RequestDelegate next, Refusals refusals, GatewayMetrics metrics, LongRunningCounter longRunning)
{
    public Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetGatewayFeature();
        var user = context.GetAuthenticatedRequest().User.Name;
        if (feature.Snapshot.RateLimits is { } limiter)
        {
            var failures = limiter.Admit(user, feature.SourceAddress, feature.RequestInfo.Namespace);
            if (failures.Count > 0)
            {
                foreach (var type in failures.Select(f => f.Type).Distinct(StringComparer.Ordinal))
                {
                    metrics.RateLimitRejected.Add(1, new KeyValuePair<string, object?>("type", "ratelimit:" + type));
                }
                var message = RequestRateLimiter.Message(failures);
                return refusals.RefuseAsync(context, feature, Refusal.WithStatus(RefusalLayers.RateLimit, StatusCodes.Status429TooManyRequests,
                    "TooManyRequests", message, retryAfterSeconds: failures.Max(f => f.RetryAfterSeconds)));
            }
        }
        var max = feature.Snapshot.Config.Admission.LongRunning.MaxPerUser;
        if (max > 0 && feature.RequestInfo.IsLongRunning)
        {
            if (!longRunning.TryEnter(user, max))
            {
                metrics.RateLimitRejected.Add(1, new KeyValuePair<string, object?>("type", "long-running"));
                var message = $"Too many requests: {max.ToString(CultureInfo.InvariantCulture)} long-running requests of user {user} are open (admission.longRunning.maxPerUser)";
                return refusals.RefuseAsync(context, feature, Refusal.WithStatus(RefusalLayers.RateLimit, StatusCodes.Status429TooManyRequests,
                    "TooManyRequests", message, retryAfterSeconds: 1));
            }
            return RunLongAsync(context, user);
        }
        return next(context);
    }

    private async Task RunLongAsync(HttpContext context, string user)
    {
        try
        {
            await next(context);
        }
        finally
        {
            longRunning.Exit(user);
        }
    }
}
