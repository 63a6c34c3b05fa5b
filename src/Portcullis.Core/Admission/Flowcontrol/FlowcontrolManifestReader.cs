using System.Globalization;
using Portcullis.Configuration;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Admission.Flowcontrol;

/// <summary>
/// Reads FlowSchema and PriorityLevelConfiguration objects (<c>flowcontrol.apiserver.k8s.io/v1</c>, <c>v1beta3</c>, and
/// the older <c>v1beta2</c>/<c>v1beta1</c> with <c>assuredConcurrencyShares</c>) from files or folders: multi-document
/// YAML, JSON, and <c>kind: List</c> as <c>kubectl get flowschemas,prioritylevelconfigurations -o yaml</c> prints them.
/// Other kinds are skipped with a note; malformed objects are errors naming file:line and the field.
/// </summary>
public sealed class FlowcontrolManifestReader(List<ConfigError> errors, List<string> notes) : KubernetesManifestReader(errors, notes)
{
    private const string FlowcontrolGroup = "flowcontrol.apiserver.k8s.io";

    protected override string Group => FlowcontrolGroup;

    protected override IReadOnlyList<string> Kinds { get; } = ["FlowSchema", "PriorityLevelConfiguration"];
    private static readonly string[] Versions = ["v1", "v1beta3", "v1beta2", "v1beta1"];

    public List<FlowSchema> FlowSchemas { get; } = [];
    public List<PriorityLevelConfiguration> PriorityLevels { get; } = [];

    protected override void ReadKind(YamlMappingNode map, string kind, string apiVersion, string file, YamlNode node)
    {
        var version = apiVersion.StartsWith(FlowcontrolGroup + "/", StringComparison.Ordinal) ? apiVersion[(FlowcontrolGroup.Length + 1)..] : "";
        if (!Versions.Contains(version))
        {
            Error(file, Child(map, "apiVersion") ?? node, "apiVersion", $"\"{apiVersion}\" is not supported for {kind}; use {FlowcontrolGroup}/v1 (or v1beta3)");
            return;
        }
        var metadata = Child(map, "metadata") as YamlMappingNode;
        var name = metadata is null ? null : Scalar(metadata, "name");
        if (string.IsNullOrEmpty(name))
        {
            Error(file, metadata ?? (YamlNode)map, "metadata.name", $"is required for {kind}");
            return;
        }
        var uid = metadata is null ? null : Scalar(metadata, "uid");
        uid = string.IsNullOrEmpty(uid) ? FlowcontrolBootstrap.StableUid(kind, name) : uid;
        var spec = Child(map, "spec") as YamlMappingNode;
        if (spec is null)
        {
            Error(file, map, "spec", $"is required for {kind} \"{name}\"");
            return;
        }
        var source = $"{file}:{Line(node)}";
        if (kind == "FlowSchema")
        {
            ReadFlowSchema(file, name, uid, spec, source);
        }
        else
        {
            ReadPriorityLevel(file, name, uid, version, spec, source);
        }
    }

    private void ReadFlowSchema(string file, string name, string uid, YamlMappingNode spec, string source)
    {
        var start = Errors.Count;
        var plRef = Child(spec, "priorityLevelConfiguration") as YamlMappingNode;
        var level = plRef is null ? "" : Scalar(plRef, "name") ?? "";
        if (level.Length == 0)
        {
            Error(file, (YamlNode?)plRef ?? spec, "spec.priorityLevelConfiguration.name", $"is required for FlowSchema \"{name}\"");
        }
        var precedence = Int(file, spec, "matchingPrecedence", "spec.matchingPrecedence") ?? 1000;
        if (precedence is < 1 or > 10000)
        {
            Error(file, Child(spec, "matchingPrecedence")!, "spec.matchingPrecedence", $"{precedence} must be between 1 and 10000");
        }
        string? distinguisher = null;
        if (Child(spec, "distinguisherMethod") is YamlMappingNode dm)
        {
            distinguisher = Scalar(dm, "type") ?? "";
            if (distinguisher is not ("ByUser" or "ByNamespace"))
            {
                Error(file, dm, "spec.distinguisherMethod.type", $"\"{distinguisher}\" is not ByUser or ByNamespace");
            }
        }
        var rules = new List<FlowPolicyRule>();
        foreach (var r in Items(file, Child(spec, "rules"), "spec.rules"))
        {
            var subjects = new List<FlowSubject>();
            foreach (var s in Items(file, Child(r, "subjects"), "spec.rules.subjects"))
            {
                var sKind = Scalar(s, "kind") ?? "";
                var field = sKind switch { "User" => "user", "Group" => "group", "ServiceAccount" => "serviceAccount", _ => "" };
                if (field.Length == 0)
                {
                    Error(file, s, "spec.rules.subjects.kind", $"\"{sKind}\" is not User, Group or ServiceAccount");
                    continue;
                }
                var inner = Child(s, field) as YamlMappingNode;
                var sName = inner is null ? "" : Scalar(inner, "name") ?? "";
                var sNamespace = inner is null ? "" : Scalar(inner, "namespace") ?? "";
                if (sName.Length == 0 || (sKind == "ServiceAccount" && sNamespace.Length == 0))
                {
                    Error(file, s, $"spec.rules.subjects.{field}", sKind == "ServiceAccount" ? "needs namespace and name (name may be \"*\")" : "needs a name (\"*\" for any)");
                    continue;
                }
                subjects.Add(new FlowSubject(sKind, sName, sNamespace));
            }
            if (subjects.Count == 0)
            {
                Error(file, r, "spec.rules.subjects", "must name at least one subject");
            }
            var resourceRules = new List<FlowResourceRule>();
            foreach (var rr in Items(file, Child(r, "resourceRules"), "spec.rules.resourceRules"))
            {
                var verbs = Strings(file, rr, "verbs", "spec.rules.resourceRules.verbs", required: true);
                var groups = Strings(file, rr, "apiGroups", "spec.rules.resourceRules.apiGroups", required: true);
                var resources = Strings(file, rr, "resources", "spec.rules.resourceRules.resources", required: true);
                var namespaces = Strings(file, rr, "namespaces", "spec.rules.resourceRules.namespaces", required: false);
                var clusterScope = Scalar(rr, "clusterScope") is "true" or "True";
                if (!clusterScope && namespaces.Length == 0)
                {
                    Error(file, rr, "spec.rules.resourceRules.namespaces", "must name at least one namespace (\"*\" for any) unless clusterScope is true");
                }
                resourceRules.Add(new FlowResourceRule(verbs, groups, resources, clusterScope, namespaces));
            }
            var nonResourceRules = new List<FlowNonResourceRule>();
            foreach (var nr in Items(file, Child(r, "nonResourceRules"), "spec.rules.nonResourceRules"))
            {
                nonResourceRules.Add(new FlowNonResourceRule(
                    Strings(file, nr, "verbs", "spec.rules.nonResourceRules.verbs", required: true),
                    Strings(file, nr, "nonResourceURLs", "spec.rules.nonResourceRules.nonResourceURLs", required: true)));
            }
            rules.Add(new FlowPolicyRule([.. subjects], [.. resourceRules], [.. nonResourceRules]));
        }
        if (Errors.Count == start)
        {
            FlowSchemas.Add(new FlowSchema
            {
                Name = name, Uid = uid, PriorityLevelName = level, MatchingPrecedence = precedence, DistinguisherMethod = distinguisher,
                Rules = rules, Source = source,
            });
        }
    }

    private void ReadPriorityLevel(string file, string name, string uid, string version, YamlMappingNode spec, string source)
    {
        var start = Errors.Count;
        var type = Scalar(spec, "type") ?? "";
        if (type == "Exempt")
        {
            var exempt = Child(spec, "exempt") as YamlMappingNode;
            var shares = exempt is null ? 0 : Int(file, exempt, "nominalConcurrencyShares", "spec.exempt.nominalConcurrencyShares") ?? 0;
            var lendable = exempt is null ? 0 : Int(file, exempt, "lendablePercent", "spec.exempt.lendablePercent") ?? 0;
            CheckShares(file, exempt, shares, lendable, "spec.exempt");
            if (Errors.Count == start)
            {
                PriorityLevels.Add(new PriorityLevelConfiguration { Name = name, Uid = uid, Exempt = true, NominalConcurrencyShares = shares, LendablePercent = lendable, Source = source });
            }
            return;
        }
        if (type != "Limited")
        {
            Error(file, (YamlNode?)Child(spec, "type") ?? spec, "spec.type", $"\"{type}\" is not Exempt or Limited");
            return;
        }
        if (Child(spec, "limited") is not YamlMappingNode limited)
        {
            Error(file, spec, "spec.limited", $"is required for type Limited (PriorityLevelConfiguration \"{name}\")");
            return;
        }
        var legacy = version is "v1beta1" or "v1beta2";
        var sharesField = legacy ? "assuredConcurrencyShares" : "nominalConcurrencyShares";
        var nominal = Int(file, limited, sharesField, "spec.limited." + sharesField);
        // v1: unset means 30 and 0 is kept; v1beta3 and older cannot tell 0 from unset, and default both to 30.
        var ncs = nominal is null || (version != "v1" && nominal == 0) ? 30 : nominal.Value;
        var lendablePercent = Int(file, limited, "lendablePercent", "spec.limited.lendablePercent") ?? 0;
        var borrowing = Int(file, limited, "borrowingLimitPercent", "spec.limited.borrowingLimitPercent");
        CheckShares(file, limited, ncs, lendablePercent, "spec.limited");
        if (borrowing < 0)
        {
            Error(file, Child(limited, "borrowingLimitPercent")!, "spec.limited.borrowingLimitPercent", "must not be negative");
        }
        var response = Child(limited, "limitResponse") as YamlMappingNode;
        var responseType = response is null ? "" : Scalar(response, "type") ?? "";
        int queues = 64, handSize = 8, queueLength = 50;
        if (responseType == "Queue")
        {
            if (Child(response!, "queuing") is YamlMappingNode q)
            {
                queues = Int(file, q, "queues", "spec.limited.limitResponse.queuing.queues") ?? 64;
                handSize = Int(file, q, "handSize", "spec.limited.limitResponse.queuing.handSize") ?? 8;
                queueLength = Int(file, q, "queueLengthLimit", "spec.limited.limitResponse.queuing.queueLengthLimit") ?? 50;
            }
            if (queues <= 0 || handSize <= 0 || queueLength <= 0)
            {
                Error(file, response!, "spec.limited.limitResponse.queuing", "queues, handSize and queueLengthLimit must be positive");
            }
            else if (handSize > queues || handSize > ShuffleShardDealer.MaxHandSize || Math.Ceiling(Math.Log2(queues) * handSize) > 60)
            {
                Error(file, response!, "spec.limited.limitResponse.queuing.handSize",
                    $"handSize {handSize} must not exceed queues ({queues}) nor {ShuffleShardDealer.MaxHandSize}, and ceil(log2(queues) × handSize) must not exceed 60");
            }
        }
        else if (responseType != "Reject")
        {
            Error(file, (YamlNode?)response ?? limited, "spec.limited.limitResponse.type", $"\"{responseType}\" is not Queue or Reject");
        }
        if (Errors.Count == start)
        {
            var reject = responseType == "Reject";
            PriorityLevels.Add(new PriorityLevelConfiguration
            {
                Name = name, Uid = uid, NominalConcurrencyShares = ncs, LendablePercent = lendablePercent, BorrowingLimitPercent = borrowing,
                Reject = reject, Queues = reject ? 0 : queues, HandSize = reject ? 0 : handSize, QueueLengthLimit = reject ? 0 : queueLength, Source = source,
            });
        }
    }

    private void CheckShares(string file, YamlMappingNode? node, int shares, int lendable, string field)
    {
        if (shares < 0)
        {
            Error(file, node!, field + ".nominalConcurrencyShares", "must not be negative");
        }
        if (lendable is < 0 or > 100)
        {
            Error(file, node!, field + ".lendablePercent", $"{lendable} must be between 0 and 100");
        }
    }

    private IEnumerable<YamlMappingNode> Items(string file, YamlNode? node, string field)
    {
        if (node is null || IsNull(node))
        {
            yield break;
        }
        if (node is not YamlSequenceNode seq)
        {
            Error(file, node, field, "must be a list");
            yield break;
        }
        foreach (var item in seq.Children)
        {
            if (item is YamlMappingNode m)
            {
                yield return m;
            }
            else
            {
                Error(file, item, field, "each item must be a mapping");
            }
        }
    }

    private string[] Strings(string file, YamlMappingNode map, string key, string field, bool required)
    {
        var node = Child(map, key);
        var list = StringList(file, node, field);
        if (required && list.Count == 0)
        {
            Error(file, node ?? map, field, "must list at least one value (\"*\" for any)");
        }
        return [.. list];
    }

    private int? Int(string file, YamlMappingNode map, string key, string field)
    {
        if (Child(map, key) is not { } node || IsNull(node))
        {
            return null;
        }
        if (node is YamlScalarNode { Value: { } v } && int.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n))
        {
            return n;
        }
        Error(file, node, field, "must be an integer");
        return null;
    }
}
