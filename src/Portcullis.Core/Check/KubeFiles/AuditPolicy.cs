using Portcullis.Check.Readers;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Check.KubeFiles;

/// <summary>The audit levels of <c>audit.k8s.io/v1</c>, in increasing order of what they record.</summary>
public enum AuditLevel
{
    None,
    Metadata,
    Request,
    RequestResponse,
}

/// <summary>One <c>resources[]</c> entry of a policy rule.</summary>
public sealed record AuditGroupResources(string Group, IReadOnlyList<string> Resources, IReadOnlyList<string> ResourceNames);

/// <summary>One policy rule; empty lists match anything.</summary>
public sealed record AuditPolicyRule(
    AuditLevel Level,
    IReadOnlyList<string> Users,
    IReadOnlyList<string> UserGroups,
    IReadOnlyList<string> Verbs,
    IReadOnlyList<AuditGroupResources> Resources,
    IReadOnlyList<string> Namespaces,
    IReadOnlyList<string> NonResourceUrls,
    int Line);

/// <summary>A request as the audit policy sees it (the authenticated, pre-impersonation user).</summary>
public sealed record AuditRequest(
    string User,
    IReadOnlyList<string> Groups,
    string Verb,
    string ApiGroup = "",
    string Resource = "",
    string Subresource = "",
    string Namespace = "",
    string Name = "",
    string Path = "")
{
    public bool IsResourceRequest => Resource.Length > 0;

    public override string ToString() => IsResourceRequest
        ? $"{Verb} {(ApiGroup.Length == 0 ? "" : ApiGroup + "/")}{Resource}{(Subresource.Length == 0 ? "" : "/" + Subresource)}"
        : $"{Verb} {Path}";
}

/// <summary>An <c>audit.k8s.io/v1</c> <c>Policy</c>: first matching rule wins, no match means <c>None</c>.</summary>
public sealed record AuditPolicy(IReadOnlyList<AuditPolicyRule> Rules, IReadOnlyList<string> OmitStages)
{
    /// <summary>The level and the (1-based) rule index that decides <paramref name="request"/>; 0 when no rule matches.</summary>
    public (AuditLevel Level, int RuleIndex) Evaluate(AuditRequest request)
    {
        for (var i = 0; i < Rules.Count; i++)
        {
            if (Matches(Rules[i], request))
            {
                return (Rules[i].Level, i + 1);
            }
        }
        return (AuditLevel.None, 0);
    }

    private static bool Matches(AuditPolicyRule rule, AuditRequest request)
    {
        if (rule.Users.Count > 0 && !rule.Users.Contains(request.User))
        {
            return false;
        }
        if (rule.UserGroups.Count > 0 && !rule.UserGroups.Any(request.Groups.Contains))
        {
            return false;
        }
        if (rule.Verbs.Count > 0 && !rule.Verbs.Contains(request.Verb))
        {
            return false;
        }
        if (rule.Namespaces.Count > 0 || rule.Resources.Count > 0)
        {
            if (!request.IsResourceRequest)
            {
                return false;
            }
            if (rule.Namespaces.Count > 0 && !rule.Namespaces.Contains(request.Namespace))
            {
                return false;
            }
            return rule.Resources.Count == 0 || rule.Resources.Any(gr => MatchesResource(gr, request));
        }
        if (rule.NonResourceUrls.Count > 0)
        {
            return !request.IsResourceRequest && rule.NonResourceUrls.Any(u =>
                u == "*" || u == request.Path || (u.EndsWith('*') && request.Path.StartsWith(u[..^1], StringComparison.Ordinal)));
        }
        return true;
    }

    private static bool MatchesResource(AuditGroupResources gr, AuditRequest request)
    {
        if (gr.Group != "*" && gr.Group != request.ApiGroup)
        {
            return false;
        }
        if (gr.Resources.Count == 0)
        {
            return true;
        }
        var combined = request.Subresource.Length == 0 ? request.Resource : request.Resource + "/" + request.Subresource;
        foreach (var res in gr.Resources)
        {
            var hit = res == "*" || res == combined
                || (request.Subresource.Length > 0 && (res == "*/" + request.Subresource || res == request.Resource + "/*"));
            if (hit && (gr.ResourceNames.Count == 0 || gr.ResourceNames.Contains(request.Name)))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Parses a policy the way kube-apiserver validates it; every problem found is added to <paramref name="errors"/>.</summary>
    public static AuditPolicy? Parse(string text, string where, List<string> errors)
    {
        var documents = YamlDocuments.TryLoad(text, where, out var error);
        if (documents is null)
        {
            errors.Add(error!);
            return null;
        }
        var doc = documents.Count > 0 ? documents[0] : null;
        if (doc is not YamlMappingNode)
        {
            errors.Add($"{where}: empty document, expected an audit.k8s.io/v1 Policy");
            return null;
        }
        var apiVersion = doc.Str("apiVersion");
        var kind = doc.Str("kind");
        if (kind != "Policy")
        {
            errors.Add($"{where}: line {doc.Line()}: kind is \"{kind}\", expected Policy");
        }
        if (apiVersion != "audit.k8s.io/v1")
        {
            errors.Add($"{where}: line {doc.Line()}: apiVersion is \"{apiVersion}\"; kube-apiserver only loads audit.k8s.io/v1");
        }
        var omit = doc.Strings("omitStages");
        var rules = new List<AuditPolicyRule>();
        foreach (var node in doc.Seq("rules"))
        {
            var line = node.Line();
            var levelText = node.Str("level");
            if (!Enum.TryParse<AuditLevel>(levelText, ignoreCase: false, out var level) || !Enum.IsDefined(level))
            {
                errors.Add($"{where}: line {line}: rules[{rules.Count}].level \"{levelText}\" is not one of None, Metadata, Request, RequestResponse");
                level = AuditLevel.None;
            }
            var resources = node.Seq("resources").Select(r => new AuditGroupResources(r.Str("group") ?? "", r.Strings("resources"), r.Strings("resourceNames"))).ToList();
            var urls = node.Strings("nonResourceURLs");
            var namespaces = node.Strings("namespaces");
            if (urls.Count > 0 && (resources.Count > 0 || namespaces.Count > 0))
            {
                errors.Add($"{where}: line {line}: rules[{rules.Count}] mixes nonResourceURLs with resources/namespaces");
            }
            foreach (var url in urls.Where(u => u != "*" && (!u.StartsWith('/') || u.IndexOf('*', StringComparison.Ordinal) is var star && star >= 0 && star != u.Length - 1)))
            {
                errors.Add($"{where}: line {line}: nonResourceURL \"{url}\" must start with / and may only end with *");
            }
            rules.Add(new AuditPolicyRule(level, node.Strings("users"), node.Strings("userGroups"), node.Strings("verbs"), resources, namespaces, urls, line));
        }
        if (rules.Count == 0)
        {
            errors.Add($"{where}: the policy has no rules (kube-apiserver: \"loaded illegal policy with 0 rules\")");
        }
        return new AuditPolicy(rules, omit);
    }
}
