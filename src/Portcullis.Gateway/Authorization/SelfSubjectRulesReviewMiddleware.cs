using System.Text;
using Microsoft.AspNetCore.Http;
using Portcullis.Authorization.Review;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;

namespace Portcullis.Gateway.Authorization;

/// <summary>
/// L4, after <see cref="SelfSubjectAccessReviewMiddleware"/>: <c>kubectl auth can-i --list</c>. A SelfSubjectRulesReview
/// (create <c>selfsubjectrulesreviews</c> in <c>authorization.k8s.io</c>, any version) that the chain has allowed as a
/// request is always answered here, from the gateway's own chain for the effective user (the impersonated one with
/// <c>--as</c>), its credential and source address; it is never forwarded, because the upstream's rules describe what
/// the upstream lets the forwarded identity do, not what the gateway lets this user do. JSON and Kubernetes protobuf
/// (what kubectl sends) are read; the answer is JSON. A review without <c>spec.namespace</c> is kube-apiserver's 400.
/// </summary>
internal sealed class SelfSubjectRulesReviewMiddleware(RequestDelegate next, Refusals refusals)
{
    /// <summary>Audit annotation saying what the gateway answered.</summary>
    internal const string AnnotationKey = "portcullis.dev/selfsubjectrulesreview";

    public Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetGatewayFeature();
        return SelfSubjectRulesReviews.IsSelfSubjectRulesReview(feature.RequestInfo) ? ReviewAsync(context, feature) : next(context);
    }

    private async Task ReviewAsync(HttpContext context, GatewayRequestFeature feature)
    {
        var request = context.Request;
        var mediaType = SelfSubjectAccessReviewMiddleware.MediaType(request.ContentType);
        var protobuf = mediaType == "application/vnd.kubernetes.protobuf";
        if (mediaType != "application/json" && !protobuf)
        {
            await RefuseAsync(context, feature, 415, "UnsupportedMediaType",
                $"the gateway reads SelfSubjectRulesReviews as application/json or application/vnd.kubernetes.protobuf only, not \"{Portcullis.Diagnostics.SafeText.Of(request.ContentType, 128)}\"");
            return;
        }
        if (request.Headers.ContentEncoding.Count > 0)
        {
            await RefuseAsync(context, feature, 415, "UnsupportedMediaType", "the gateway reads SelfSubjectRulesReviews without Content-Encoding only");
            return;
        }
        var max = SelfSubjectAccessReviewMiddleware.MaxBodyBytes;
        var body = request.ContentLength > max ? null : await SelfSubjectAccessReviewMiddleware.ReadBoundedAsync(request.Body, context.RequestAborted);
        if (body is null)
        {
            await RefuseAsync(context, feature, 413, "RequestEntityTooLarge", $"a SelfSubjectRulesReview may have at most {max} bytes");
            return;
        }

        string ns;
        string error;
        bool read;
        try
        {
            read = protobuf
                ? SelfSubjectAccessReviewProtobuf.TryReadRulesReviewNamespace(body, out ns, out error)
                : SelfSubjectRulesReviews.TryParseNamespace(new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(body), out ns, out error);
        }
        catch (Exception ex) when (ex is DecoderFallbackException or ArgumentException or InvalidOperationException or FormatException)
        {
            // invalid UTF-8 or duplicate JSON keys
            (read, ns, error) = (false, "", "the SelfSubjectRulesReview cannot be read: " + ex.Message);
        }
        if (!read)
        {
            await RefuseAsync(context, feature, 400, "BadRequest", error);
            return;
        }
        if (ns.Length == 0)
        {
            await RefuseAsync(context, feature, 400, "BadRequest", SelfSubjectRulesReviews.NoNamespace);
            return;
        }

        var rules = feature.Snapshot.Authorizer.RulesFor(context.GetAuthenticatedRequest().Attributes(feature.RequestInfo), ns);
        feature.Annotate(AnnotationKey, rules.RefusedBy is { } layer
            ? $"answered by the gateway: no rules, every request refused by {layer}"
            : $"answered by the gateway: {rules.ResourceRules.Count} resource and {rules.NonResourceRules.Count} non-resource rules in namespace {ns}{(rules.Incomplete ? ", incomplete" : "")}");
        var version = feature.RequestInfo.ApiVersion.Length > 0 ? feature.RequestInfo.ApiVersion : "v1";
        await refusals.RefuseAsync(context, feature, Refusal.WithBody(RefusalLayers.SelfSubjectRulesReview, StatusCodes.Status201Created,
            SelfSubjectRulesReviews.ResponseBytes("authorization.k8s.io/" + version, rules)));
    }

    private Task RefuseAsync(HttpContext context, GatewayRequestFeature feature, int code, string reason, string message) =>
        refusals.RefuseAsync(context, feature, Refusal.WithStatus(RefusalLayers.SelfSubjectRulesReview, code, reason, message));
}
