using Portcullis.Authentication;
using Portcullis.Authorization;

namespace Portcullis.Admission.Flowcontrol;

/// <summary>A FlowSchema subject: kind <c>User</c>, <c>Group</c> or <c>ServiceAccount</c> (with its namespace); name <c>*</c> = any.</summary>
public sealed record FlowSubject(string Kind, string Name, string Namespace = "")
{
    private const string ServiceAccountPrefix = "system:serviceaccount:";

    /// <summary>kube-apiserver's matchesSubject.</summary>
    public bool Matches(UserInfo user)
    {
        switch (Kind)
        {
            case "User":
                return Name == "*" || Name == user.Name;
            case "Group":
                if (Name == "*")
                {
                    return true;
                }
                var groups = user.Groups;
                for (var i = 0; i < groups.Count; i++) // an index loop: no enumerator allocated
                {
                    if (groups[i] == Name)
                    {
                        return true;
                    }
                }
                return false;
            case "ServiceAccount":
                var name = user.Name.AsSpan();
                if (!name.StartsWith(ServiceAccountPrefix, StringComparison.Ordinal))
                {
                    return false;
                }
                name = name[ServiceAccountPrefix.Length..];
                if (!name.StartsWith(Namespace, StringComparison.Ordinal))
                {
                    return false;
                }
                name = name[Namespace.Length..];
                if (name.Length == 0 || name[0] != ':')
                {
                    return false;
                }
                return Name == "*" || name[1..].SequenceEqual(Name);
            default:
                return false;
        }
    }
}

/// <summary>A FlowSchema resourceRule.</summary>
public sealed record FlowResourceRule(string[] Verbs, string[] ApiGroups, string[] Resources, bool ClusterScope, string[] Namespaces)
{
    public bool Matches(RequestInfo request)
    {
        if (!FlowRules.Contains(Verbs, request.Verb, "*")
            || !FlowRules.ContainsResource(Resources, request.Resource, request.Subresource)
            || !FlowRules.Contains(ApiGroups, request.ApiGroup, "*"))
        {
            return false;
        }
        return request.Namespace.Length == 0 ? ClusterScope : FlowRules.Contains(Namespaces, request.Namespace, "*");
    }
}

/// <summary>A FlowSchema nonResourceRule.</summary>
public sealed record FlowNonResourceRule(string[] Verbs, string[] NonResourceUrls)
{
    public bool Matches(RequestInfo request)
    {
        if (!FlowRules.Contains(Verbs, request.Verb, "*"))
        {
            return false;
        }
        var path = request.Path.AsSpan();
        foreach (var url in NonResourceUrls)
        {
            if (url == "*" || url == request.Path)
            {
                return true;
            }
            // kube-apiserver: the element without a trailing '*', with '/' appended if missing, prefixes the path
            // (so "/healthz" also matches "/healthz/etcd", and "/apis/*" matches "/apis/x").
            var prefix = url.EndsWith('*') ? url.AsSpan(0, url.Length - 1) : url.AsSpan();
            if (prefix.Length > 0 && prefix[^1] == '/')
            {
                if (path.StartsWith(prefix, StringComparison.Ordinal))
                {
                    return true;
                }
            }
            else if (path.Length > prefix.Length && path[prefix.Length] == '/' && path.StartsWith(prefix, StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }
}

/// <summary>A FlowSchema rule: some subject matches and (a resource request) some resourceRule or (otherwise) some nonResourceRule.</summary>
public sealed record FlowPolicyRule(FlowSubject[] Subjects, FlowResourceRule[] ResourceRules, FlowNonResourceRule[] NonResourceRules)
{
    public bool Matches(UserInfo user, RequestInfo request)
    {
        var subject = false;
        foreach (var s in Subjects)
        {
            if (s.Matches(user))
            {
                subject = true;
                break;
            }
        }
        if (!subject)
        {
            return false;
        }
        if (request.IsResourceRequest)
        {
            foreach (var r in ResourceRules)
            {
                if (r.Matches(request))
                {
                    return true;
                }
            }
            return false;
        }
        foreach (var r in NonResourceRules)
        {
            if (r.Matches(request))
            {
                return true;
            }
        }
        return false;
    }
}

internal static class FlowRules
{
    /// <summary>kube-apiserver's containsString: the list is exactly [wildcard], or holds the value.</summary>
    public static bool Contains(string[] list, string value, string wildcard)
    {
        if (list.Length == 1 && list[0] == wildcard)
        {
            return true;
        }
        foreach (var v in list)
        {
            if (v == value)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Resources: exactly ["*"], or "res" / "res/sub" as the request names it.</summary>
    public static bool ContainsResource(string[] list, string resource, string subresource)
    {
        if (list.Length == 1 && list[0] == "*")
        {
            return true;
        }
        foreach (var v in list)
        {
            if (subresource.Length == 0)
            {
                if (v == resource)
                {
                    return true;
                }
            }
            else if (v.Length == resource.Length + 1 + subresource.Length && v.StartsWith(resource, StringComparison.Ordinal)
                && v[resource.Length] == '/' && v.EndsWith(subresource, StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }
}

/// <summary>A FlowSchema (flowcontrol.apiserver.k8s.io/v1; v1beta3 and older read into the same shape).</summary>
public sealed class FlowSchema
{
    public required string Name { get; init; }
    public required string Uid { get; init; }
    public required string PriorityLevelName { get; init; }
    /// <summary>1..10000, lower first; 1000 when not written.</summary>
    public int MatchingPrecedence { get; init; } = 1000;
    /// <summary><c>ByUser</c>, <c>ByNamespace</c> or null (one flow).</summary>
    public string? DistinguisherMethod { get; init; }
    public IReadOnlyList<FlowPolicyRule> Rules { get; init; } = [];
    /// <summary>file:line, or "built-in (mandatory)" / "built-in (suggested)".</summary>
    public string Source { get; init; } = "";

    public bool Matches(UserInfo user, RequestInfo request)
    {
        var rules = Rules;
        for (var i = 0; i < rules.Count; i++) // an index loop: no enumerator allocated
        {
            if (rules[i].Matches(user, request))
            {
                return true;
            }
        }
        return false;
    }

    // The flow hashes of recent distinguishers: SHA-256 costs about a microsecond; a lookup a few tens of nanoseconds.
    // Bounded: once full, further distinguishers are hashed each time (a flood of new user names cannot grow it).
    private const int HashCacheLimit = 4096;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ulong> _hashes = new(StringComparer.Ordinal);

    /// <summary>kube-apiserver's flow hash of this schema and <paramref name="distinguisher"/> (see <see cref="ShuffleShardDealer.FlowHash"/>).</summary>
    public ulong FlowHash(string distinguisher)
    {
        if (_hashes.TryGetValue(distinguisher, out var hash))
        {
            return hash;
        }
        hash = ShuffleShardDealer.FlowHash(Name, distinguisher);
        if (_hashes.Count < HashCacheLimit)
        {
            _hashes.TryAdd(distinguisher, hash);
        }
        return hash;
    }

    /// <summary>The flow distinguisher: the user name (ByUser), the namespace (ByNamespace), or "".</summary>
    public string Distinguisher(UserInfo user, RequestInfo request) => DistinguisherMethod switch
    {
        "ByUser" => user.Name,
        "ByNamespace" => request.Namespace,
        _ => "",
    };
}

/// <summary>A PriorityLevelConfiguration.</summary>
public sealed class PriorityLevelConfiguration
{
    public required string Name { get; init; }
    public required string Uid { get; init; }
    /// <summary>Type Exempt (never waits, never rejected) or Limited.</summary>
    public bool Exempt { get; init; }
    /// <summary>nominalConcurrencyShares: Limited 30 when not written; Exempt 0.</summary>
    public int NominalConcurrencyShares { get; init; }
    /// <summary>lendablePercent 0..100 (default 0).</summary>
    public int LendablePercent { get; init; }
    /// <summary>borrowingLimitPercent; null = unlimited.</summary>
    public int? BorrowingLimitPercent { get; init; }
    /// <summary>limitResponse.type Reject (true) or Queue.</summary>
    public bool Reject { get; init; }
    public int Queues { get; init; } = 64;
    public int HandSize { get; init; } = 8;
    public int QueueLengthLimit { get; init; } = 50;
    public string Source { get; init; } = "";
}
