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
        using var w = new GoJsonWriter(256);
        w.Raw("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":"u8);
        w.String(message);
        w.Raw(",\"reason\":"u8);
        w.String(reason);
        if (details is not null)
        {
            w.Raw(",\"details\":{"u8);
            var first = true;
            Member(w, "\"name\":"u8, details.Name, ref first);
            Member(w, "\"group\":"u8, details.Group, ref first);
            Member(w, "\"kind\":"u8, details.Kind, ref first);
            w.Raw((byte)'}');
        }
        w.Raw(",\"code\":"u8);
        w.Int(code);
        w.Raw((byte)'}');
        return w.ToArray();
    }

    private static void Member(GoJsonWriter w, ReadOnlySpan<byte> quotedNameWithColon, string value, ref bool first)
    {
        if (value.Length == 0)
        {
            return;
        }
        if (!first)
        {
            w.Raw((byte)',');
        }
        first = false;
        w.Name(quotedNameWithColon);
        w.String(value);
    }

    public static string ToText(byte[] body) => Encoding.UTF8.GetString(body);
}

/// <summary>Status <c>details</c>: name, group, kind (kind holds the resource, as kube-apiserver's Forbidden does).</summary>
public sealed record StatusDetails(string Name = "", string Group = "", string Kind = "");
