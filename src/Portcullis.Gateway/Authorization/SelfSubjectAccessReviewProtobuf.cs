using System.Text.Json.Nodes;
using static Portcullis.Http.ProtobufWire;

namespace Portcullis.Gateway.Authorization;

/// <summary>
/// Reads a SelfSubjectAccessReview sent as <c>application/vnd.kubernetes.protobuf</c> (what kubectl sends for
/// <c>auth can-i</c>) into the equivalent JSON, so the gateway decides it like a JSON one. The envelope is
/// <c>"k8s\0"</c> + runtime.Unknown {1 typeMeta {1 apiVersion, 2 kind}, 2 raw, 3 contentEncoding, 4 contentType};
/// raw is the review {1 metadata, 2 spec {1 resourceAttributes {1 namespace, 2 verb, 3 group, 4 version, 5 resource,
/// 6 subresource, 7 name}, 2 nonResourceAttributes {1 path, 2 verb}}, 3 status}. As Go's generated code does, a
/// repeated string field takes the last value and a repeated message field is merged; unknown fields are skipped.
/// </summary>
internal static class SelfSubjectAccessReviewProtobuf
{
    private static readonly byte[] Magic = "k8s\0"u8.ToArray();
    private static readonly string[] ResourceFields = ["", "namespace", "verb", "group", "version", "resource", "subresource", "name"];
    private static readonly string[] NonResourceFields = ["", "path", "verb"];

    public static bool TryToJson(byte[] body, out string json, out string error)
    {
        json = "";
        error = "";
        try
        {
            if (!body.AsSpan().StartsWith(Magic))
            {
                error = "the protobuf SelfSubjectAccessReview does not start with the k8s envelope";
                return false;
            }
            string apiVersion = "", kind = "", encoding = "";
            ReadOnlyMemory<byte>? raw = null;
            foreach (var (field, value) in Fields(body.AsMemory(Magic.Length)))
            {
                switch (field)
                {
                    case 1:
                        foreach (var (f, v) in Fields(value))
                        {
                            if (f == 1) apiVersion = Utf8(v);
                            if (f == 2) kind = Utf8(v);
                        }
                        break;
                    case 2:
                        raw = value;
                        break;
                    case 3:
                        encoding = Utf8(value);
                        break;
                }
            }
            if (encoding.Length > 0)
            {
                error = $"the protobuf SelfSubjectAccessReview has content encoding \"{encoding}\"";
                return false;
            }
            if (raw is null)
            {
                error = "the protobuf SelfSubjectAccessReview has no object";
                return false;
            }
            JsonObject? resource = null, nonResource = null;
            foreach (var (field, spec) in Fields(raw.Value))
            {
                if (field != 2)
                {
                    continue;
                }
                foreach (var (f, attributes) in Fields(spec))
                {
                    if (f == 1)
                    {
                        Merge(resource ??= [], attributes, ResourceFields);
                    }
                    else if (f == 2)
                    {
                        Merge(nonResource ??= [], attributes, NonResourceFields);
                    }
                }
            }
            var specJson = new JsonObject();
            if (resource is not null)
            {
                specJson["resourceAttributes"] = resource;
            }
            if (nonResource is not null)
            {
                specJson["nonResourceAttributes"] = nonResource;
            }
            json = new JsonObject
            {
                ["kind"] = kind.Length > 0 ? kind : "SelfSubjectAccessReview",
                ["apiVersion"] = apiVersion.Length > 0 ? apiVersion : "authorization.k8s.io/v1",
                ["spec"] = specJson,
            }.ToJsonString();
            return true;
        }
        catch (FormatException ex)
        {
            error = "the protobuf SelfSubjectAccessReview cannot be read: " + ex.Message;
            return false;
        }
    }

    /// <summary>
    /// Reads <c>spec.namespace</c> of a SelfSubjectRulesReview sent as protobuf: the same envelope, raw is the review
    /// {1 metadata, 2 spec {1 namespace}, 3 status}; the last namespace wins and a repeated spec is merged, as in Go.
    /// </summary>
    public static bool TryReadRulesReviewNamespace(byte[] body, out string ns, out string error)
    {
        ns = "";
        error = "";
        try
        {
            if (!body.AsSpan().StartsWith(Magic))
            {
                error = "the protobuf SelfSubjectRulesReview does not start with the k8s envelope";
                return false;
            }
            string encoding = "";
            ReadOnlyMemory<byte>? raw = null;
            foreach (var (field, value) in Fields(body.AsMemory(Magic.Length)))
            {
                if (field == 2)
                {
                    raw = value;
                }
                else if (field == 3)
                {
                    encoding = Utf8(value);
                }
            }
            if (encoding.Length > 0)
            {
                error = $"the protobuf SelfSubjectRulesReview has content encoding \"{encoding}\"";
                return false;
            }
            if (raw is null)
            {
                error = "the protobuf SelfSubjectRulesReview has no object";
                return false;
            }
            foreach (var (field, spec) in Fields(raw.Value))
            {
                if (field != 2)
                {
                    continue;
                }
                foreach (var (f, value) in Fields(spec))
                {
                    if (f == 1)
                    {
                        ns = Utf8(value);
                    }
                }
            }
            return true;
        }
        catch (FormatException ex)
        {
            error = "the protobuf SelfSubjectRulesReview cannot be read: " + ex.Message;
            return false;
        }
    }

    private static void Merge(JsonObject target, ReadOnlyMemory<byte> message, string[] names)
    {
        foreach (var (f, v) in Fields(message))
        {
            if (f > 0 && f < names.Length)
            {
                target[names[f]] = Utf8(v); // last one wins, as in Go
            }
        }
    }
}
