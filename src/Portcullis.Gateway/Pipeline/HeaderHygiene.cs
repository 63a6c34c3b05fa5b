using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace Portcullis.Gateway.Pipeline;

/// <summary>
/// Which inbound headers are identity-bearing and must never reach the upstream as the client sent them.
/// Names are compared after lower-casing and mapping '_' to '-', so <c>Impersonate_User</c> and <c>impersonate-user</c>
/// are both caught (an NGINX with <c>underscores_in_headers</c> would otherwise turn one into the other).
/// </summary>
internal static class HeaderHygiene
{
    /// <summary>
    /// True for Authorization, Proxy-Authorization, Impersonate-*, X-Remote-*, Audit-ID, forwarding headers, Host, and
    /// the gateway's own namespace <c>X-Portcullis-*</c> (every spelling: the upstream must never see a client header
    /// there, whatever the gateway itself uses it for).
    /// </summary>
    public static bool IsProtected(string name)
    {
        var n = Normalize(name);
        return n is "authorization" or "proxy-authorization" or "audit-id" or "forwarded" or "x-real-ip" or "host"
            || n.StartsWith("x-forwarded-", StringComparison.Ordinal)
            || n.StartsWith("impersonate-", StringComparison.Ordinal)
            || n.StartsWith("x-remote-", StringComparison.Ordinal)
            || n.StartsWith("x-portcullis", StringComparison.Ordinal);
    }

    /// <summary>kube-apiserver's bearer token in a WebSocket subprotocol list (how browsers send a token).</summary>
    public const string BearerSubprotocolPrefix = "base64url.bearer.authorization.k8s.io.";

    /// <summary>
    /// Removes every bearer-token entry from <c>Sec-WebSocket-Protocol</c>, on every request, upgrade or not: a token
    /// the gateway did not authenticate with must not reach the upstream, which would accept it.
    /// </summary>
    public static void RemoveBearerSubprotocols(System.Net.Http.Headers.HttpRequestHeaders headers)
    {
        if (!headers.TryGetValues("Sec-WebSocket-Protocol", out var values))
        {
            return;
        }
        var kept = new List<string>();
        foreach (var value in values)
        {
            foreach (var entry in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!entry.StartsWith(BearerSubprotocolPrefix, StringComparison.OrdinalIgnoreCase))
                {
                    kept.Add(entry);
                }
            }
        }
        headers.Remove("Sec-WebSocket-Protocol");
        if (kept.Count > 0)
        {
            headers.TryAddWithoutValidation("Sec-WebSocket-Protocol", string.Join(", ", kept));
        }
    }

    /// <summary>True for headers a client may not nominate in <c>Connection</c> (the CVE-2021-31999 trick).</summary>
    public static bool IsIdentityHeader(string name)
    {
        var n = Normalize(name);
        return n is "authorization" or "audit-id"
            || n.StartsWith("impersonate-", StringComparison.Ordinal)
            || n.StartsWith("x-remote-", StringComparison.Ordinal);
    }

    public static string Normalize(string name) => name.Trim().ToLowerInvariant().Replace('_', '-');

    /// <summary>The header names listed in every <c>Connection</c> header, split on commas and trimmed.</summary>
    public static IEnumerable<string> ConnectionNominated(IHeaderDictionary headers)
    {
        foreach (var value in headers.Connection)
        {
            if (value is null)
            {
                continue;
            }
            foreach (var token in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                yield return token;
            }
        }
    }

    /// <summary>Values of a header, accepting the exact canonical name only (case-insensitive, as HTTP says).</summary>
    public static StringValues Values(IHeaderDictionary headers, string name) =>
        headers.TryGetValue(name, out var values) ? values : StringValues.Empty;
}
