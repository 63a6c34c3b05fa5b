using System.Text.Json;

namespace Portcullis.Audit;

/// <summary>Reads the audit-relevant fields of a Kubernetes <c>Status</c> body.</summary>
public static class AuditResponseStatusParser
{
    /// <summary>Status fields when <paramref name="body"/> is a <c>kind: Status</c> object, else only the code.</summary>
    public static AuditResponseStatus FromBody(int code, ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty || body.IndexOf("\"Status\""u8) < 0)
        {
            return new AuditResponseStatus(code);
        }
        try
        {
            var reader = new Utf8JsonReader(body, AuditEventSerializer.ReaderOptions);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return new AuditResponseStatus(code);
            }
            string kind = "", status = "", message = "", reason = "";
            AuditStatusDetails? details = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString();
                reader.Read();
                switch (name)
                {
                    case "kind" when reader.TokenType == JsonTokenType.String: kind = reader.GetString() ?? ""; break;
                    case "status" when reader.TokenType == JsonTokenType.String: status = reader.GetString() ?? ""; break;
                    case "message" when reader.TokenType == JsonTokenType.String: message = reader.GetString() ?? ""; break;
                    case "reason" when reader.TokenType == JsonTokenType.String: reason = reader.GetString() ?? ""; break;
                    case "details" when reader.TokenType == JsonTokenType.StartObject: details = ReadDetails(ref reader); break;
                    default: reader.Skip(); break;
                }
            }
            return kind == "Status" ? new AuditResponseStatus(code, status, message, reason, details) : new AuditResponseStatus(code);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // Not JSON, or a string that is not valid UTF-8 (GetString throws InvalidOperationException): code only.
            return new AuditResponseStatus(code);
        }
    }

    private static AuditStatusDetails ReadDetails(ref Utf8JsonReader reader)
    {
        string name = "", group = "", kind = "";
        var retry = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var key = reader.GetString();
            reader.Read();
            switch (key)
            {
                case "name" when reader.TokenType == JsonTokenType.String: name = reader.GetString() ?? ""; break;
                case "group" when reader.TokenType == JsonTokenType.String: group = reader.GetString() ?? ""; break;
                case "kind" when reader.TokenType == JsonTokenType.String: kind = reader.GetString() ?? ""; break;
                case "retryAfterSeconds" when reader.TokenType == JsonTokenType.Number: reader.TryGetInt32(out retry); break;
                default: reader.Skip(); break;
            }
        }
        return new AuditStatusDetails(name, group, kind, retry);
    }

    /// <summary>
    /// metadata.name, namespace, uid and resourceVersion of a JSON object; empty strings when absent or not JSON. Never
    /// throws; nesting is accepted as deep as kube-apiserver accepts it (<see cref="AuditEventSerializer.MaxJsonDepth"/>).
    /// </summary>
    public static (string Name, string Namespace, string Uid, string ResourceVersion) ReadMetadata(ReadOnlySpan<byte> json)
    {
        string name = "", ns = "", uid = "", rv = "";
        try
        {
            var reader = new Utf8JsonReader(json, AuditEventSerializer.ReaderOptions);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return (name, ns, uid, rv);
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isMetadata = reader.ValueTextEquals("metadata"u8);
                reader.Read();
                if (!isMetadata || reader.TokenType != JsonTokenType.StartObject)
                {
                    reader.Skip();
                    continue;
                }
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var key = reader.GetString();
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String)
                    {
                        reader.Skip();
                        continue;
                    }
                    switch (key)
                    {
                        case "name": name = reader.GetString() ?? ""; break;
                        case "namespace": ns = reader.GetString() ?? ""; break;
                        case "uid": uid = reader.GetString() ?? ""; break;
                        case "resourceVersion": rv = reader.GetString() ?? ""; break;
                        default: break;
                    }
                }
                break;
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // Not JSON (protobuf, truncated) or invalid UTF-8 in a string (pass the body through
            // AuditEventSerializer.ReplaceInvalidUtf8 first to read it as kube-apiserver does): kube-apiserver could not
            // decode it either, so objectRef keeps what RequestInfo gave.
            return ("", "", "", "");
        }
        return (name, ns, uid, rv);
    }
}
