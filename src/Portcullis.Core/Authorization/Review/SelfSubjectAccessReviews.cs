using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Portcullis.Authorization.Review;

/// <summary>
/// Keeps <c>kubectl auth can-i</c> truthful: a SelfSubjectAccessReview (POST
/// <c>/apis/authorization.k8s.io/v1/selfsubjectaccessreviews</c>) is first answered by the gateway's own chain for the
/// requesting user; only when the gateway allows is it forwarded, so the upstream's answer is the AND of both.
/// </summary>
public static class SelfSubjectAccessReviews
{
    /// <summary>True for the SSAR create request (v1 or v1beta1), which the gateway must intercept.</summary>
    public static bool IsSelfSubjectAccessReview(RequestInfo request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.IsResourceRequest && request.Verb == "create" && request.ApiGroup == "authorization.k8s.io"
            && request.Resource == "selfsubjectaccessreviews" && request.Subresource.Length == 0;
    }

    /// <summary>
    /// Reads <c>spec.resourceAttributes</c> or <c>spec.nonResourceAttributes</c> of a SelfSubjectAccessReview body into
    /// the RequestInfo to authorize; false with an error for a body kube-apiserver would reject as well.
    /// </summary>
    public static bool TryParse(string json, out RequestInfo? request, out string error)
    {
        request = null;
        error = "";
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json);
        }
        catch (JsonException ex)
        {
            error = "the SelfSubjectAccessReview is not JSON: " + ex.Message;
            return false;
        }
        var spec = root?["spec"] as JsonObject;
        if (spec is null)
        {
            error = "the SelfSubjectAccessReview has no spec";
            return false;
        }
        string S(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : "";
        if (spec["resourceAttributes"] is JsonObject ra && spec["nonResourceAttributes"] is null)
        {
            request = RequestInfoParser.Resource(S(ra, "verb"), S(ra, "group"), S(ra, "resource"), S(ra, "subresource"), S(ra, "namespace"), S(ra, "name"))
                with { ApiVersion = S(ra, "version") };
            return true;
        }
        if (spec["nonResourceAttributes"] is JsonObject na && spec["resourceAttributes"] is null)
        {
            request = RequestInfoParser.NonResource(S(na, "verb"), S(na, "path"));
            return true;
        }
        error = "exactly one of nonResourceAttributes or resourceAttributes must be specified";
        return false;
    }

    /// <summary>
    /// The answer the gateway sends itself when its chain does not allow: the review with
    /// <c>status: {allowed: false, denied: true|omitted, reason}</c>, as kube-apiserver shapes it.
    /// </summary>
    public static string NotAllowedResponse(string requestJson, AuthorizationResult result)
    {
        var root = JsonNode.Parse(requestJson) as JsonObject ?? [];
        var response = new JsonObject
        {
            ["kind"] = "SelfSubjectAccessReview",
            ["apiVersion"] = root["apiVersion"]?.GetValue<string>() ?? "authorization.k8s.io/v1",
            ["metadata"] = new JsonObject { ["creationTimestamp"] = null },
            ["spec"] = root["spec"]?.DeepClone() ?? new JsonObject(),
        };
        var status = new JsonObject { ["allowed"] = false };
        if (result.Decision == AuthorizationDecision.Deny)
        {
            status["denied"] = true;
        }
        if (result.Reason.Length > 0)
        {
            status["reason"] = result.Reason;
        }
        if (!string.IsNullOrEmpty(result.Error))
        {
            status["evaluationError"] = result.Error;
        }
        response["status"] = status;
        return response.ToJsonString();
    }

    /// <summary>UTF-8 bytes of <see cref="NotAllowedResponse"/> for a 201 Created answer.</summary>
    public static byte[] NotAllowedResponseBytes(string requestJson, AuthorizationResult result) =>
        Encoding.UTF8.GetBytes(NotAllowedResponse(requestJson, result));
}
