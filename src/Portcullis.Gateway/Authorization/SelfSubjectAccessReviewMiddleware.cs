using System.Text;
using Microsoft.AspNetCore.Http;
using Portcullis.Authorization;
using Portcullis.Authorization.Review;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;
using Portcullis.Http;

namespace Portcullis.Gateway.Authorization;

/// <summary>
/// L4, after <see cref="AuthorizationMiddleware"/>: keeps <c>kubectl auth can-i</c> truthful. A SelfSubjectAccessReview
/// (create <c>selfsubjectaccessreviews</c> in <c>authorization.k8s.io</c>, any version) is first decided by the gateway's
/// own chain for the effective user and the reviewed attributes. When the gateway would not allow them, the review is
/// answered here with <c>status.allowed: false</c> and the gateway's reason, and the upstream is not asked; otherwise
/// the (buffered) body is forwarded unchanged and the upstream answers, so the result is the AND of both.
/// JSON and Kubernetes protobuf (what kubectl sends) are read; the local answer is JSON, which every client accepts.
/// A review the gateway cannot read is refused rather than forwarded, so the upstream never answers a review the
/// gateway has not checked.
/// </summary>
internal sealed class SelfSubjectAccessReviewMiddleware(RequestDelegate next, Refusals refusals)
{
    /// <summary>The largest review body read; kubectl's are a few hundred bytes.</summary>
    internal const int MaxBodyBytes = 64 * 1024;

    public Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetGatewayFeature();
        return SelfSubjectAccessReviews.IsSelfSubjectAccessReview(feature.RequestInfo) ? ReviewAsync(context, feature) : next(context);
    }

    private async Task ReviewAsync(HttpContext context, GatewayRequestFeature feature)
    {
        var request = context.Request;
        var mediaType = MediaType(request.ContentType);
        var protobuf = mediaType == "application/vnd.kubernetes.protobuf";
        if (mediaType != "application/json" && !protobuf)
        {
            await RefuseAsync(context, feature, 415, "UnsupportedMediaType",
                $"the gateway reads SelfSubjectAccessReviews as application/json or application/vnd.kubernetes.protobuf only, not \"{Portcullis.Diagnostics.SafeText.Of(request.ContentType, 128)}\"");
            return;
        }
        if (request.Headers.ContentEncoding.Count > 0)
        {
            await RefuseAsync(context, feature, 415, "UnsupportedMediaType", "the gateway reads SelfSubjectAccessReviews without Content-Encoding only");
            return;
        }
        if (request.ContentLength > MaxBodyBytes)
        {
            await RefuseAsync(context, feature, 413, "RequestEntityTooLarge", $"a SelfSubjectAccessReview may have at most {MaxBodyBytes} bytes");
            return;
        }
        var body = await ReadBoundedAsync(request.Body, context.RequestAborted);
        if (body is null)
        {
            await RefuseAsync(context, feature, 413, "RequestEntityTooLarge", $"a SelfSubjectAccessReview may have at most {MaxBodyBytes} bytes");
            return;
        }
        // Replayable for the forwarder; Content-Length / Transfer-Encoding stay as the client sent them, which still
        // describe exactly these bytes.
        request.Body = new MemoryStream(body, writable: false);

        string json;
        RequestInfo? asked;
        string error;
        try
        {
            if (protobuf)
            {
                // kubectl auth can-i sends protobuf; read into the equivalent JSON review and decide that
                if (!SelfSubjectAccessReviewProtobuf.TryToJson(body, out json, out error))
                {
                    await RefuseAsync(context, feature, 400, "BadRequest", error);
                    return;
                }
            }
            else
            {
                json = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(body);
            }
            if (!SelfSubjectAccessReviews.TryParse(json, out asked, out error))
            {
                asked = null;
            }
        }
        catch (Exception ex) when (ex is DecoderFallbackException or ArgumentException or InvalidOperationException or FormatException)
        {
            // invalid UTF-8, duplicate keys (JsonObject refuses them) or a field of the wrong JSON type
            json = "";
            asked = null;
            error = "the SelfSubjectAccessReview cannot be read: " + ex.Message;
        }
        if (asked is null)
        {
            await RefuseAsync(context, feature, 400, "BadRequest", error);
            return;
        }

        var mine = await feature.Snapshot.Authorizer.AuthorizeAsync(context.GetAuthenticatedRequest().Attributes(asked), context.RequestAborted);
        if (mine.IsAllowed)
        {
            feature.Annotate(AnnotationKey, "allowed by the gateway; answered by the upstream");
            await next(context);
            return;
        }
        feature.Annotate(AnnotationKey, "not allowed by the gateway; answered by the gateway");
        if (mine.Reason.Length == 0)
        {
            mine = mine with { Reason = NoReason }; // kubectl auth can-i prints it: say who said no
        }
        byte[] answer;
        try
        {
            answer = SelfSubjectAccessReviews.NotAllowedResponseBytes(json, mine);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException)
        {
            // e.g. an apiVersion that is not a string: refuse rather than forward a review the gateway does not allow
            await RefuseAsync(context, feature, 400, "BadRequest", "the SelfSubjectAccessReview cannot be read: " + ex.Message);
            return;
        }
        // The gateway's own answer, counted and audited as this layer's: the upstream is not asked.
        await refusals.RefuseAsync(context, feature, Refusal.WithBody(RefusalLayers.SelfSubjectAccessReview, StatusCodes.Status201Created, answer));
    }

    /// <summary>status.reason of a review the gateway answers when its chain gave no reason of its own.</summary>
    internal const string NoReason = "the Portcullis gateway does not allow this request";

    /// <summary>Audit annotation naming who answered a SelfSubjectAccessReview.</summary>
    internal const string AnnotationKey = "portcullis.dev/selfsubjectaccessreview";

    private Task RefuseAsync(HttpContext context, GatewayRequestFeature feature, int code, string reason, string message) =>
        refusals.RefuseAsync(context, feature, Refusal.WithStatus(RefusalLayers.SelfSubjectAccessReview, code, reason, message));

    /// <summary>The media type without parameters, lower-case ("" when absent).</summary>
    internal static string MediaType(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType))
        {
            return "";
        }
        var semicolon = contentType.IndexOf(';', StringComparison.Ordinal);
        return (semicolon < 0 ? contentType : contentType[..semicolon]).Trim().ToLowerInvariant();
    }

    /// <summary>The whole body, or null when it is longer than <see cref="MaxBodyBytes"/>.</summary>
    internal static async Task<byte[]?> ReadBoundedAsync(Stream body, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxBodyBytes + 1];
        var length = 0;
        while (length < buffer.Length)
        {
            var read = await body.ReadAsync(buffer.AsMemory(length), cancellationToken);
            if (read == 0)
            {
                return buffer.AsSpan(0, length).ToArray();
            }
            length += read;
        }
        return null;
    }
}
