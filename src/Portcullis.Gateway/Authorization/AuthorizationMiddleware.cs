using Microsoft.AspNetCore.Http;
using Portcullis.Authorization;
using Portcullis.Configuration;
using Portcullis.Gateway.Metrics;
using Portcullis.Gateway.Pipeline;
using Portcullis.Http;

namespace Portcullis.Gateway.Authorization;

/// <summary>
/// L4: the <c>system:masters</c> short-circuit, then <c>authorization.modes</c> in order with kube-apiserver's union
/// semantics (first Allow or Deny wins; all NoOpinion is a 403). The decision and reason become audit annotations.
/// </summary>
internal sealed class AuthorizationMiddleware(RequestDelegate next, GatewayMetrics metrics)
{
    public Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetGatewayFeature();
        var user = feature.EffectiveUser!;
        var (allowed, reason) = Decide(feature.Snapshot.Config.Authorization.Modes, user);
        feature.Annotations["authorization.k8s.io/decision"] = allowed ? "allow" : "forbid";
        feature.Annotations["authorization.k8s.io/reason"] = reason;
        if (allowed)
        {
            return next(context);
        }
        feature.RejectedBy = "authorization";
        metrics.RequestsRejected.WithLabels("authorization", "403").Inc();
        return StatusResponses.WriteAsync(context, 403, ForbiddenBody(user.Name, feature.RequestInfo, reason));
    }

    private static (bool Allowed, string Reason) Decide(IReadOnlyList<string> modes, Portcullis.Authentication.UserInfo user)
    {
        if (user.IsInGroup(Portcullis.Authentication.UserInfo.MastersGroup))
        {
            return (true, "");
        }
        var reasons = new List<string>();
        foreach (var mode in modes)
        {
            switch (mode)
            {
                case AuthorizationModes.AlwaysAllow:
                    return (true, "");
                case AuthorizationModes.AlwaysDeny:
                    reasons.Add("Everything is forbidden.");
                    break;
                default:
                    break;
            }
        }
        return (false, string.Join("\n", reasons));
    }

    /// <summary>kube-apiserver's 403 body (spec §4.3).</summary>
    internal static byte[] ForbiddenBody(string user, RequestInfo info, string reason)
    {
        string message;
        StatusDetails details;
        if (!info.IsResourceRequest)
        {
            message = $"forbidden: User \"{Escape(user)}\" cannot {Escape(info.Verb)} path \"{Escape(info.Path)}\"";
            details = new StatusDetails();
        }
        else
        {
            var resource = info.Subresource.Length > 0 ? $"{info.Resource}/{info.Subresource}" : info.Resource;
            var qualified = info.ApiGroup.Length > 0 ? $"{info.Resource}.{info.ApiGroup}" : info.Resource;
            var prefix = info.Name.Length > 0 ? $"{qualified} \"{info.Name}\" is forbidden: " : $"{qualified} is forbidden: ";
            var scope = info.Namespace.Length > 0 ? $"in the namespace \"{Escape(info.Namespace)}\"" : "at the cluster scope";
            message = prefix + $"User \"{Escape(user)}\" cannot {Escape(info.Verb)} resource \"{Escape(resource)}\" in API group \"{Escape(info.ApiGroup)}\" {scope}";
            details = new StatusDetails(info.Name, info.ApiGroup, info.Resource);
        }
        if (reason.Length > 0)
        {
            message += ": " + reason;
        }
        return Status.Failure(message, "Forbidden", details, 403);
    }

    private static string Escape(string s) => System.Net.WebUtility.HtmlEncode(s).Replace("&#39;", "'", StringComparison.Ordinal).Replace("&quot;", "\"", StringComparison.Ordinal);
}
