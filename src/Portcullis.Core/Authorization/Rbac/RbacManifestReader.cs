using Portcullis.Configuration;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Authorization.Rbac;

/// <summary>
/// Reads Role, ClusterRole, RoleBinding and ClusterRoleBinding objects (rbac.authorization.k8s.io/v1) from files or
/// folders: multi-document YAML, JSON, and <c>kind: List</c> (or any <c>*List</c> with items). Kinds of other API groups
/// are skipped with a note; an object without kind, any other kind of rbac.authorization.k8s.io and malformed objects
/// are errors naming file:line.
/// </summary>
public sealed class RbacManifestReader(List<ConfigError> errors, List<string> notes) : KubernetesManifestReader(errors, notes)
{
    public const string RbacApiVersion = "rbac.authorization.k8s.io/v1";

    protected override string Group => "rbac.authorization.k8s.io";

    protected override IReadOnlyList<string> Kinds { get; } = ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"];

    public List<RbacRole> Roles { get; } = [];
    public List<RbacBinding> Bindings { get; } = [];

    protected override void ReadKind(YamlMappingNode map, string kind, string apiVersion, string file, YamlNode node)
    {
        if (apiVersion != RbacApiVersion)
        {
            Error(file, Child(map, "apiVersion") ?? node, "apiVersion", $"\"{apiVersion}\" is not supported for {kind}; use {RbacApiVersion}");
            return;
        }
        var metadata = Child(map, "metadata") as YamlMappingNode;
        var name = metadata is null ? null : Scalar(metadata, "name");
        if (string.IsNullOrEmpty(name))
        {
            Error(file, metadata ?? (YamlNode)map, "metadata.name", $"is required for {kind}");
            return;
        }
        var ns = metadata is null ? "" : Scalar(metadata, "namespace") ?? "";
        var source = $"{file}:{Line(node)}";
        var namespaced = kind is "Role" or "RoleBinding";
        if (namespaced && ns.Length == 0)
        {
            // kubectl would default it to the current namespace; a gateway has none, so say so.
            Error(file, metadata!, "metadata.namespace", $"is required for {kind} \"{name}\"");
            return;
        }
        if (!namespaced)
        {
            ns = "";
        }

        if (kind is "Role" or "ClusterRole")
        {
            var rules = ReadRules(file, Child(map, "rules"));
            IReadOnlyList<LabelSelector>? selectors = null;
            if (kind == "ClusterRole" && Child(map, "aggregationRule") is YamlMappingNode agg)
            {
                selectors = ReadSelectors(file, Child(agg, "clusterRoleSelectors"));
            }
            Roles.Add(new RbacRole
            {
                Kind = kind,
                Name = name,
                Namespace = ns,
                Labels = metadata is null ? new Dictionary<string, string>() : StringMap(file, Child(metadata, "labels"), "metadata.labels"),
                Rules = rules,
                AggregationSelectors = selectors,
                Source = source,
            });
            return;
        }

        var roleRef = Child(map, "roleRef") as YamlMappingNode;
        var refKind = roleRef is null ? "" : Scalar(roleRef, "kind") ?? "";
        var refName = roleRef is null ? "" : Scalar(roleRef, "name") ?? "";
        if (roleRef is null || refName.Length == 0)
        {
            Error(file, roleRef ?? (YamlNode)map, "roleRef", $"{kind} \"{name}\" needs roleRef.kind and roleRef.name");
            return;
        }
        if (refKind is not ("Role" or "ClusterRole") || (kind == "ClusterRoleBinding" && refKind != "ClusterRole"))
        {
            Error(file, roleRef, "roleRef.kind", $"\"{refKind}\" is not valid for {kind} \"{name}\" (a ClusterRoleBinding refers to a ClusterRole; a RoleBinding to a Role or ClusterRole)");
            return;
        }
        var subjects = new List<RbacSubject>();
        if (Child(map, "subjects") is YamlSequenceNode subjectNodes)
        {
            foreach (var s in subjectNodes.Children)
            {
                if (s is not YamlMappingNode sm)
                {
                    Error(file, s, "subjects", "each subject must be a mapping");
                    continue;
                }
                var sKind = Scalar(sm, "kind") ?? "";
                var sName = Scalar(sm, "name") ?? "";
                if (sKind is not ("User" or "Group" or "ServiceAccount"))
                {
                    Error(file, s, "subjects.kind", $"\"{sKind}\" is not User, Group or ServiceAccount");
                    continue;
                }
                subjects.Add(new RbacSubject(sKind, sName, Scalar(sm, "namespace") ?? ""));
            }
        }
        Bindings.Add(new RbacBinding
        {
            Kind = kind,
            Name = name,
            Namespace = ns,
            RoleRefKind = refKind,
            RoleRefName = refName,
            Subjects = subjects,
            Source = source,
        });
    }

    private List<PolicyRule> ReadRules(string file, YamlNode? node)
    {
        var rules = new List<PolicyRule>();
        if (node is null || IsNull(node))
        {
            return rules;
        }
        if (node is not YamlSequenceNode seq)
        {
            Error(file, node, "rules", "must be a list");
            return rules;
        }
        foreach (var r in seq.Children)
        {
            if (r is not YamlMappingNode rm)
            {
                Error(file, r, "rules", "each rule must be a mapping");
                continue;
            }
            var rule = new PolicyRule(
                StringList(file, Child(rm, "verbs"), "rules.verbs"),
                StringList(file, Child(rm, "apiGroups"), "rules.apiGroups"),
                StringList(file, Child(rm, "resources"), "rules.resources"),
                StringList(file, Child(rm, "resourceNames"), "rules.resourceNames"),
                StringList(file, Child(rm, "nonResourceURLs"), "rules.nonResourceURLs"));
            if (rule.Verbs.Length == 0)
            {
                Error(file, r, "rules.verbs", "must list at least one verb");
            }
            rules.Add(rule);
        }
        return rules;
    }

    private List<LabelSelector> ReadSelectors(string file, YamlNode? node)
    {
        var list = new List<LabelSelector>();
        if (node is not YamlSequenceNode seq)
        {
            return list;
        }
        foreach (var s in seq.Children)
        {
            if (s is not YamlMappingNode sm)
            {
                Error(file, s, "aggregationRule.clusterRoleSelectors", "each selector must be a mapping");
                continue;
            }
            var expressions = new List<LabelSelectorRequirement>();
            if (Child(sm, "matchExpressions") is YamlSequenceNode exprs)
            {
                foreach (var e in exprs.Children.OfType<YamlMappingNode>())
                {
                    var op = Scalar(e, "operator") ?? "";
                    if (op is not ("In" or "NotIn" or "Exists" or "DoesNotExist"))
                    {
                        Error(file, e, "matchExpressions.operator", $"\"{op}\" is not In, NotIn, Exists or DoesNotExist");
                    }
                    expressions.Add(new LabelSelectorRequirement(Scalar(e, "key") ?? "", op, StringList(file, Child(e, "values"), "matchExpressions.values")));
                }
            }
            list.Add(new LabelSelector { MatchLabels = StringMap(file, Child(sm, "matchLabels"), "matchLabels"), MatchExpressions = expressions });
        }
        return list;
    }

    private Dictionary<string, string> StringMap(string file, YamlNode? node, string field)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        if (node is null || IsNull(node))
        {
            return map;
        }
        if (node is not YamlMappingNode m)
        {
            Error(file, node, field, "must be a mapping");
            return map;
        }
        foreach (var (k, v) in m.Children)
        {
            map[(k as YamlScalarNode)?.Value ?? ""] = (v as YamlScalarNode)?.Value ?? "";
        }
        return map;
    }
}
