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
internal sealed class ImpersonationMiddleware(RequestDelegate next, GatewayMetrics metrics)
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
            feature.RejectedBy = "impersonation";
            metrics.RequestsRejected.WithLabels("impersonation", "400").Inc();
            await StatusResponses.BadRequestAsync(context, message);
            return;
        }
        if (parsed.Plan is not { } plan)
        {
            await next(context);
            return;
        }
        var requestor = feature.User!;
        var outcome = await ImpersonationHeaders.AuthorizeAsync(feature.Snapshot.Authorizer, requestor, plan,
            feature.SourceAddress, feature.TokenSha256, feature.CertificateSerial, context.RequestAborted);
        if (!outcome.Allowed)
        {
            feature.RejectedBy = "impersonation";
            foreach (var (key, value) in outcome.Result.AuditAnnotations())
            {
                feature.Annotate(key, value);
            }
            if (outcome.Result.IsInternalError)
            {
                metrics.RequestsRejected.WithLabels("impersonation", "500").Inc();
                await StatusResponses.InternalErrorTextAsync(context, outcome.Result.Error!);
                return;
            }
            metrics.RequestsRejected.WithLabels("impersonation", "403").Inc();
            await StatusResponses.WriteAsync(context, 403, outcome.ForbiddenBody(requestor.Name));
            return;
        }
        feature.ImpersonatedUser = plan.ImpersonatedUser;
        await next(context);
    }
}
