using System.Globalization;
using System.Text;
using Portcullis.Http;

namespace Portcullis.Authorization;

/// <summary>
/// kube-apiserver's 403 (spec §4.3): <c>&lt;prefix&gt;&lt;msg&gt;[: &lt;reason&gt;]</c> with Go <c>%q</c> quoting and
/// <c>&amp; &lt; &gt;</c> HTML-escaped in the msg part, as a Status with reason Forbidden and details name/group/kind.
/// Send it with <c>Content-Type: application/json</c> and <c>X-Content-Type-Options: nosniff</c>.
/// </summary>
public static class Forbidden
{
    /// <summary>The Status message for <paramref name="userName"/> being refused <paramref name="request"/>.</summary>
    public static string Message(string userName, RequestInfo request, string reason)
    {
        var msg = new StringBuilder(160);
        if (request.IsResourceRequest)
        {
            var resource = request.Subresource.Length > 0 ? request.Resource + "/" + request.Subresource : request.Resource;
            msg.Append("User ").Append(GoQuote(userName)).Append(" cannot ").Append(request.Verb)
               .Append(" resource ").Append(GoQuote(resource)).Append(" in API group ").Append(GoQuote(request.ApiGroup));
            if (request.Namespace.Length > 0)
            {
                msg.Append(" in the namespace ").Append(GoQuote(request.Namespace));
            }
            else
            {
                msg.Append(" at the cluster scope");
            }
        }
        else
        {
            msg.Append("User ").Append(GoQuote(userName)).Append(" cannot ").Append(request.Verb)
               .Append(" path ").Append(GoQuote(request.Path));
        }
        var sanitized = msg.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").ToString();
        var err = reason.Length > 0 ? sanitized + ": " + reason : sanitized;

        var qualified = QualifiedResource(request);
        if (qualified.Length == 0)
        {
            return "forbidden: " + err;
        }
        return request.Name.Length == 0
            ? qualified + " is forbidden: " + err
            : qualified + " " + GoQuote(request.Name) + " is forbidden: " + err;
    }

    /// <summary>The 403 Status body, byte-exact as kube-apiserver writes it.</summary>
    public static byte[] Body(string userName, RequestInfo request, string reason) =>
        Status.Failure(Message(userName, request, reason), "Forbidden", Details(request), 403);

    /// <summary>Status details: name, group, kind (= resource); all empty for non-resource requests.</summary>
    public static StatusDetails Details(RequestInfo request) =>
        request.IsResourceRequest ? new StatusDetails(request.Name, request.ApiGroup, request.Resource) : new StatusDetails();

    /// <summary>
    /// The 403 for a refused impersonation check: built from the check's attributes and the requestor's name, e.g.
    /// <c>users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope</c>.
    /// </summary>
    public static byte[] ImpersonationBody(string requestorName, Impersonation.ImpersonationCheck check, string reason) =>
        Body(requestorName, check.Request, reason);

    private static string QualifiedResource(RequestInfo request)
    {
        if (!request.IsResourceRequest || (request.Resource.Length == 0 && request.ApiGroup.Length == 0))
        {
            return "";
        }
        return request.ApiGroup.Length == 0 ? request.Resource : request.Resource + "." + request.ApiGroup;
    }

    /// <summary>Go's <c>strconv.Quote</c> for the characters names can carry.</summary>
    public static string GoQuote(string value)
    {
        var sb = new StringBuilder(value.Length + 2);
        sb.Append('"');
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\a': sb.Append("\\a"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\v': sb.Append("\\v"); break;
                default:
                    if (c < 0x20 || c == 0x7f)
                    {
                        sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    }
                    else if (char.IsSurrogate(c) && !(char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1])))
                    {
                        sb.Append("\\ufffd");
                    }
                    else if (c is >= '\u0080' and <= '\u009f')
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }
                    break;
            }
        }
        return sb.Append('"').ToString();
    }
}
