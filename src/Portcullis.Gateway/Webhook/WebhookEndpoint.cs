using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Portcullis.Authentication;
using Portcullis.Authentication.ServiceAccounts;
using Portcullis.Authentication.Tokens;
using Portcullis.Authorization;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;
using Portcullis.Gateway.Snapshots;
using Portcullis.Http;
using Portcullis.Tls;

namespace Portcullis.Gateway.Webhook;

/// <summary>
/// <c>portcullis webhook</c>'s last stage: <c>POST /authenticate</c> answers a TokenReview and <c>POST /authorize</c> a
/// SubjectAccessReview with the snapshot's authenticator chain, deny list, revocation list and authorizer chain, in
/// kube-apiserver's webhook wire format (docs/webhook.md has the decision tables). The caller (the API server) was let
/// in by its client certificate at the handshake and authenticated as x509 by the stage before. The body is read up to
/// <c>limits.maxRequestBodyBytes</c> and is never handed to the audit record (a TokenReview carries a token): each review
/// is audited by annotations (kind, decision, reviewed user and request) on the request's event.
/// </summary>
internal sealed class WebhookEndpoint(GatewayMetrics metrics, Refusals refusals, ILogger<WebhookEndpoint> logger, TimeProvider time)
{
    public const string AuthenticatePath = "/authenticate";
    public const string AuthorizePath = "/authorize";

    public const string ReviewAnnotation = "portcullis.dev/webhook-review";
    public const string DecisionAnnotation = "portcullis.dev/webhook-decision";
    public const string ReasonAnnotation = "portcullis.dev/webhook-reason";
    public const string ReviewedUserAnnotation = "portcullis.dev/reviewed-user";
    public const string ReviewedRequestAnnotation = "portcullis.dev/reviewed-request";
    public const string ReviewedAuthenticatorAnnotation = "portcullis.dev/reviewed-authenticator";
    public const string RevokedAnnotation = "portcullis.dev/revocation-entry";

    public async Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetGatewayFeature();
        var path = context.Request.Path.Value ?? "";
        var review = path switch
        {
            AuthenticatePath => WebhookReviews.TokenReviewKind,
            AuthorizePath => WebhookReviews.SubjectAccessReviewKind,
            _ => null,
        };
        if (review is null)
        {
            await refusals.RefuseAsync(context, feature, Refusal.WithBody(RefusalLayers.Http, StatusCodes.Status404NotFound,
                Status.Failure($"the webhook serves POST {AuthenticatePath} (TokenReview) and POST {AuthorizePath} (SubjectAccessReview) only", "NotFound", 404)));
            return;
        }
        if (!HttpMethods.IsPost(context.Request.Method))
        {
            context.Response.Headers.Allow = "POST";
            await refusals.RefuseAsync(context, feature, Refusal.WithBody(RefusalLayers.Http, StatusCodes.Status405MethodNotAllowed,
                Status.Failure($"{review} is POSTed to {path}; {SafeMethod(context.Request.Method)} is not allowed", "MethodNotAllowed", 405)));
            return;
        }
        // The review's time is counted from the request entering Portcullis' pipeline (its headers parsed by Kestrel), so
        // portcullis_webhook_review_duration_seconds covers every stage the API server waits for, body read included.
        var start = feature.ReceivedTimestamp != 0 ? feature.ReceivedTimestamp : time.GetTimestamp();
        feature.Annotate(ReviewAnnotation, review);
        var limit = feature.Snapshot.Config.Limits.MaxRequestBodyBytes;
        var body = await ReadBodyAsync(context, limit);
        if (body is null)
        {
            await BadAsync(context, feature, review, 413, "RequestEntityTooLarge",
                $"the {review} is larger than limits.maxRequestBodyBytes ({limit.ToString(CultureInfo.InvariantCulture)} bytes)", start);
            return;
        }
        if (review == WebhookReviews.TokenReviewKind)
        {
            await AuthenticateAsync(context, feature, body.Value, start);
        }
        else
        {
            await AuthorizeAsync(context, feature, body.Value, start);
        }
    }

    private async Task AuthenticateAsync(HttpContext context, GatewayRequestFeature feature, ReadOnlyMemory<byte> body, long start)
    {
        if (!WebhookReviews.TryParseTokenReview(body, out var review, out var error))
        {
            await BadAsync(context, feature, WebhookReviews.TokenReviewKind, 400, "BadRequest", error, start);
            return;
        }
        var (answer, decision) = await DecideTokenAsync(feature, review!, logger, context.RequestAborted);
        await AnswerAsync(context, WebhookReviews.TokenReviewKind, decision, answer, start);
    }

    /// <summary>The TokenReview decision table (docs/webhook.md).</summary>
    internal static async Task<(byte[] Answer, string Decision)> DecideTokenAsync(GatewayRequestFeature feature, TokenReviewRequest review, ILogger logger,
        CancellationToken cancellationToken)
    {
        var snapshot = feature.Snapshot;
        var result = await snapshot.Authenticator.AuthenticateAsync(new AuthenticationRequest
        {
            AuthorizationHeaders = ["Bearer " + review.Token],
            Path = "/",
        }, cancellationToken);
        if (!result.Authenticated || result.User is null || result.IsAnonymous)
        {
            var reason = result.FailureReason ?? "the token was not recognised";
            feature.Annotate(ReasonAnnotation, SafeReason(reason));
            // The chain reports every token it does not recognise as "invalid bearer token…" (kube-apiserver's text): an
            // answer, not an outage. Anything else (a malformed request to the chain) is counted as an error.
            if (result.IsError && !reason.StartsWith("invalid bearer token", StringComparison.Ordinal))
            {
                Log.WebhookTokenError(logger, reason);
                feature.Annotate(DecisionAnnotation, "error");
                return (WebhookReviews.Unauthenticated(review.ApiVersion, "Portcullis could not check the token (an authenticator failed; see its log)"), "error");
            }
            feature.Annotate(DecisionAnnotation, "unauthenticated");
            return (WebhookReviews.Unauthenticated(review.ApiVersion, ""), "unauthenticated");
        }
        var user = result.User;
        feature.Annotate(ReviewedUserAnnotation, SafeUser(user.Name));
        feature.Annotate(ReviewedAuthenticatorAnnotation, result.Authenticator);
        // The deny list: user, group, service account and tokenSHA256 (the token is in the review); the other selectors
        // (certificateSerial, sourceCIDR) need what a TokenReview does not carry.
        if (snapshot.Authorizer.DenyList?.List.Matches(user, result.TokenDigest?.ToHex(), null, null, snapshot.Time.GetUtcNow()) is { } entry)
        {
            Log.WebhookTokenDenied(logger, Portcullis.Diagnostics.SafeText.Of(user.Name, 256), entry.Describe());
            feature.Annotate(AuthorizationResult.DenyListAnnotation, entry.Describe());
            feature.Annotate(DecisionAnnotation, "denied");
            return (WebhookReviews.Unauthenticated(review.ApiVersion, "the credential is on Portcullis' deny list"), "denied");
        }
        var (ok, audiences) = Audiences(result, review);
        if (!ok)
        {
            feature.Annotate(ReasonAnnotation, "the token's audiences do not include any of spec.audiences");
            feature.Annotate(DecisionAnnotation, "unauthenticated");
            return (WebhookReviews.Unauthenticated(review.ApiVersion, "the token is not valid for any of spec.audiences"), "unauthenticated");
        }
        feature.Annotate(DecisionAnnotation, "authenticated");
        return (WebhookReviews.Authenticated(review.ApiVersion, user, audiences), "authenticated");
    }

    /// <summary>
    /// <c>spec.audiences</c>, as kube-apiserver's audience-aware authenticators treat it: a bound service-account token is
    /// audience-aware (its <c>aud</c> must intersect <c>spec.audiences</c>, and the intersection is answered); the other
    /// authenticators (token file, OIDC/JWT issuers, an upstream webhook, legacy service-account tokens) are
    /// audience-agnostic: no audiences are answered, which the API server reads as "valid for the API server's own
    /// audiences" and intersects with <c>spec.audiences</c> itself.
    /// </summary>
    internal static (bool Ok, IReadOnlyList<string>? Audiences) Audiences(ChainResult result, TokenReviewRequest review)
    {
        if (review.Audiences.Count == 0 || result.Authenticator != "service-account")
        {
            return (true, null);
        }
        var token = JwtToken.TryParse(review.Token, out _);
        if (token is null || token.Issuer == ServiceAccountAuthenticator.LegacyIssuer || token.Audiences.Count == 0)
        {
            return (true, null);
        }
        var both = review.Audiences.Where(a => token.Audiences.Contains(a, StringComparer.Ordinal)).Distinct(StringComparer.Ordinal).ToList();
        return both.Count == 0 ? (false, null) : (true, both);
    }

    private async Task AuthorizeAsync(HttpContext context, GatewayRequestFeature feature, ReadOnlyMemory<byte> body, long start)
    {
        if (!WebhookReviews.TryParseSubjectAccessReview(body, out var review, out var error))
        {
            await BadAsync(context, feature, WebhookReviews.SubjectAccessReviewKind, 400, "BadRequest", error, start);
            return;
        }
        var status = await DecideAccessAsync(feature, review!, context.RequestAborted);
        var decision = status.Denied ? "denied" : status.Allowed ? "allowed" : "no_opinion";
        feature.Annotate(DecisionAnnotation, decision);
        if (status.Reason.Length > 0)
        {
            feature.Annotate(ReasonAnnotation, SafeReason(status.Reason));
        }
        await AnswerAsync(context, WebhookReviews.SubjectAccessReviewKind, decision, WebhookReviews.Decision(review!.ApiVersion, status), start);
    }

    /// <summary>The SubjectAccessReview decision table (docs/webhook.md).</summary>
    internal static async Task<ReviewStatus> DecideAccessAsync(GatewayRequestFeature feature, SubjectAccessReviewRequest review, CancellationToken cancellationToken)
    {
        var snapshot = feature.Snapshot;
        feature.Annotate(ReviewedUserAnnotation, SafeUser(review.User.Name));
        feature.Annotate(ReviewedRequestAnnotation, Portcullis.Diagnostics.SafeText.Of(Describe(review.Request), MaxRequestAnnotation));
        // 1. A revoked client certificate, by the fingerprint kube-apiserver's x509 authenticator puts in extra.
        if (RevokedFingerprint(snapshot, review.User) is { } revoked)
        {
            feature.Annotate(RevokedAnnotation, revoked.Describe());
            return new ReviewStatus(false, true, "revoked client certificate: " + revoked.Reason, "");
        }
        // 2. The chain: deny list, then system:masters, then authorization.modes (network scopes are refused at load).
        var result = await snapshot.Authorizer.AuthorizeAsync(new AuthorizationAttributes(review.User, review.Request), cancellationToken);
        if (result.AnnotationKey is { } key && result.AnnotationValue is { } value)
        {
            feature.Annotate(key, value);
        }
        if (result.Authorizer.Length > 0)
        {
            feature.Annotate(AuthorizationResult.AuthorizerAnnotation, result.Authorizer);
        }
        return result.Decision switch
        {
            AuthorizationDecision.Deny => new ReviewStatus(false, true, result.Reason, result.Error ?? ""),
            // kube-apiserver's own privileged-group authorizer runs before any webhook: system:masters is not Portcullis' to grant.
            AuthorizationDecision.Allow when result.Authorizer == SystemMastersAuthorizer.AuthorizerName =>
                new ReviewStatus(false, false, "system:masters is decided by the API server's own privileged-group authorizer", ""),
            AuthorizationDecision.Allow => new ReviewStatus(true, false, result.Reason, ""),
            _ => new ReviewStatus(false, false, result.Reason, result.Error ?? ""),
        };
    }

    private static RevocationEntry? RevokedFingerprint(GatewaySnapshot snapshot, UserInfo user)
    {
        var byFingerprint = snapshot.Revocation.BySha256;
        if (byFingerprint.Count == 0)
        {
            return null;
        }
        var now = snapshot.Time.GetUtcNow();
        foreach (var fingerprint in WebhookReviews.CertificateFingerprints(user))
        {
            if (byFingerprint.TryGetValue(fingerprint, out var entries) && entries.FirstOrDefault(e => e.Expires is null || now < e.Expires.Value) is { } entry)
            {
                return entry;
            }
        }
        return null;
    }

    private static string Describe(RequestInfo r) =>
        r.IsResourceRequest
            ? $"{r.Verb} {(r.ApiGroup.Length == 0 ? "" : r.ApiGroup + "/")}{r.Resource}{(r.Subresource.Length == 0 ? "" : "/" + r.Subresource)}"
              + (r.Namespace.Length == 0 ? "" : " namespace=" + r.Namespace) + (r.Name.Length == 0 ? "" : " name=" + r.Name)
            : $"{r.Verb} {r.Path}";

    private async Task AnswerAsync(HttpContext context, string review, string decision, byte[] answer, long start)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json";
        response.ContentLength = answer.Length;
        await response.Body.WriteAsync(answer, context.RequestAborted);
        metrics.Webhook.Record(review, decision, time.GetElapsedTime(start).TotalSeconds);
    }

    private async Task BadAsync(HttpContext context, GatewayRequestFeature feature, string review, int code, string reason, string message, long start)
    {
        Log.WebhookBadReview(logger, review, feature.SourceAddress?.ToString() ?? "", message);
        feature.Annotate(DecisionAnnotation, "bad_request");
        metrics.Webhook.Record(review, "bad_request", time.GetElapsedTime(start).TotalSeconds);
        if (code == StatusCodes.Status413PayloadTooLarge)
        {
            StatusResponses.CloseAfterResponse(context);
        }
        await refusals.RefuseAsync(context, feature, Refusal.WithBody(RefusalLayers.Http, code, Status.Failure(message, reason, code)));
    }

    // Up to limit bytes; null when the body is larger (Content-Length or the count says so).
    private static async Task<ReadOnlyMemory<byte>?> ReadBodyAsync(HttpContext context, int limit)
    {
        var request = context.Request;
        if (request.ContentLength > limit)
        {
            return null;
        }
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size && size.MaxRequestBodySize <= limit)
        {
            size.MaxRequestBodySize = limit + 1L;
        }
        var buffer = new byte[Math.Min(limit + 1, (int?)request.ContentLength + 1 ?? 16 * 1024)];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (buffer.Length > limit)
                {
                    return null;
                }
                Array.Resize(ref buffer, (int)Math.Min(limit + 1L, buffer.Length * 2L));
            }
            var read = await request.Body.ReadAsync(buffer.AsMemory(length), context.RequestAborted);
            if (read == 0)
            {
                return buffer.AsMemory(0, length);
            }
            length += read;
            if (length > limit)
            {
                return null;
            }
        }
    }

    private static string SafeMethod(string method) => Portcullis.Diagnostics.SafeText.Of(method, 16);

    // The review's values come from the API server's caller (a user name, a path, a selector) or from a remote webhook
    // (a reason): clipped and control characters escaped before they reach the audit event, as every other annotation.
    internal const int MaxUserAnnotation = 256;
    internal const int MaxReasonAnnotation = 1024;
    internal const int MaxRequestAnnotation = 1024;

    private static string SafeUser(string name) => Portcullis.Diagnostics.SafeText.Of(name, MaxUserAnnotation);

    private static string SafeReason(string reason) => Portcullis.Diagnostics.SafeText.Of(reason, MaxReasonAnnotation);
}
