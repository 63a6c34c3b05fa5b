using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Http;

namespace Portcullis.Sandbox.Identity;

/// <summary>The user a request came from, as the sandbox saw it, and where it was read from.</summary>
public sealed record RequestIdentity(
    string Username,
    IReadOnlyList<string> Groups,
    string? Uid,
    IReadOnlyDictionary<string, IReadOnlyList<string>> Extra,
    string Source)
{
    /// <summary>The identity used when a request carries none (cannot happen over mTLS; kept for completeness).</summary>
    public static RequestIdentity Anonymous { get; } =
        new("system:anonymous", ["system:unauthenticated"], null, new Dictionary<string, IReadOnlyList<string>>(), "none");

    /// <summary>
    /// The identity of the request. When the sandbox authenticates and authorizes itself (webhook mode), the one its
    /// security stage established; never a header. Otherwise it reads the identity the way an upstream behind a gateway
    /// does: Impersonate-* headers first, then the requestheader X-Remote-* headers, then the client certificate's CN
    /// (user) and O (groups), believing whatever it is told.
    /// </summary>
    public static RequestIdentity From(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Features.Get<VerifiedIdentityFeature>() is { } verified)
        {
            return verified.Identity;
        }
        var headers = context.Request.Headers;
        if (headers.TryGetValue("Impersonate-User", out var user) && !string.IsNullOrEmpty(user))
        {
            return new RequestIdentity(user.ToString(), Values(headers, "Impersonate-Group"),
                headers.TryGetValue("Impersonate-Uid", out var uid) ? uid.ToString() : null,
                ExtraHeaders(headers, "Impersonate-Extra-"), "impersonation");
        }
        if (headers.TryGetValue("X-Remote-User", out var remote) && !string.IsNullOrEmpty(remote))
        {
            return new RequestIdentity(remote.ToString(), Values(headers, "X-Remote-Group"),
                headers.TryGetValue("X-Remote-Uid", out var uid) ? uid.ToString() : null,
                ExtraHeaders(headers, "X-Remote-Extra-"), "requestheader");
        }
        var certificate = context.Connection.ClientCertificate;
        return certificate is null ? Anonymous : FromCertificate(certificate);
    }

    /// <summary>CN is the user name, each O a group, as in Kubernetes x509 authentication.</summary>
    public static RequestIdentity FromCertificate(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        string? commonName = null;
        var groups = new List<string>();
        foreach (var rdn in certificate.SubjectName.EnumerateRelativeDistinguishedNames(reversed: false))
        {
            switch (rdn.GetSingleElementType().Value)
            {
                case "2.5.4.3":
                    commonName ??= rdn.GetSingleElementValue();
                    break;
                case "2.5.4.10":
                    if (rdn.GetSingleElementValue() is { } group)
                    {
                        groups.Add(group);
                    }
                    break;
            }
        }
        return new RequestIdentity(commonName ?? "", groups, null, new Dictionary<string, IReadOnlyList<string>>(), "client-certificate");
    }

    private static List<string> Values(IHeaderDictionary headers, string name)
    {
        var result = new List<string>();
        if (headers.TryGetValue(name, out var values))
        {
            foreach (var value in values)
            {
                if (!string.IsNullOrEmpty(value))
                {
                    result.Add(value);
                }
            }
        }
        return result;
    }

    private static Dictionary<string, IReadOnlyList<string>> ExtraHeaders(IHeaderDictionary headers, string prefix)
    {
        var extra = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var (name, values) in headers)
        {
            if (name.Length > prefix.Length && name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                // Extra keys travel percent-encoded in header names and are case-insensitive.
                var key = Uri.UnescapeDataString(name[prefix.Length..]).ToLowerInvariant();
                extra[key] = [.. values.Where(v => v is not null).Select(v => v!)];
            }
        }
        return extra;
    }
}

/// <summary>The identity the sandbox's own authentication (and impersonation) established for a request in webhook mode.</summary>
public sealed class VerifiedIdentityFeature(RequestIdentity identity)
{
    public RequestIdentity Identity { get; } = identity;
}
