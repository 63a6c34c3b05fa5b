using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Portcullis.Authentication;

namespace Portcullis.Authorization.Impersonation;

/// <summary>One legacy impersonation check (spec §3): the requestor must be allowed verb <c>impersonate</c> on it.</summary>
/// <param name="Kind">User, ServiceAccount, Group, UserExtra or UID.</param>
/// <param name="Request">The attributes to authorize (verb impersonate, group, resource, subresource, name, namespace).</param>
public sealed record ImpersonationCheck(string Kind, RequestInfo Request);

/// <summary>The checks to run and the identity that results when they all allow.</summary>
public sealed record ImpersonationPlan(UserInfo ImpersonatedUser, IReadOnlyList<ImpersonationCheck> Checks);

/// <summary>The outcome of parsing the Impersonate-* headers.</summary>
/// <param name="Plan">The plan; null when the request carries no Impersonate-* header or when it is invalid.</param>
/// <param name="BadRequestMessage">When set, the gateway answers 400 with this message (Status reason BadRequest).</param>
public sealed record ImpersonationRequest(ImpersonationPlan? Plan, string? BadRequestMessage)
{
    public bool IsImpersonating => Plan is not null;
}

/// <summary>The outcome of authorizing a plan: allowed, or the check that was refused with its chain result.</summary>
public sealed record ImpersonationAuthorization(bool Allowed, ImpersonationCheck? FailedCheck, AuthorizationResult Result)
{
    /// <summary>The 403 body for a refused check, e.g. <c>users "bob" is forbidden: User "alice" cannot impersonate ...</c>.</summary>
    public byte[] ForbiddenBody(string requestorName) =>
        FailedCheck is null ? [] : Forbidden.Body(requestorName, FailedCheck.Request, Result.Reason);
}

/// <summary>
/// kube-apiserver's legacy impersonation (spec §3): parses Impersonate-User/-Group/-Uid/-Extra-* header values, lists
/// the authorization checks and computes the impersonated <see cref="UserInfo"/>. The gateway authorizes each check
/// through the chain (<see cref="AuthorizeAsync"/>), then removes every Impersonate-* header before forwarding.
/// </summary>
public static partial class ImpersonationHeaders
{
    public const string UserHeader = "Impersonate-User";
    public const string GroupHeader = "Impersonate-Group";
    public const string UidHeader = "Impersonate-Uid";
    public const string ExtraHeaderPrefix = "Impersonate-Extra-";
    public const string AuthenticationGroup = "authentication.k8s.io";

    /// <summary>True for headers the gateway must consume and never forward (any case).</summary>
    public static bool IsImpersonationHeader(string name) => name.StartsWith("Impersonate-", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Parses the headers, given as (name, value) pairs, one per header line as received (values are not split on
    /// commas, as Go does not split them). Returns no plan when none is present, or a 400 message when
    /// group/uid/extra come without a user, or when a value or a decoded extra key fails <see cref="IdentityValidator.Check"/>
    /// (control character, lone surrogate, leading or trailing whitespace).
    /// </summary>
    public static ImpersonationRequest Parse(IEnumerable<KeyValuePair<string, string>> headers)
    {
        string? user = null;
        string? uid = null;
        var groups = new List<string>();
        var extras = new List<(string Key, string Value)>();
        var any = false;
        foreach (var (name, value) in headers)
        {
            if (!IsImpersonationHeader(name))
            {
                continue;
            }
            any = true;
            if (IdentityValidator.Check(value) is { } badValue)
            {
                // The same rule as for authenticated identities: the impersonated identity is forwarded as header values.
                return new ImpersonationRequest(null, $"invalid impersonation header {name}: its value {badValue}");
            }
            if (name.Equals(UserHeader, StringComparison.OrdinalIgnoreCase))
            {
                user ??= value; // Header.Get: the first value
            }
            else if (name.Equals(GroupHeader, StringComparison.OrdinalIgnoreCase))
            {
                groups.Add(value);
            }
            else if (name.Equals(UidHeader, StringComparison.OrdinalIgnoreCase))
            {
                uid ??= value;
            }
            else if (name.StartsWith(ExtraHeaderPrefix, StringComparison.OrdinalIgnoreCase))
            {
                var key = UnescapeExtraKey(name[ExtraHeaderPrefix.Length..].ToLowerInvariant());
                if (IdentityValidator.Check(key) is { } badKey)
                {
                    // Percent-decoding can produce what a header name cannot carry (%0D%0A, %09, %20 at an end).
                    return new ImpersonationRequest(null, $"invalid impersonation header {name}: its decoded extra key {badKey}");
                }
                extras.Add((key, value));
            }
        }
        if (!any)
        {
            return new ImpersonationRequest(null, null);
        }

        var hasUser = !string.IsNullOrEmpty(user);
        var hasUid = !string.IsNullOrEmpty(uid);
        var checks = new List<ImpersonationCheck>();
        var refs = new List<string>(); // Go's %v of []v1.ObjectReference, for the 400 message
        string? saNamespace = null;
        if (hasUser)
        {
            if (TrySplitServiceAccount(user!, out var ns, out var saName))
            {
                saNamespace = ns;
                checks.Add(new ImpersonationCheck("ServiceAccount", RequestInfoParser.Resource("impersonate", "", "serviceaccounts", "", ns, saName)));
                refs.Add(Ref("ServiceAccount", ns, saName, "", ""));
            }
            else
            {
                checks.Add(new ImpersonationCheck("User", RequestInfoParser.Resource("impersonate", "", "users", name: user!)));
                refs.Add(Ref("User", "", user!, "", ""));
            }
        }
        foreach (var g in groups)
        {
            checks.Add(new ImpersonationCheck("Group", RequestInfoParser.Resource("impersonate", "", "groups", name: g)));
            refs.Add(Ref("Group", "", g, "", ""));
        }
        foreach (var (key, value) in extras)
        {
            checks.Add(new ImpersonationCheck("UserExtra", RequestInfoParser.Resource("impersonate", AuthenticationGroup, "userextras", key, name: value)));
            refs.Add(Ref("UserExtra", "", value, "authentication.k8s.io/v1", key));
        }
        if (hasUid)
        {
            checks.Add(new ImpersonationCheck("UID", RequestInfoParser.Resource("impersonate", AuthenticationGroup, "uids", name: uid!)));
            refs.Add(Ref("UID", "", uid!, "authentication.k8s.io/v1", ""));
        }
        if (!hasUser)
        {
            if (groups.Count > 0 || extras.Count > 0 || hasUid)
            {
                return new ImpersonationRequest(null, $"requested [{string.Join(' ', refs)}] without impersonating a user");
            }
            return new ImpersonationRequest(null, null); // only empty values: nothing to impersonate
        }

        var resultGroups = new List<string>(groups);
        if (saNamespace is not null && groups.Count == 0)
        {
            resultGroups.Add("system:serviceaccounts");
            resultGroups.Add("system:serviceaccounts:" + saNamespace);
        }
        var marker = user == UserInfo.Anonymous ? UserInfo.UnauthenticatedGroup : UserInfo.AuthenticatedGroup;
        if (!resultGroups.Contains(marker))
        {
            resultGroups.Add(marker);
        }
        var extra = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var (key, value) in extras)
        {
            extra[key] = extra.TryGetValue(key, out var existing) ? [.. existing, value] : [value];
        }
        var impersonated = new UserInfo(user!, uid ?? "", resultGroups, extra.Count == 0 ? UserInfo.NoExtra : extra);
        return new ImpersonationRequest(new ImpersonationPlan(impersonated, checks), null);
    }

    /// <summary>
    /// Authorizes every check of <paramref name="plan"/> for <paramref name="requestor"/> through
    /// <paramref name="authorizer"/> (the chain). Each must be Allow; NoOpinion counts as refused. The first refusal is
    /// returned with its result (an error in it means 500, as for any authorization).
    /// </summary>
    public static async ValueTask<ImpersonationAuthorization> AuthorizeAsync(IAuthorizer authorizer, UserInfo requestor,
        ImpersonationPlan plan, IPAddress? sourceAddress, string? tokenSha256, string? certificateSerial, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(authorizer);
        ArgumentNullException.ThrowIfNull(plan);
        AuthorizationResult last = default;
        foreach (var check in plan.Checks)
        {
            var result = await authorizer.AuthorizeAsync(new AuthorizationAttributes(requestor, check.Request, sourceAddress, tokenSha256, certificateSerial), cancellationToken).ConfigureAwait(false);
            if (!result.IsAllowed)
            {
                return new ImpersonationAuthorization(false, check, result);
            }
            last = result;
        }
        return new ImpersonationAuthorization(true, null, last);
    }

    // Go prints a v1.ObjectReference with %v as {Kind Namespace Name UID APIVersion ResourceVersion FieldPath}.
    private static string Ref(string kind, string ns, string name, string apiVersion, string fieldPath) =>
        "{" + string.Join(' ', kind, ns, name, "", apiVersion, "", fieldPath) + "}";

    // serviceaccount.SplitUsername: "system:serviceaccount:<ns>:<name>" with a valid namespace and name.
    private static bool TrySplitServiceAccount(string user, out string ns, out string name)
    {
        ns = name = "";
        const string prefix = "system:serviceaccount:";
        if (!user.StartsWith(prefix, StringComparison.Ordinal))
        {
            return false;
        }
        var parts = user[prefix.Length..].Split(':');
        if (parts.Length != 2 || !Dns1123Label().IsMatch(parts[0]) || parts[0].Length > 63
            || !Dns1123Subdomain().IsMatch(parts[1]) || parts[1].Length > 253)
        {
            return false;
        }
        ns = parts[0];
        name = parts[1];
        return true;
    }

    private static string UnescapeExtraKey(string encoded)
    {
        if (!encoded.Contains('%', StringComparison.Ordinal))
        {
            return encoded;
        }
        var bytes = new List<byte>(encoded.Length);
        for (var i = 0; i < encoded.Length; i++)
        {
            if (encoded[i] == '%')
            {
                if (i + 2 >= encoded.Length || !char.IsAsciiHexDigit(encoded[i + 1]) || !char.IsAsciiHexDigit(encoded[i + 2]))
                {
                    return encoded; // Go keeps the key as sent when it does not unescape
                }
                bytes.Add(Convert.ToByte(encoded.Substring(i + 1, 2), 16));
                i += 2;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(encoded[i].ToString()));
            }
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex Dns1123Label();

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex Dns1123Subdomain();
}
