using System.Text;

namespace Portcullis.Authorization.Rbac;

/// <summary>An rbac.authorization.k8s.io/v1 PolicyRule.</summary>
public sealed class PolicyRule : IEquatable<PolicyRule>
{
    public PolicyRule(IReadOnlyList<string> verbs, IReadOnlyList<string> apiGroups, IReadOnlyList<string> resources,
        IReadOnlyList<string> resourceNames, IReadOnlyList<string> nonResourceURLs)
    {
        Verbs = [.. verbs];
        ApiGroups = [.. apiGroups];
        Resources = [.. resources];
        ResourceNames = [.. resourceNames];
        NonResourceURLs = [.. nonResourceURLs];
    }

    public string[] Verbs { get; }
    public string[] ApiGroups { get; }
    public string[] Resources { get; }
    public string[] ResourceNames { get; }
    public string[] NonResourceURLs { get; }

    /// <summary>kube-apiserver's RuleAllows (spec §4.2), allocation-free.</summary>
    public bool Allows(RequestInfo request)
    {
        if (!Contains(Verbs, request.Verb))
        {
            return false;
        }
        if (!request.IsResourceRequest)
        {
            foreach (var url in NonResourceURLs)
            {
                if (url == "*" || url == request.Path)
                {
                    return true;
                }
                if (url.Length > 0 && url[^1] == '*' && request.Path.AsSpan().StartsWith(url.AsSpan().TrimEnd('*'), StringComparison.Ordinal))
                {
                    return true;
                }
            }
            return false;
        }
        return Contains(ApiGroups, request.ApiGroup)
            && ResourceMatches(request.Resource, request.Subresource)
            && (ResourceNames.Length == 0 || Array.IndexOf(ResourceNames, request.Name) >= 0);
    }

    private static bool Contains(string[] values, string value)
    {
        foreach (var v in values)
        {
            if (v == "*" || string.Equals(v, value, StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }

    private bool ResourceMatches(string resource, string subresource)
    {
        foreach (var r in Resources)
        {
            if (r == "*")
            {
                return true;
            }
            if (subresource.Length == 0)
            {
                if (string.Equals(r, resource, StringComparison.Ordinal))
                {
                    return true;
                }
                continue;
            }
            // combined "resource/subresource" compared without building it
            if (r.Length == resource.Length + 1 + subresource.Length
                && r.StartsWith(resource, StringComparison.Ordinal)
                && r[resource.Length] == '/'
                && r.EndsWith(subresource, StringComparison.Ordinal))
            {
                return true;
            }
            if (r.Length == subresource.Length + 2 && r.StartsWith("*/", StringComparison.Ordinal) && r.EndsWith(subresource, StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }

    public bool Equals(PolicyRule? other) =>
        other is not null
        && Verbs.AsSpan().SequenceEqual(other.Verbs) && ApiGroups.AsSpan().SequenceEqual(other.ApiGroups)
        && Resources.AsSpan().SequenceEqual(other.Resources) && ResourceNames.AsSpan().SequenceEqual(other.ResourceNames)
        && NonResourceURLs.AsSpan().SequenceEqual(other.NonResourceURLs);

    public override bool Equals(object? obj) => Equals(obj as PolicyRule);

    public override int GetHashCode() => HashCode.Combine(Verbs.Length, Resources.Length, Verbs.FirstOrDefault(), Resources.FirstOrDefault());

    /// <summary>kubectl-describe-like text: <c>verbs=[get list] apiGroups=[""] resources=[pods] resourceNames=[]</c>.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        Append(sb, "verbs", Verbs);
        if (NonResourceURLs.Length > 0)
        {
            Append(sb, "nonResourceURLs", NonResourceURLs);
        }
        if (Resources.Length > 0 || ApiGroups.Length > 0)
        {
            Append(sb, "apiGroups", ApiGroups);
            Append(sb, "resources", Resources);
        }
        if (ResourceNames.Length > 0)
        {
            Append(sb, "resourceNames", ResourceNames);
        }
        return sb.ToString().TrimEnd();
    }

    private static void Append(StringBuilder sb, string name, string[] values) =>
        sb.Append(name).Append("=[").AppendJoin(' ', values.Select(v => v.Length == 0 ? "\"\"" : v)).Append("] ");
}

/// <summary>A Role (namespaced) or ClusterRole.</summary>
public sealed class RbacRole
{
    public required string Kind { get; init; }
    public required string Name { get; init; }
    public string Namespace { get; init; } = "";
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    /// <summary>The rules; for an aggregated ClusterRole, the aggregated ones.</summary>
    public IReadOnlyList<PolicyRule> Rules { get => _rules; init => _rules = value; }
    private IReadOnlyList<PolicyRule> _rules = [];

    internal void SetAggregatedRules(IReadOnlyList<PolicyRule> rules) => _rules = rules;
    /// <summary>aggregationRule.clusterRoleSelectors (OR-ed); null when the role is not aggregated.</summary>
    public IReadOnlyList<LabelSelector>? AggregationSelectors { get; init; }
    /// <summary>Where it was read: file:line.</summary>
    public string Source { get; init; } = "";

    public bool IsClusterRole => Kind == "ClusterRole";
}

/// <summary>A subject of a binding: User, Group or ServiceAccount.</summary>
public sealed record RbacSubject(string Kind, string Name, string Namespace = "")
{
    /// <summary>How kube-apiserver names the subject in an allow reason: <c>User "u"</c>, <c>ServiceAccount "sa/ns"</c>.</summary>
    public string Describe(string bindingNamespace)
    {
        if (Kind == "ServiceAccount")
        {
            var ns = Namespace.Length > 0 ? Namespace : bindingNamespace;
            return $"{Kind} \"{Name}/{ns}\"";
        }
        return $"{Kind} \"{Name}\"";
    }
}

/// <summary>A RoleBinding (namespaced) or ClusterRoleBinding.</summary>
public sealed class RbacBinding
{
    public required string Kind { get; init; }
    public required string Name { get; init; }
    public string Namespace { get; init; } = "";
    public required string RoleRefKind { get; init; }
    public required string RoleRefName { get; init; }
    public IReadOnlyList<RbacSubject> Subjects { get; init; } = [];
    public string Source { get; init; } = "";

    public bool IsClusterRoleBinding => Kind == "ClusterRoleBinding";

    /// <summary>kube-apiserver's appliesTo: which subject (if any) matches the user.</summary>
    public RbacSubject? AppliesTo(string userName, IReadOnlyList<string> groups)
    {
        foreach (var s in Subjects)
        {
            switch (s.Kind)
            {
                case "User" when s.Name == userName:
                    return s;
                case "Group":
                    foreach (var g in groups)
                    {
                        if (g == s.Name)
                        {
                            return s;
                        }
                    }
                    break;
                case "ServiceAccount":
                    var ns = s.Namespace.Length > 0 ? s.Namespace : (IsClusterRoleBinding ? "" : Namespace);
                    if (ns.Length > 0 && userName == ServiceAccountUserName(ns, s.Name))
                    {
                        return s;
                    }
                    break;
                default:
                    break;
            }
        }
        return null;
    }

    public static string ServiceAccountUserName(string ns, string name) => "system:serviceaccount:" + ns + ":" + name;
}

/// <summary>A metav1.LabelSelector: matchLabels AND matchExpressions (In, NotIn, Exists, DoesNotExist).</summary>
public sealed class LabelSelector
{
    public IReadOnlyDictionary<string, string> MatchLabels { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<LabelSelectorRequirement> MatchExpressions { get; init; } = [];

    public bool Matches(IReadOnlyDictionary<string, string> labels)
    {
        foreach (var (k, v) in MatchLabels)
        {
            if (!labels.TryGetValue(k, out var actual) || actual != v)
            {
                return false;
            }
        }
        foreach (var e in MatchExpressions)
        {
            var has = labels.TryGetValue(e.Key, out var actual);
            var ok = e.Operator switch
            {
                "In" => has && e.Values.Contains(actual!),
                "NotIn" => !has || !e.Values.Contains(actual!),
                "Exists" => has,
                "DoesNotExist" => !has,
                _ => false,
            };
            if (!ok)
            {
                return false;
            }
        }
        return true;
    }
}

/// <summary>One matchExpressions entry.</summary>
public sealed record LabelSelectorRequirement(string Key, string Operator, IReadOnlyList<string> Values);
