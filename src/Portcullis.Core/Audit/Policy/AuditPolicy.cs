using Portcullis.Authentication;
using Portcullis.Authorization;

namespace Portcullis.Audit;

/// <summary>What the policy says about one request: its level, the stages not to emit, and whether to drop managedFields.</summary>
/// <param name="RuleIndex">The zero-based index of the matching rule, or -1 when no rule matched (level None).</param>
public readonly record struct AuditPolicyDecision(AuditLevel Level, AuditStages OmitStages, bool OmitManagedFields, int RuleIndex)
{
    /// <summary>True when an event is emitted at <paramref name="stage"/>: the level is not None and the stage is not omitted.</summary>
    public bool ShouldEmit(AuditStage stage) => Level != AuditLevel.None && !OmitStages.Contains(stage);
}

/// <summary>
/// A loaded <c>audit.k8s.io/v1</c> Policy: an immutable snapshot evaluated per request, first matching rule wins.
/// Load with <see cref="AuditPolicyLoader"/>; evaluation allocates nothing.
/// </summary>
public sealed class AuditPolicy
{
    private readonly AuditPolicyRule[] _rules;

    internal AuditPolicy(string source, AuditPolicyRule[] rules, AuditStages omitStages, bool omitManagedFields, IReadOnlyList<string> warnings)
    {
        Source = source;
        _rules = rules;
        OmitStages = omitStages;
        OmitManagedFields = omitManagedFields;
        Warnings = warnings;
    }

    /// <summary>The file the policy came from.</summary>
    public string Source { get; }

    /// <summary>The rules in order, each with the policy-wide omitStages already added.</summary>
    public IReadOnlyList<AuditPolicyRule> Rules => _rules;

    /// <summary>Policy-wide <c>omitStages</c>.</summary>
    public AuditStages OmitStages { get; }

    /// <summary>Policy-wide <c>omitManagedFields</c> (a rule may override it).</summary>
    public bool OmitManagedFields { get; }

    /// <summary>Non-fatal findings, such as unknown fields that kube-apiserver's lenient decoding also ignores (file:line).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>
    /// Evaluates the policy for a request. <paramref name="user"/> is the authenticated, pre-impersonation user, or null
    /// for a request that failed authentication (rules naming users or userGroups then never match).
    /// </summary>
    public AuditPolicyDecision Evaluate(UserInfo? user, RequestInfo request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var rules = _rules;
        for (var i = 0; i < rules.Length; i++)
        {
            var rule = rules[i];
            if (rule.Matches(user, request))
            {
                return new AuditPolicyDecision(rule.Level, rule.OmitStages, rule.OmitManagedFields ?? OmitManagedFields, i);
            }
        }
        return new AuditPolicyDecision(AuditLevel.None, OmitStages, OmitManagedFields, -1);
    }
}

/// <summary>One compiled policy rule (<c>audit.k8s.io/v1</c> PolicyRule).</summary>
public sealed class AuditPolicyRule
{
    private readonly string[] _users;
    private readonly string[] _userGroups;
    private readonly string[] _verbs;
    private readonly string[] _namespaces;
    private readonly AuditGroupResources[] _resources;
    private readonly string[] _nonResourceUrls;

    internal AuditPolicyRule(int line, AuditLevel level, string[] users, string[] userGroups, string[] verbs, string[] namespaces,
        AuditGroupResources[] resources, string[] nonResourceUrls, AuditStages omitStages, bool? omitManagedFields)
    {
        Line = line;
        Level = level;
        _users = users;
        _userGroups = userGroups;
        _verbs = verbs;
        _namespaces = namespaces;
        _resources = resources;
        _nonResourceUrls = nonResourceUrls;
        OmitStages = omitStages;
        OmitManagedFields = omitManagedFields;
    }

    /// <summary>The line of the rule in its file, for explanations.</summary>
    public int Line { get; }

    public AuditLevel Level { get; }

    /// <summary>The rule's omitStages unioned with the policy's.</summary>
    public AuditStages OmitStages { get; }

    /// <summary>The rule's own omitManagedFields, or null to inherit the policy's.</summary>
    public bool? OmitManagedFields { get; }

    internal bool Matches(UserInfo? user, RequestInfo request)
    {
        if (_users.Length > 0 && (user is null || !Contains(_users, user.Name)))
        {
            return false;
        }
        if (_userGroups.Length > 0 && (user is null || !AnyIn(_userGroups, user.Groups)))
        {
            return false;
        }
        if (_verbs.Length > 0 && !Contains(_verbs, request.Verb))
        {
            return false;
        }
        if (_namespaces.Length > 0 || _resources.Length > 0)
        {
            return MatchesResource(request);
        }
        if (_nonResourceUrls.Length > 0)
        {
            return MatchesNonResource(request);
        }
        return true;
    }

    private bool MatchesResource(RequestInfo request)
    {
        if (!request.IsResourceRequest)
        {
            return false;
        }
        if (_namespaces.Length > 0 && !Contains(_namespaces, request.Namespace))
        {
            return false;
        }
        if (_resources.Length == 0)
        {
            return true;
        }
        foreach (var gr in _resources)
        {
            if (gr.Matches(request))
            {
                return true;
            }
        }
        return false;
    }

    private bool MatchesNonResource(RequestInfo request)
    {
        if (request.IsResourceRequest)
        {
            return false;
        }
        var path = request.Path;
        foreach (var spec in _nonResourceUrls)
        {
            if (spec == "*" || string.Equals(spec, path, StringComparison.Ordinal))
            {
                return true;
            }
            if (spec.Length > 0 && spec[^1] == '*' && path.AsSpan().StartsWith(spec.AsSpan(0, spec.Length - 1), StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }

    internal static bool Contains(string[] values, string value)
    {
        foreach (var v in values)
        {
            if (string.Equals(v, value, StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }

    private static bool AnyIn(string[] wanted, IReadOnlyList<string> groups)
    {
        for (var i = 0; i < groups.Count; i++)
        {
            if (Contains(wanted, groups[i]))
            {
                return true;
            }
        }
        return false;
    }
}

/// <summary>A rule's <c>resources[]</c> entry: an API group (or <c>*</c>), resource patterns and optional resourceNames.</summary>
internal sealed class AuditGroupResources
{
    private readonly string _group;
    private readonly ResourcePattern[] _patterns;
    private readonly string[] _resourceNames;

    public AuditGroupResources(string group, IReadOnlyList<string> resources, string[] resourceNames)
    {
        _group = group;
        _patterns = [.. resources.Select(ResourcePattern.Parse)];
        _resourceNames = resourceNames;
    }

    public bool Matches(RequestInfo request)
    {
        if (_group != "*" && !string.Equals(_group, request.ApiGroup, StringComparison.Ordinal))
        {
            return false;
        }
        if (_patterns.Length == 0)
        {
            return true;
        }
        if (_resourceNames.Length > 0 && !AuditPolicyRule.Contains(_resourceNames, request.Name))
        {
            return false;
        }
        foreach (var p in _patterns)
        {
            if (p.Matches(request.Resource, request.Subresource))
            {
                return true;
            }
        }
        return false;
    }

    private enum PatternKind
    {
        /// <summary><c>*</c>: every resource and subresource.</summary>
        Any,
        /// <summary><c>res</c> or <c>res/sub</c>: exactly that combination.</summary>
        Exact,
        /// <summary><c>*/sub</c>: that subresource of any resource.</summary>
        AnyResourceSubresource,
        /// <summary><c>res/*</c>: the resource and all its subresources (kube-apiserver compares only the resource part).</summary>
        ResourceAnySubresource,
    }

    private readonly record struct ResourcePattern(PatternKind Kind, string Resource, string Subresource)
    {
        public static ResourcePattern Parse(string text)
        {
            if (text == "*")
            {
                return new(PatternKind.Any, "", "");
            }
            if (text.StartsWith("*/", StringComparison.Ordinal))
            {
                return new(PatternKind.AnyResourceSubresource, "", text[2..]);
            }
            if (text.EndsWith("/*", StringComparison.Ordinal))
            {
                return new(PatternKind.ResourceAnySubresource, text[..^2], "");
            }
            var slash = text.IndexOf('/', StringComparison.Ordinal);
            return slash < 0 ? new(PatternKind.Exact, text, "") : new(PatternKind.Exact, text[..slash], text[(slash + 1)..]);
        }

        public bool Matches(string resource, string subresource) => Kind switch
        {
            PatternKind.Any => true,
            PatternKind.Exact => string.Equals(Resource, resource, StringComparison.Ordinal)
                && string.Equals(Subresource, subresource, StringComparison.Ordinal),
            PatternKind.AnyResourceSubresource => subresource.Length > 0 && string.Equals(Subresource, subresource, StringComparison.Ordinal),
            _ => string.Equals(Resource, resource, StringComparison.Ordinal),
        };
    }
}
