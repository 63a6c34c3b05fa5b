using Microsoft.AspNetCore.Http;
using Portcullis.Authorization;
using Portcullis.Authorization.Impersonation;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;

namespace Portcullis.Gateway.Authorization;

/// <summary>
/// L4, before API Priority and Fairness as in kube-apiserver: <c>kubectl --as/--as-group</c>. The client's
/// Impersonate-* headers are authorized for the authenticated user (verb <c>impersonate</c> on users, groups,
/// serviceaccounts, uids, userextras); when every check allows, the impersonated user is what the rest of the path and
/// the upstream see. The headers themselves are never forwarded.
/// </summary>
internal sealed class ImpersonationMiddleware(RequestDelegate next, Refusals refusals)
{
    public Task InvokeAsync(HttpContext context)
    {
        var headers = context.Request.Headers;
        var any = false;
        foreach (var key in headers.Keys)
        {
            if (ImpersonationHeaders.IsImpersonationHeader(key))
            {
                any = true;
                break;
            }
        }
        return any ? ImpersonateAsync(context) : next(context);
    }

    private async Task ImpersonateAsync(HttpContext context)
    {
        var feature = context.GetGatewayFeature();
        var pairs = new List<KeyValuePair<string, string>>();
        foreach (var (name, values) in context.Request.Headers)
        {
            if (ImpersonationHeaders.IsImpersonationHeader(name))
            {
                foreach (var value in values)
                {
                    pairs.Add(new(name, value ?? ""));
                }
            }
        }
        var parsed = ImpersonationHeaders.Parse(pairs);
        if (parsed.BadRequestMessage is { } message)
        {
            await refusals.RefuseAsync(context, feature, Refusal.WithStatus(RefusalLayers.Impersonation, StatusCodes.Status400BadRequest, "BadRequest", message));
            return;
        }
        if (parsed.Plan is not { } plan)
        {
            await next(context);
            return;
        }
        var authenticated = context.GetAuthenticatedRequest();
        var requestor = authenticated.User;
        var outcome = await ImpersonationHeaders.AuthorizeAsync(feature.Snapshot.Authorizer, requestor, plan,
            feature.SourceAddress, authenticated.TokenSha256, authenticated.CertificateSerial, context.RequestAborted);
        if (!outcome.Allowed)
        {
            foreach (var (key, value) in outcome.Result.AuditAnnotations())
            {
                feature.Annotate(key, value);
            }
            var refusal = outcome.Result.IsInternalError && outcome.Result.Error is { } error
                ? Refusal.InternalError(RefusalLayers.Impersonation, error)
                : Refusal.WithBody(RefusalLayers.Impersonation, StatusCodes.Status403Forbidden, outcome.ForbiddenBody(requestor.Name));
            await refusals.RefuseAsync(context, feature, refusal);
            return;
        }
        authenticated.Impersonate(plan.ImpersonatedUser);
        await next(context);
    }
}
