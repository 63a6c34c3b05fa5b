using Microsoft.AspNetCore.Http;
using Portcullis.Authorization;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;

namespace Portcullis.Gateway.Authorization;

/// <summary>
/// L4: the snapshot's <see cref="AuthorizerChain"/> (deny list, network scopes, <c>system:masters</c>, then
/// <c>authorization.modes</c> with kube-apiserver's union semantics). Allow continues; an authorizer error without an
/// allow is kube-apiserver's 500 text; anything else is its exact 403. Decision and reason become audit annotations.
/// </summary>
internal sealed class AuthorizationMiddleware(RequestDelegate next, GatewayMetrics metrics)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetGatewayFeature();
        var result = await feature.Snapshot.Authorizer.AuthorizeAsync(feature.Attributes(feature.RequestInfo), context.RequestAborted);
        foreach (var (key, value) in result.AuditAnnotations())
        {
            feature.Annotate(key, value);
        }
        if (result.IsAllowed)
        {
            await next(context);
            return;
        }
        feature.RejectedBy = "authorization";
        if (result.IsInternalError)
        {
            metrics.RequestsRejected.WithLabels("authorization", "500").Inc();
            await StatusResponses.InternalErrorTextAsync(context, result.Error!);
            return;
        }
        metrics.RequestsRejected.WithLabels("authorization", "403").Inc();
        await StatusResponses.WriteAsync(context, 403, Forbidden.Body(feature.EffectiveUser!.Name, feature.RequestInfo, result.Reason));
    }
}
