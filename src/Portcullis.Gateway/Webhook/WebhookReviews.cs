using System.Text.Json;
using Portcullis.Authentication;
using Portcullis.Authorization;

namespace Portcullis.Gateway.Webhook;

/// <summary>A TokenReview as kube-apiserver's webhook token authenticator sends it.</summary>
/// <param name="ApiVersion"><c>authentication.k8s.io/v1</c> or <c>/v1beta1</c>; the answer carries the same.</param>
/// <param name="Token">The bearer token (never logged, audited or echoed).</param>
/// <param name="Audiences"><c>spec.audiences</c>; empty when the API server sent none.</param>
internal sealed record TokenReviewRequest(string ApiVersion, string Token, IReadOnlyList<string> Audiences);

/// <summary>A SubjectAccessReview as kube-apiserver's webhook authorizer sends it.</summary>
internal sealed record SubjectAccessReviewRequest(string ApiVersion, UserInfo User, RequestInfo Request);

/// <summary>The status of a SubjectAccessReview answer: allowed, denied, or neither (no opinion).</summary>
internal readonly record struct ReviewStatus(bool Allowed, bool Denied, string Reason, string EvaluationError);

/// <summary>
/// kube-apiserver's webhook wire format: TokenReview (<c>authentication.k8s.io/v1</c>, <c>v1beta1</c>) and
/// SubjectAccessReview (<c>authorization.k8s.io/v1</c>, <c>v1beta1</c>: <c>groups</c> in v1, <c>group</c> in v1beta1)
/// read, and the answers written with the Go field names (<c>apiVersion</c>, <c>kind</c>, <c>status</c>; empty optional
/// fields omitted as <c>omitempty</c> does). A parse error never quotes the token.
/// </summary>
internal static class WebhookReviews
{
    public const string TokenReviewKind = "TokenReview";
    public const string SubjectAccessReviewKind = "SubjectAccessReview";
    public const string CredentialIdKey = "authentication.kubernetes.io/credential-id";
    public const string X509CredentialPrefix = "X509SHA256=";

    private static readonly string[] AuthenticationVersions = ["authentication.k8s.io/v1", "authentication.k8s.io/v1beta1"];
    private static readonly string[] AuthorizationVersions = ["authorization.k8s.io/v1", "authorization.k8s.io/v1beta1"];

    private static readonly JsonDocumentOptions Options = new() { MaxDepth = 16 };

    public static bool TryParseTokenReview(ReadOnlyMemory<byte> body, out TokenReviewRequest? review, out string error)
    {
        review = null;
        try
        {
            using var doc = JsonDocument.Parse(body, Options);
            if (!Header(doc.RootElement, TokenReviewKind, AuthenticationVersions, out var apiVersion, out error))
            {
                return false;
            }
            if (!doc.RootElement.TryGetProperty("spec", out var spec) || spec.ValueKind != JsonValueKind.Object)
            {
                error = "the TokenReview has no spec";
                return false;
            }
            if (!spec.TryGetProperty("token", out var token) || token.ValueKind != JsonValueKind.String || token.GetString() is not { Length: > 0 } value)
            {
                error = "spec.token is required (a non-empty string)";
                return false;
            }
            if (!Strings(spec, "audiences", out var audiences, out error))
            {
                return false;
            }
            review = new TokenReviewRequest(apiVersion, value, audiences);
            return true;
        }
        catch (JsonException)
        {
            // The exception's message can quote the text around the error, which may be the token.
            error = "the body is not a JSON TokenReview";
            return false;
        }
    }

    public static bool TryParseSubjectAccessReview(ReadOnlyMemory<byte> body, out SubjectAccessReviewRequest? review, out string error)
    {
        review = null;
        try
        {
            using var doc = JsonDocument.Parse(body, Options);
            if (!Header(doc.RootElement, SubjectAccessReviewKind, AuthorizationVersions, out var apiVersion, out error))
            {
                return false;
            }
            if (!doc.RootElement.TryGetProperty("spec", out var spec) || spec.ValueKind != JsonValueKind.Object)
            {
                error = "the SubjectAccessReview has no spec";
                return false;
            }
            var hasResource = spec.TryGetProperty("resourceAttributes", out var ra) && ra.ValueKind == JsonValueKind.Object;
            var hasNonResource = spec.TryGetProperty("nonResourceAttributes", out var na) && na.ValueKind == JsonValueKind.Object;
            if (hasResource == hasNonResource)
            {
                error = "exactly one of spec.resourceAttributes or spec.nonResourceAttributes must be specified";
                return false;
            }
            var request = hasResource
                ? RequestInfoParser.Resource(Str(ra, "verb"), Str(ra, "group"), Str(ra, "resource"), Str(ra, "subresource"), Str(ra, "namespace"), Str(ra, "name"))
                    with { ApiVersion = Str(ra, "version") }
                : RequestInfoParser.NonResource(Str(na, "verb"), Str(na, "path"));
            var user = Str(spec, "user");
            var groupsField = apiVersion.EndsWith("/v1beta1", StringComparison.Ordinal) ? "group" : "groups";
            if (!Strings(spec, groupsField, out var groups, out error))
            {
                return false;
            }
            var extra = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
            if (spec.TryGetProperty("extra", out var extraElement) && extraElement.ValueKind != JsonValueKind.Null)
            {
                if (extraElement.ValueKind != JsonValueKind.Object)
                {
                    error = "spec.extra must be an object of string lists";
                    return false;
                }
                foreach (var property in extraElement.EnumerateObject())
                {
                    if (!Strings(extraElement, property.Name, out var values, out _))
                    {
                        error = "spec.extra must be an object of string lists";
                        return false;
                    }
                    extra[property.Name] = values;
                }
            }
            if (user.Length == 0 && groups.Count == 0)
            {
                error = "at least one of spec.user or spec." + groupsField + " must be specified";
                return false;
            }
            review = new SubjectAccessReviewRequest(apiVersion, UserInfo.Create(user, groups, Str(spec, "uid"), extra), request);
            return true;
        }
        catch (JsonException ex)
        {
            error = "the body is not a JSON SubjectAccessReview: " + ex.Message;
            return false;
        }
    }

    /// <summary>The SHA-256 fingerprints (lower-case hex) kube-apiserver's x509 authenticator put in <c>extra</c>.</summary>
    public static IEnumerable<string> CertificateFingerprints(UserInfo user)
    {
        if (!user.Extra.TryGetValue(CredentialIdKey, out var ids))
        {
            yield break;
        }
        foreach (var id in ids)
        {
            if (id.StartsWith(X509CredentialPrefix, StringComparison.Ordinal) && id.Length == X509CredentialPrefix.Length + 64)
            {
                yield return id[X509CredentialPrefix.Length..].ToLowerInvariant();
            }
        }
    }

    /// <summary>An authenticated TokenReview answer: <c>status.authenticated: true</c>, the user, and the audiences (omitted when null).</summary>
    public static byte[] Authenticated(string apiVersion, UserInfo user, IReadOnlyList<string>? audiences) =>
        Write(apiVersion, TokenReviewKind, w =>
        {
            w.WriteBoolean("authenticated", true);
            w.WriteStartObject("user");
            w.WriteString("username", user.Name);
            if (user.Uid.Length > 0)
            {
                w.WriteString("uid", user.Uid);
            }
            if (user.Groups.Count > 0)
            {
                w.WriteStartArray("groups");
                foreach (var g in user.Groups)
                {
                    w.WriteStringValue(g);
                }
                w.WriteEndArray();
            }
            if (user.Extra.Count > 0)
            {
                w.WriteStartObject("extra");
                foreach (var (key, values) in user.Extra.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    w.WriteStartArray(key);
                    foreach (var v in values)
                    {
                        w.WriteStringValue(v);
                    }
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteEndObject();
            if (audiences is { Count: > 0 })
            {
                w.WriteStartArray("audiences");
                foreach (var a in audiences)
                {
                    w.WriteStringValue(a);
                }
                w.WriteEndArray();
            }
        });

    /// <summary>A TokenReview answer <c>status.authenticated: false</c> with an optional <c>error</c>.</summary>
    public static byte[] Unauthenticated(string apiVersion, string error) =>
        Write(apiVersion, TokenReviewKind, w =>
        {
            w.WriteBoolean("authenticated", false);
            if (error.Length > 0)
            {
                w.WriteString("error", error);
            }
        });

    /// <summary>A SubjectAccessReview answer: <c>allowed</c> always, <c>denied</c>, <c>reason</c>, <c>evaluationError</c> when set.</summary>
    public static byte[] Decision(string apiVersion, ReviewStatus status) =>
        Write(apiVersion, SubjectAccessReviewKind, w =>
        {
            w.WriteBoolean("allowed", status.Allowed);
            if (status.Denied)
            {
                w.WriteBoolean("denied", true);
            }
            if (status.Reason.Length > 0)
            {
                w.WriteString("reason", status.Reason);
            }
            if (status.EvaluationError.Length > 0)
            {
                w.WriteString("evaluationError", status.EvaluationError);
            }
        });

    private static byte[] Write(string apiVersion, string kind, Action<Utf8JsonWriter> status)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("apiVersion", apiVersion);
            w.WriteString("kind", kind);
            w.WriteStartObject("status");
            status(w);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static bool Header(JsonElement root, string kind, string[] versions, out string apiVersion, out string error)
    {
        apiVersion = "";
        error = "";
        if (root.ValueKind != JsonValueKind.Object)
        {
            error = $"the body is not a {kind} object";
            return false;
        }
        var gotKind = Str(root, "kind");
        if (gotKind != kind)
        {
            error = $"kind is \"{Portcullis.Diagnostics.SafeText.Of(gotKind, 64)}\", expected {kind}";
            return false;
        }
        apiVersion = Str(root, "apiVersion");
        if (Array.IndexOf(versions, apiVersion) < 0)
        {
            error = $"apiVersion \"{Portcullis.Diagnostics.SafeText.Of(apiVersion, 64)}\" is not one of {string.Join(", ", versions)}";
            return false;
        }
        return true;
    }

    private static string Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() ?? "" : "";

    private static bool Strings(JsonElement e, string name, out IReadOnlyList<string> values, out string error)
    {
        values = [];
        error = "";
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return true;
        }
        if (v.ValueKind != JsonValueKind.Array)
        {
            error = $"{name} must be a list of strings";
            return false;
        }
        var list = new List<string>(v.GetArrayLength());
        foreach (var item in v.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
            {
                error = $"{name} must be a list of strings";
                return false;
            }
            list.Add(item.GetString() ?? "");
        }
        values = list;
        return true;
    }
}
