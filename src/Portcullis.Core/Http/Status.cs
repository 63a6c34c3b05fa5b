using System.Text;

namespace Portcullis.Http;

/// <summary>Kubernetes <c>Status</c> bodies, serialized byte-for-byte as kube-apiserver writes them.</summary>
public static class Status
{
    /// <summary>The 401 body: <c>{"kind":"Status",...,"message":"Unauthorized","reason":"Unauthorized","code":401}</c>.</summary>
    public static readonly byte[] Unauthorized = Failure("Unauthorized", "Unauthorized", 401);

    /// <summary>A Status with status Failure, message, reason and code; details omitted.</summary>
    public static byte[] Failure(string message, string reason, int code) => Write(message, reason, null, code);

    /// <summary>A Status with details (name, group, kind) whose empty members are omitted; an empty details object is kept.</summary>
    public static byte[] Failure(string message, string reason, StatusDetails details, int code) => Write(message, reason, details, code);

    private static byte[] Write(string message, string reason, StatusDetails? details, int code)
    {
        var sb = new StringBuilder(256);
        sb.Append("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":");
        GoJson.AppendString(sb, message);
        sb.Append(",\"reason\":");
        GoJson.AppendString(sb, reason);
        if (details is not null)
        {
            sb.Append(",\"details\":{");
            var first = true;
            AppendMember(sb, "name", details.Name, ref first);
            AppendMember(sb, "group", details.Group, ref first);
            AppendMember(sb, "kind", details.Kind, ref first);
            sb.Append('}');
        }
        sb.Append(",\"code\":").Append(code).Append('}');
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    private static void AppendMember(StringBuilder sb, string key, string value, ref bool first)
    {
        if (value.Length == 0)
        {
            return;
        }
        if (!first)
        {
            sb.Append(',');
        }
        first = false;
        sb.Append('"').Append(key).Append("\":");
        GoJson.AppendString(sb, value);
    }

    public static string ToText(byte[] body) => Encoding.UTF8.GetString(body);
}

/// <summary>Status <c>details</c>: name, group, kind (kind holds the resource, as kube-apiserver's Forbidden does).</summary>
public sealed record StatusDetails(string Name = "", string Group = "", string Kind = "");
