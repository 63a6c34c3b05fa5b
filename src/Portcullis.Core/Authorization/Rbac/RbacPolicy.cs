using System.Collections.Frozen;
using Portcullis.Authentication;
using Portcullis.Configuration;

namespace Portcullis.Authorization.Rbac;

/// <summary>
/// An immutable RBAC snapshot: roles with ClusterRole aggregation computed to a fixpoint, and bindings indexed by
/// subject (user or service-account user name, group) per namespace, so a decision only visits the bindings that name
/// the user or one of its groups. Decisions equal kube-apiserver's RBAC authorizer (spec §4.2), which scans every
/// binding (<see cref="EvaluateLinear"/> does that too and is the reference the index is tested against).
/// Reload by calling <see cref="Load"/> again and swapping the snapshot into <see cref="RbacAuthorizer"/>.
/// </summary>
public sealed class RbacPolicy
{
    private static readonly FrozenDictionary<string, RbacGrant[]> EmptyIndex = FrozenDictionary<string, RbacGrant[]>.Empty;

    private readonly SubjectIndex _cluster;
    private readonly FrozenDictionary<string, SubjectIndex> _namespaces;
    private readonly FrozenDictionary<string, RbacRole> _clusterRoles;
    private readonly FrozenDictionary<string, RbacRole> _roles; // key: namespace + "/" + name

    private RbacPolicy(IReadOnlyList<RbacRole> roles, IReadOnlyList<RbacBinding> bindings)
    {
        _clusterRoles = roles.Where(r => r.IsClusterRole).ToFrozenDictionary(r => r.Name, StringComparer.Ordinal);
        _roles = roles.Where(r => !r.IsClusterRole).ToFrozenDictionary(r => r.Namespace + "/" + r.Name, StringComparer.Ordinal);
        Roles = roles;
        Bindings = bindings;

        var cluster = new SubjectIndexBuilder();
        var namespaces = new Dictionary<string, SubjectIndexBuilder>(StringComparer.Ordinal);
        foreach (var binding in bindings)
        {
            var role = FindRole(binding, out var error);
            var target = binding.IsClusterRoleBinding ? cluster : (namespaces.TryGetValue(binding.Namespace, out var b) ? b : namespaces[binding.Namespace] = new SubjectIndexBuilder());
            foreach (var subject in binding.Subjects)
            {
                var grant = new RbacGrant(binding, subject, role, role?.Rules.ToArray() ?? [], error,
                    $"RBAC: allowed by {binding.Kind} \"{(binding.IsClusterRoleBinding ? binding.Name : binding.Name + "/" + binding.Namespace)}\" of {binding.RoleRefKind} \"{binding.RoleRefName}\" to {subject.Describe(binding.Namespace)}");
                switch (subject.Kind)
                {
                    case "User":
                        SubjectIndexBuilder.Add(target.Users, subject.Name, grant);
                        break;
                    case "Group":
                        SubjectIndexBuilder.Add(target.Groups, subject.Name, grant);
                        break;
                    case "ServiceAccount":
                        var ns = subject.Namespace.Length > 0 ? subject.Namespace : (binding.IsClusterRoleBinding ? "" : binding.Namespace);
                        if (ns.Length > 0)
                        {
                            SubjectIndexBuilder.Add(target.Users, RbacBinding.ServiceAccountUserName(ns, subject.Name), grant);
                        }
                        break;
                    default:
                        break;
                }
            }
        }
        _cluster = cluster.Build();
        _namespaces = namespaces.ToFrozenDictionary(kv => kv.Key, kv => kv.Value.Build(), StringComparer.Ordinal);
    }

    /// <summary>Every role, aggregated ClusterRoles with their computed rules.</summary>
    public IReadOnlyList<RbacRole> Roles { get; }

    /// <summary>Every binding, in load order.</summary>
    public IReadOnlyList<RbacBinding> Bindings { get; }

    /// <summary>An empty policy: every request NoOpinion.</summary>
    public static RbacPolicy Empty { get; } = new([], []);

    /// <summary>
    /// Loads manifests from files or folders. Errors (file:line) make <see cref="RbacLoadResult.Policy"/> null so a reload
    /// keeps the last good snapshot; notes list skipped objects of other kinds.
    /// </summary>
    public static RbacLoadResult Load(IEnumerable<string> paths)
    {
        var errors = new List<ConfigError>();
        var notes = new List<string>();
        var reader = new RbacManifestReader(errors, notes);
        foreach (var path in paths)
        {
            if (!File.Exists(path) && !Directory.Exists(path))
            {
                errors.Add(new ConfigError(path, 0, "(file)", "no such file or folder"));
                continue;
            }
            reader.ReadPath(path);
        }
        var policy = errors.Count == 0 ? Build(reader.Roles, reader.Bindings, errors) : null;
        return new RbacLoadResult(errors.Count == 0 ? policy : null, errors, notes);
    }

    /// <summary>Builds a snapshot from objects (aggregating ClusterRoles); duplicate names are errors.</summary>
    public static RbacPolicy? Build(IEnumerable<RbacRole> roles, IEnumerable<RbacBinding> bindings, List<ConfigError> errors)
    {
        var roleList = new List<RbacRole>();
        var seen = new Dictionary<string, RbacRole>(StringComparer.Ordinal);
        foreach (var role in roles)
        {
            var key = role.Kind + "/" + role.Namespace + "/" + role.Name;
            if (seen.TryGetValue(key, out var first))
            {
                errors.Add(new ConfigError(role.Source, 0, "metadata.name", $"{role.Kind} \"{role.Name}\" is defined twice (first at {first.Source})"));
                continue;
            }
            seen[key] = role;
            roleList.Add(role);
        }
        var bindingList = new List<RbacBinding>();
        var seenBindings = new Dictionary<string, RbacBinding>(StringComparer.Ordinal);
        foreach (var binding in bindings)
        {
            var key = binding.Kind + "/" + binding.Namespace + "/" + binding.Name;
            if (seenBindings.TryGetValue(key, out var first))
            {
                errors.Add(new ConfigError(binding.Source, 0, "metadata.name", $"{binding.Kind} \"{binding.Name}\" is defined twice (first at {first.Source})"));
                continue;
            }
            seenBindings[key] = binding;
            bindingList.Add(binding);
        }
        if (errors.Count > 0)
        {
            return null;
        }
        Aggregate(roleList);
        return new RbacPolicy(roleList, bindingList);
    }

    /// <summary>
    /// ClusterRole aggregation as the clusterrole-aggregation controller does it, repeated until nothing changes:
    /// an aggregated role's rules become the deduplicated rules of every other ClusterRole matching any selector
    /// (selectors in order, matches sorted by name).
    /// </summary>
    private static void Aggregate(List<RbacRole> roles)
    {
        var clusterRoles = roles.Where(r => r.IsClusterRole).OrderBy(r => r.Name, StringComparer.Ordinal).ToList();
        var aggregated = clusterRoles.Where(r => r.AggregationSelectors is not null).ToList();
        for (var round = 0; round <= aggregated.Count + 1; round++)
        {
            var changed = false;
            foreach (var role in aggregated)
            {
                var rules = new List<PolicyRule>();
                foreach (var selector in role.AggregationSelectors!)
                {
                    foreach (var other in clusterRoles)
                    {
                        if (ReferenceEquals(other, role) || !selector.Matches(other.Labels))
                        {
                            continue;
                        }
                        foreach (var rule in other.Rules)
                        {
                            if (!rules.Contains(rule))
                            {
                                rules.Add(rule);
                            }
                        }
                    }
                }
                if (!rules.SequenceEqual(role.Rules))
                {
                    role.SetAggregatedRules(rules);
                    changed = true;
                }
            }
            if (!changed)
            {
                return;
            }
        }
    }

    /// <summary>The ClusterRole named <paramref name="name"/>, or null.</summary>
    public RbacRole? ClusterRole(string name) => _clusterRoles.GetValueOrDefault(name);

    /// <summary>The Role <paramref name="ns"/>/<paramref name="name"/>, or null.</summary>
    public RbacRole? Role(string ns, string name) => _roles.GetValueOrDefault(ns + "/" + name);

    private RbacRole? FindRole(RbacBinding binding, out string? error)
    {
        error = null;
        if (binding.RoleRefKind == "ClusterRole")
        {
            if (_clusterRoles.TryGetValue(binding.RoleRefName, out var cr))
            {
                return cr;
            }
            error = $"clusterrole.rbac.authorization.k8s.io \"{binding.RoleRefName}\" not found";
            return null;
        }
        if (_roles.TryGetValue(binding.Namespace + "/" + binding.RoleRefName, out var role))
        {
            return role;
        }
        error = $"role.rbac.authorization.k8s.io \"{binding.RoleRefName}\" not found";
        return null;
    }

    /// <summary>
    /// The decision through the subject index: allocation-free unless a referenced role is missing (its error then goes
    /// into the reason, as kube-apiserver does).
    /// </summary>
    public RbacDecision Evaluate(UserInfo user, RequestInfo request)
    {
        List<string>? errors = null;
        var d = Visit(_cluster, user, request, ref errors);
        if (d.Allowed)
        {
            return d;
        }
        if (request.Namespace.Length > 0 && _namespaces.TryGetValue(request.Namespace, out var nsIndex))
        {
            d = Visit(nsIndex, user, request, ref errors);
            if (d.Allowed)
            {
                return d;
            }
        }
        return RbacDecision.NoOpinion(ErrorReason(errors));
    }

    private static RbacDecision Visit(SubjectIndex index, UserInfo user, RequestInfo request, ref List<string>? errors)
    {
        if (index.Users.TryGetValue(user.Name, out var grants))
        {
            var d = VisitGrants(grants, request, ref errors);
            if (d.Allowed)
            {
                return d;
            }
        }
        if (index.Groups.Count > 0)
        {
            var groups = user.Groups;
            for (var i = 0; i < groups.Count; i++)
            {
                if (index.Groups.TryGetValue(groups[i], out grants))
                {
                    var d = VisitGrants(grants, request, ref errors);
                    if (d.Allowed)
                    {
                        return d;
                    }
                }
            }
        }
        return default;
    }

    private static RbacDecision VisitGrants(RbacGrant[] grants, RequestInfo request, ref List<string>? errors)
    {
        foreach (var grant in grants)
        {
            if (grant.Error is not null)
            {
                (errors ??= []).Add(grant.Error);
                continue;
            }
            var rules = grant.Rules;
            for (var r = 0; r < rules.Length; r++)
            {
                if (rules[r].Allows(request))
                {
                    return new RbacDecision(true, grant.AllowReason, grant, r);
                }
            }
        }
        return default;
    }

    /// <summary>
    /// The same decision by scanning every binding as kube-apiserver does: ClusterRoleBindings, then RoleBindings of the
    /// request namespace. Slow; the reference for tests and <c>explain</c>.
    /// </summary>
    public RbacDecision EvaluateLinear(UserInfo user, RequestInfo request)
    {
        List<string>? errors = null;
        foreach (var pass in new[] { true, false })
        {
            if (!pass && request.Namespace.Length == 0)
            {
                break;
            }
            foreach (var binding in Bindings)
            {
                if (binding.IsClusterRoleBinding != pass || (!pass && binding.Namespace != request.Namespace))
                {
                    continue;
                }
                var subject = binding.AppliesTo(user.Name, user.Groups);
                if (subject is null)
                {
                    continue;
                }
                var role = FindRole(binding, out var error);
                if (role is null)
                {
                    (errors ??= []).Add(error!);
                    continue;
                }
                for (var r = 0; r < role.Rules.Count; r++)
                {
                    if (role.Rules[r].Allows(request))
                    {
                        var grant = new RbacGrant(binding, subject, role, [.. role.Rules], null,
                            $"RBAC: allowed by {binding.Kind} \"{(binding.IsClusterRoleBinding ? binding.Name : binding.Name + "/" + binding.Namespace)}\" of {binding.RoleRefKind} \"{binding.RoleRefName}\" to {subject.Describe(binding.Namespace)}");
                        return new RbacDecision(true, grant.AllowReason, grant, r);
                    }
                }
            }
        }
        return RbacDecision.NoOpinion(ErrorReason(errors));
    }

    // kube-apiserver: "RBAC: " + utilerrors aggregate (deduplicated; brackets only for several).
    private static string ErrorReason(List<string>? errors)
    {
        if (errors is null)
        {
            return "";
        }
        var distinct = errors.Distinct(StringComparer.Ordinal).ToList();
        return distinct.Count == 1 ? "RBAC: " + distinct[0] : "RBAC: [" + string.Join(", ", distinct) + "]";
    }

    /// <summary>
    /// kube-apiserver's RBAC <c>RulesFor</c> (what <c>kubectl auth can-i --list</c> shows): the rules of every
    /// ClusterRoleBinding, then of every RoleBinding in <paramref name="ns"/>, that names the user or one of its groups,
    /// in binding order; <paramref name="errors"/> gets the error of each binding whose role is missing.
    /// </summary>
    public IReadOnlyList<PolicyRule> RulesFor(UserInfo user, string ns, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(errors);
        var rules = new List<PolicyRule>();
        foreach (var pass in new[] { true, false })
        {
            foreach (var binding in Bindings)
            {
                if (binding.IsClusterRoleBinding != pass || (!pass && binding.Namespace != ns) || binding.AppliesTo(user.Name, user.Groups) is null)
                {
                    continue;
                }
                var role = FindRole(binding, out var error);
                if (role is null)
                {
                    errors.Add(error!);
                    continue;
                }
                rules.AddRange(role.Rules);
            }
        }
        return rules;
    }

    /// <summary>
    /// Who can do <paramref name="request"/>: every subject of every binding whose role has an allowing rule
    /// (ClusterRoleBindings, plus RoleBindings of the request namespace).
    /// </summary>
    public IReadOnlyList<RbacGrantMatch> WhoCan(RequestInfo request)
    {
        var list = new List<RbacGrantMatch>();
        foreach (var binding in Bindings)
        {
            if (!binding.IsClusterRoleBinding && (request.Namespace.Length == 0 || binding.Namespace != request.Namespace))
            {
                continue;
            }
            var role = FindRole(binding, out _);
            if (role is null)
            {
                continue;
            }
            for (var r = 0; r < role.Rules.Count; r++)
            {
                if (!role.Rules[r].Allows(request))
                {
                    continue;
                }
                foreach (var subject in binding.Subjects)
                {
                    if (subject.Kind == "ServiceAccount" && binding.IsClusterRoleBinding && subject.Namespace.Length == 0)
                    {
                        continue; // never matches anyone
                    }
                    list.Add(new RbacGrantMatch(subject, binding, role, r, role.Rules[r]));
                }
                break;
            }
        }
        return list;
    }

    private sealed class SubjectIndexBuilder
    {
        public Dictionary<string, List<RbacGrant>> Users { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, List<RbacGrant>> Groups { get; } = new(StringComparer.Ordinal);

        public static void Add(Dictionary<string, List<RbacGrant>> map, string key, RbacGrant grant)
        {
            if (!map.TryGetValue(key, out var list))
            {
                map[key] = list = [];
            }
            list.Add(grant);
        }

        public SubjectIndex Build() => new(
            Users.Count == 0 ? EmptyIndex : Users.ToFrozenDictionary(kv => kv.Key, kv => kv.Value.ToArray(), StringComparer.Ordinal),
            Groups.Count == 0 ? EmptyIndex : Groups.ToFrozenDictionary(kv => kv.Key, kv => kv.Value.ToArray(), StringComparer.Ordinal));
    }

    private sealed record SubjectIndex(FrozenDictionary<string, RbacGrant[]> Users, FrozenDictionary<string, RbacGrant[]> Groups);
}

/// <summary>One subject of one binding with its resolved role (or the error of a missing role) and its allow reason.</summary>
public sealed record RbacGrant(RbacBinding Binding, RbacSubject Subject, RbacRole? Role, PolicyRule[] Rules, string? Error, string AllowReason);

/// <summary>An RBAC decision: allowed with the grant and rule that allowed, or not with the reason (errors or empty).</summary>
public readonly record struct RbacDecision(bool Allowed, string Reason, RbacGrant? Grant, int RuleIndex)
{
    public static RbacDecision NoOpinion(string reason) => new(false, reason, null, -1);

    public PolicyRule? Rule => Grant is null || RuleIndex < 0 ? null : Grant.Rules[RuleIndex];
}

/// <summary>A who-can answer: a subject, the binding and role granting it, and the first allowing rule.</summary>
public sealed record RbacGrantMatch(RbacSubject Subject, RbacBinding Binding, RbacRole Role, int RuleIndex, PolicyRule Rule);

/// <summary>The result of <see cref="RbacPolicy.Load"/>: a policy or errors, plus notes about skipped objects.</summary>
public sealed record RbacLoadResult(RbacPolicy? Policy, IReadOnlyList<ConfigError> Errors, IReadOnlyList<string> Notes);

/// <summary>The RBAC mode: Allow or NoOpinion (never Deny). <see cref="Update"/> swaps the snapshot on reload.</summary>
public sealed class RbacAuthorizer : IAuthorizer
{
    public const string AuthorizerName = "RBAC";

    private RbacPolicy _policy;

    public RbacAuthorizer(RbacPolicy policy) => _policy = policy;

    public string Name => AuthorizerName;

    /// <summary>The current snapshot.</summary>
    public RbacPolicy Policy => Volatile.Read(ref _policy);

    /// <summary>Swaps in a new snapshot (from <see cref="RbacPolicy.Load"/>); requests in flight keep the old one.</summary>
    public void Update(RbacPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        Volatile.Write(ref _policy, policy);
    }

    public ValueTask<AuthorizationResult> AuthorizeAsync(AuthorizationAttributes attributes, CancellationToken cancellationToken) =>
        new(Authorize(attributes.User, attributes.Request));

    /// <summary>The synchronous decision (the hot path).</summary>
    public AuthorizationResult Authorize(UserInfo user, RequestInfo request)
    {
        var d = Policy.Evaluate(user, request);
        return d.Allowed ? AuthorizationResult.Allowed(AuthorizerName, d.Reason) : AuthorizationResult.NoOpinion(AuthorizerName, d.Reason);
    }
}
