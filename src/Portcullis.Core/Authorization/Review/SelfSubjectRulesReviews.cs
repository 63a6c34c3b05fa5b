using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Portcullis.Authorization.Review;

/// <summary>A resource rule of a SelfSubjectRulesReview (authorization.k8s.io ResourceRule).</summary>
public sealed record ResourceRule(IReadOnlyList<string> Verbs, IReadOnlyList<string> ApiGroups, IReadOnlyList<string> Resources, IReadOnlyList<string> ResourceNames);

/// <summary>A non-resource rule of a SelfSubjectRulesReview (authorization.k8s.io NonResourceRule).</summary>
public sealed record NonResourceRule(IReadOnlyList<string> Verbs, IReadOnlyList<string> NonResourceUrls);

/// <summary>
/// What a user may do in a namespace as the gateway sees it: the status of a SelfSubjectRulesReview.
/// </summary>
/// <param name="ResourceRules">The resource rules, in the order of the authorizers and bindings.</param>
/// <param name="NonResourceRules">The non-resource rules.</param>
/// <param name="Incomplete">True when an authorizer that decides cannot list its rules (Webhook).</param>
/// <param name="EvaluationError">The errors met (missing roles, authorizers without rules), or empty.</param>
/// <param name="RefusedBy">The layer that refuses every request of this user from here (DenyList, NetworkScope), or null.</param>
public sealed record SubjectRules(
    IReadOnlyList<ResourceRule> ResourceRules,
    IReadOnlyList<NonResourceRule> NonResourceRules,
    bool Incomplete,
    string EvaluationError,
    string? RefusedBy = null)
{
    /// <summary>The rules of an authorizer that allows everything (AlwaysAllow's RulesFor).</summary>
    public static ResourceRule AllResources { get; } = new(["*"], ["*"], ["*"], []);

    /// <summary>Every path, every verb.</summary>
    public static NonResourceRule AllPaths { get; } = new(["*"], ["*"]);
}

/// <summary>
/// <c>kubectl auth can-i --list</c>: a SelfSubjectRulesReview (create <c>selfsubjectrulesreviews</c> in
/// <c>authorization.k8s.io</c>) is answered by the gateway from its own chain (<see cref="AuthorizerChain.RulesFor"/>),
/// never by the upstream, whose rules would describe what the upstream lets the gateway's forwarded identity do.
/// </summary>
public static class SelfSubjectRulesReviews
{
    /// <summary>kube-apiserver's 400 message for a review without <c>spec.namespace</c>.</summary>
    public const string NoNamespace = "no namespace on request";

    /// <summary>True for the SSRR create request (v1 or v1beta1), which the gateway answers itself.</summary>
    public static bool IsSelfSubjectRulesReview(RequestInfo request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.IsResourceRequest && request.Verb == "create" && request.ApiGroup == "authorization.k8s.io"
            && request.Resource == "selfsubjectrulesreviews" && request.Subresource.Length == 0;
    }

    /// <summary>
    /// Reads <c>spec.namespace</c> of a SelfSubjectRulesReview body; false with an error for a body that is not a JSON
    /// object or whose spec or namespace has the wrong type. An absent namespace reads as "".
    /// </summary>
    public static bool TryParseNamespace(string json, out string ns, out string error)
    {
        ns = "";
        error = "";
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json);
        }
        catch (JsonException ex)
        {
            error = "the SelfSubjectRulesReview is not JSON: " + ex.Message;
            return false;
        }
        if (root is not JsonObject o)
        {
            error = "the SelfSubjectRulesReview is not a JSON object";
            return false;
        }
        // JsonObject refuses duplicate keys when it is first enumerated
        _ = o.Count;
        switch (o["spec"])
        {
            case null:
                return true;
            case JsonObject spec:
                _ = spec.Count;
                switch (spec["namespace"])
                {
                    case null:
                        return true;
                    case JsonValue v when v.TryGetValue<string>(out var s):
                        ns = s;
                        return true;
                    default:
                        error = "the SelfSubjectRulesReview's spec.namespace is not a string";
                        return false;
                }
            default:
                error = "the SelfSubjectRulesReview's spec is not an object";
                return false;
        }
    }

    /// <summary>
    /// The answer as kube-apiserver writes it: kind, apiVersion, empty metadata and spec, and
    /// <c>status {resourceRules, nonResourceRules, incomplete, evaluationError}</c> (both rule lists always present).
    /// </summary>
    public static byte[] ResponseBytes(string apiVersion, SubjectRules rules)
    {
        ArgumentNullException.ThrowIfNull(apiVersion);
        ArgumentNullException.ThrowIfNull(rules);
        using var buffer = new MemoryStream(512);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("kind", "SelfSubjectRulesReview");
            w.WriteString("apiVersion", apiVersion);
            w.WriteStartObject("metadata");
            w.WriteNull("creationTimestamp");
            w.WriteEndObject();
            w.WriteStartObject("spec");
            w.WriteEndObject();
            w.WriteStartObject("status");
            w.WriteStartArray("resourceRules");
            foreach (var r in rules.ResourceRules)
            {
                w.WriteStartObject();
                Strings(w, "verbs", r.Verbs, always: true);
                Strings(w, "apiGroups", r.ApiGroups);
                Strings(w, "resources", r.Resources);
                Strings(w, "resourceNames", r.ResourceNames);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("nonResourceRules");
            foreach (var r in rules.NonResourceRules)
            {
                w.WriteStartObject();
                Strings(w, "verbs", r.Verbs, always: true);
                Strings(w, "nonResourceURLs", r.NonResourceUrls);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteBoolean("incomplete", rules.Incomplete);
            if (rules.EvaluationError.Length > 0)
            {
                w.WriteString("evaluationError", rules.EvaluationError);
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>UTF-8 text of <see cref="ResponseBytes"/>.</summary>
    public static string Response(string apiVersion, SubjectRules rules) => Encoding.UTF8.GetString(ResponseBytes(apiVersion, rules));

    // Go's omitempty: an empty list is left out (verbs has no omitempty).
    private static void Strings(Utf8JsonWriter w, string name, IReadOnlyList<string> values, bool always = false)
    {
        if (values.Count == 0 && !always)
        {
            return;
        }
        w.WriteStartArray(name);
        foreach (var v in values)
        {
            w.WriteStringValue(v);
        }
        w.WriteEndArray();
    }
}
