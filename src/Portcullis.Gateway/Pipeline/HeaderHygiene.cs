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
    /// <summary>True for Authorization, Impersonate-*, X-Remote-*, Audit-ID and forwarding headers.</summary>
    public static bool IsProtected(string name)
    {
        var n = Normalize(name);
        return n is "authorization" or "audit-id" or "x-forwarded-for" or "forwarded" or "x-real-ip" or "x-forwarded-host" or "x-forwarded-proto"
            || n.StartsWith("impersonate-", StringComparison.Ordinal)
            || n.StartsWith("x-remote-", StringComparison.Ordinal);
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
