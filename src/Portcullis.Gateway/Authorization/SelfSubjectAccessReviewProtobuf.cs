using System.Text;
using System.Text.Json.Nodes;

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

    private static string Utf8(ReadOnlyMemory<byte> value)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(value.Span);
        }
        catch (DecoderFallbackException ex)
        {
            throw new FormatException("a string is not UTF-8", ex);
        }
    }

    /// <summary>The length-delimited fields of a message (others are skipped); FormatException when malformed.</summary>
    private static List<(int Field, ReadOnlyMemory<byte> Value)> Fields(ReadOnlyMemory<byte> message)
    {
        var fields = new List<(int, ReadOnlyMemory<byte>)>();
        var span = message.Span;
        var i = 0;
        while (i < span.Length)
        {
            var key = Varint(span, ref i);
            var field = key >> 3;
            if (field is 0 or > int.MaxValue)
            {
                throw new FormatException("invalid field number");
            }
            switch (key & 7)
            {
                case 0:
                    Varint(span, ref i);
                    break;
                case 1:
                    i = Skip(span, i, 8);
                    break;
                case 2:
                    var length = Varint(span, ref i);
                    if (length > (ulong)(span.Length - i))
                    {
                        throw new FormatException("a length runs past the end");
                    }
                    fields.Add(((int)field, message.Slice(i, (int)length)));
                    i += (int)length;
                    break;
                case 5:
                    i = Skip(span, i, 4);
                    break;
                default:
                    throw new FormatException($"unsupported wire type {key & 7}");
            }
        }
        return fields;
    }

    private static int Skip(ReadOnlySpan<byte> span, int i, int count) =>
        span.Length - i >= count ? i + count : throw new FormatException("a fixed-size field runs past the end");

    private static ulong Varint(ReadOnlySpan<byte> span, ref int i)
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (i >= span.Length)
            {
                throw new FormatException("a varint runs past the end");
            }
            var b = span[i++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }
        throw new FormatException("a varint is too long");
    }
}
