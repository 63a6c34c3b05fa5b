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
internal sealed class AuthorizationMiddleware(RequestDelegate next, Refusals refusals)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetGatewayFeature();
        var authenticated = context.GetAuthenticatedRequest();
        var result = await feature.Snapshot.Authorizer.AuthorizeAsync(authenticated.Attributes(feature.RequestInfo), context.RequestAborted);
        foreach (var (key, value) in result.AuditAnnotations())
        {
            feature.Annotate(key, value);
        }
        if (result.IsAllowed)
        {
            await next(context);
            return;
        }
        var refusal = result.IsInternalError && result.Error is { } error
            ? Refusal.InternalError(RefusalLayers.Authorization, error)
            : Refusal.WithBody(RefusalLayers.Authorization, StatusCodes.Status403Forbidden, Forbidden.Body(authenticated.EffectiveUser.Name, feature.RequestInfo, result.Reason));
        await refusals.RefuseAsync(context, feature, refusal);
    }
}
