using Portcullis.Configuration;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Audit;

/// <summary>
/// Reads an <c>audit.k8s.io/v1</c> Policy file as kube-apiserver's <c>--audit-policy-file</c> does: unknown fields are
/// ignored with a warning (kube-apiserver falls back from strict to lenient decoding), everything else is validated
/// and every error is reported at once with file and line.
/// </summary>
public static class AuditPolicyLoader
{
    public const string ApiVersion = "audit.k8s.io/v1";

    /// <summary>Loads the policy at <paramref name="path"/>; throws <see cref="ConfigurationException"/> listing every error.</summary>
    public static AuditPolicy Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigurationException([new ConfigError(path, 0, "(file)", $"cannot read audit policy: {ex.Message}")]);
        }
        return Parse(text, path);
    }

    /// <summary>Parses policy YAML; <paramref name="file"/> names it in errors.</summary>
    public static AuditPolicy Parse(string text, string file)
    {
        var errors = new List<ConfigError>();
        var policy = TryParse(text, file, errors);
        return errors.Count > 0 || policy is null ? throw new ConfigurationException(errors) : policy;
    }

    /// <summary>Parses policy YAML into <paramref name="errors"/>; returns null when there are errors.</summary>
    public static AuditPolicy? TryParse(string text, string file, List<ConfigError> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var start = errors.Count;
        var reader = new Reader(file, errors);
        var policy = reader.Read(text);
        return errors.Count > start ? null : policy;
    }

    private sealed class Reader(string file, List<ConfigError> errors)
    {
        private readonly List<string> _warnings = [];

        public AuditPolicy? Read(string text)
        {
            var stream = new YamlStream();
            try
            {
                stream.Load(new StringReader(text));
            }
            catch (YamlException ex)
            {
                Error((int)ex.Start.Line, "(yaml)", FirstLine(ex.InnerException?.Message ?? ex.Message));
                return null;
            }
            if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
            {
                Error(stream.Documents.Count == 0 ? 0 : Line(stream.Documents[0].RootNode), "(document)",
                    "must be an audit.k8s.io/v1 Policy object (a mapping with apiVersion, kind and rules)");
                return null;
            }

            string? apiVersion = null, kind = null;
            YamlNode? rulesNode = null;
            var omitStages = AuditStages.None;
            var omitManagedFields = false;
            foreach (var (keyNode, value) in root.Children)
            {
                var key = (keyNode as YamlScalarNode)?.Value ?? "";
                switch (key)
                {
                    case "apiVersion": apiVersion = Scalar(value, key); break;
                    case "kind": kind = Scalar(value, key); break;
                    case "metadata": break;
                    case "rules": rulesNode = value; break;
                    case "omitStages": omitStages = Stages(value, key); break;
                    case "omitManagedFields": omitManagedFields = Bool(value, key) ?? false; break;
                    default: Warn(keyNode, key, "unknown field ignored"); break;
                }
            }
            if (apiVersion != ApiVersion)
            {
                Error(Line(root), "apiVersion", apiVersion is null
                    ? $"required; must be {ApiVersion}"
                    : $"\"{apiVersion}\" is not supported; must be {ApiVersion} (convert older audit.k8s.io versions to v1)");
            }
            if (kind != "Policy")
            {
                Error(Line(root), "kind", kind is null ? "required; must be Policy" : $"\"{kind}\" is not supported; must be Policy");
            }

            var rules = new List<AuditPolicyRule>();
            if (rulesNode is YamlSequenceNode seq)
            {
                var i = 0;
                foreach (var item in seq.Children)
                {
                    var rule = ReadRule(item, $"rules[{i}]", omitStages);
                    if (rule is not null)
                    {
                        rules.Add(rule);
                    }
                    i++;
                }
            }
            else if (rulesNode is not null && !IsNull(rulesNode))
            {
                Error(Line(rulesNode), "rules", "must be a list of rules");
            }
            if (rules.Count == 0 && (rulesNode is null || IsNull(rulesNode) || rulesNode is YamlSequenceNode { Children.Count: 0 }))
            {
                Error(rulesNode is null ? Line(root) : Line(rulesNode), "rules", "loaded illegal policy with 0 rules");
            }
            return new AuditPolicy(file, [.. rules], omitStages, omitManagedFields, _warnings);
        }

        private AuditPolicyRule? ReadRule(YamlNode node, string path, AuditStages policyOmitStages)
        {
            if (node is not YamlMappingNode map)
            {
                Error(Line(node), path, "must be a mapping with level and match fields");
                return null;
            }
            var before = errors.Count;
            AuditLevel? level = null;
            string[] users = [], groups = [], verbs = [], namespaces = [], urls = [];
            var resources = new List<AuditGroupResources>();
            var hasResources = false;
            var omit = AuditStages.None;
            bool? omitManagedFields = null;
            YamlNode? urlsNode = null;
            foreach (var (keyNode, value) in map.Children)
            {
                var key = (keyNode as YamlScalarNode)?.Value ?? "";
                var field = path + "." + key;
                switch (key)
                {
                    case "level":
                        var text = Scalar(value, field);
                        if (string.IsNullOrEmpty(text))
                        {
                            Error(Line(value), field, "required; must be None, Metadata, Request or RequestResponse");
                        }
                        else if (AuditNames.TryParseLevel(text, out var parsed))
                        {
                            level = parsed;
                        }
                        else
                        {
                            Error(Line(value), field, $"unsupported value \"{text}\"; must be None, Metadata, Request or RequestResponse");
                        }
                        break;
                    case "users": users = Strings(value, field); break;
                    case "userGroups": groups = Strings(value, field); break;
                    case "verbs": verbs = Strings(value, field); break;
                    case "namespaces": namespaces = Strings(value, field); break;
                    case "nonResourceURLs": urls = Strings(value, field); urlsNode = value; break;
                    case "resources":
                        hasResources = value is YamlSequenceNode { Children.Count: > 0 };
                        ReadResources(value, field, resources);
                        break;
                    case "omitStages": omit = Stages(value, field); break;
                    case "omitManagedFields": omitManagedFields = Bool(value, field); break;
                    default: Warn(keyNode, field, "unknown field ignored"); break;
                }
            }
            if (level is null && !map.Children.Any(c => (c.Key as YamlScalarNode)?.Value == "level"))
            {
                Error(Line(map), path + ".level", "required; must be None, Metadata, Request or RequestResponse");
            }
            if (urls.Length > 0 && (hasResources || namespaces.Length > 0))
            {
                Error(Line(urlsNode ?? map), path + ".nonResourceURLs", "rules cannot apply to both regular resources and non-resource URLs");
            }
            for (var i = 0; i < urls.Length; i++)
            {
                var url = urls[i];
                var at = urlsNode is YamlSequenceNode s && i < s.Children.Count ? Line(s.Children[i]) : Line(map);
                if (url == "*")
                {
                    continue;
                }
                if (!url.StartsWith('/'))
                {
                    Error(at, $"{path}.nonResourceURLs[{i}]", $"\"{url}\" must start with \"/\" (or be \"*\")");
                }
                var star = url.IndexOf('*', StringComparison.Ordinal);
                if (star >= 0 && star != url.Length - 1)
                {
                    Error(at, $"{path}.nonResourceURLs[{i}]", $"\"{url}\": \"*\" is only allowed as the last character");
                }
            }
            if (errors.Count > before || level is null)
            {
                return null;
            }
            return new AuditPolicyRule(Line(map), level.Value, users, groups, verbs, namespaces, [.. resources], urls,
                omit | policyOmitStages, omitManagedFields);
        }

        private void ReadResources(YamlNode node, string path, List<AuditGroupResources> into)
        {
            if (IsNull(node))
            {
                return;
            }
            if (node is not YamlSequenceNode seq)
            {
                Error(Line(node), path, "must be a list of {group, resources, resourceNames}");
                return;
            }
            var i = 0;
            foreach (var item in seq.Children)
            {
                var field = $"{path}[{i++}]";
                if (item is not YamlMappingNode map)
                {
                    Error(Line(item), field, "must be a mapping with group, resources and resourceNames");
                    continue;
                }
                var group = "";
                string[] names = [], resources = [];
                foreach (var (keyNode, value) in map.Children)
                {
                    var key = (keyNode as YamlScalarNode)?.Value ?? "";
                    switch (key)
                    {
                        case "group": group = Scalar(value, field + ".group") ?? ""; break;
                        case "resources": resources = Strings(value, field + ".resources"); break;
                        case "resourceNames": names = Strings(value, field + ".resourceNames"); break;
                        default: Warn(keyNode, field + "." + key, "unknown field ignored"); break;
                    }
                }
                if (group.Length > 0 && group != "*" && !IsDnsSubdomain(group))
                {
                    Error(Line(map), field + ".group", $"\"{group}\" must be a lower-case DNS subdomain, \"\" (core) or \"*\"");
                }
                if (names.Length > 0 && resources.Length == 0)
                {
                    Error(Line(map), field + ".resourceNames", "using resourceNames requires at least one resource");
                }
                into.Add(new AuditGroupResources(group, resources, names));
            }
        }

        private AuditStages Stages(YamlNode node, string field)
        {
            var set = AuditStages.None;
            var names = Strings(node, field);
            for (var i = 0; i < names.Length; i++)
            {
                if (AuditNames.TryParseStage(names[i], out var stage))
                {
                    set |= stage.ToSet();
                }
                else
                {
                    var at = node is YamlSequenceNode s ? Line(s.Children[i]) : Line(node);
                    Error(at, $"{field}[{i}]",
                        $"unsupported stage \"{names[i]}\"; must be RequestReceived, ResponseStarted, ResponseComplete or Panic");
                }
            }
            return set;
        }

        private string[] Strings(YamlNode node, string field)
        {
            if (IsNull(node))
            {
                return [];
            }
            if (node is not YamlSequenceNode seq)
            {
                Error(Line(node), field, "must be a list of strings");
                return [];
            }
            var result = new List<string>(seq.Children.Count);
            foreach (var item in seq.Children)
            {
                if (item is YamlScalarNode s)
                {
                    result.Add(s.Value ?? "");
                }
                else
                {
                    Error(Line(item), field, "must be a list of strings");
                }
            }
            return [.. result];
        }

        private string? Scalar(YamlNode node, string field)
        {
            if (node is YamlScalarNode s)
            {
                return IsNull(node) ? null : s.Value;
            }
            Error(Line(node), field, "must be a string");
            return null;
        }

        private bool? Bool(YamlNode node, string field)
        {
            if (node is YamlScalarNode { Value: { } v } && bool.TryParse(v, out var b))
            {
                return b;
            }
            Error(Line(node), field, "must be true or false");
            return null;
        }

        private void Error(int line, string field, string message) => errors.Add(new ConfigError(file, line, field, message));

        private void Warn(YamlNode node, string field, string message) => _warnings.Add($"{file}:{Line(node)}: {field}: {message}");

        private static int Line(YamlNode node) => (int)node.Start.Line;

        private static bool IsNull(YamlNode node) =>
            node is YamlScalarNode { Style: not (ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted) } s
            && (s.Value is null or "" or "~" or "null");

        private static bool IsDnsSubdomain(string value)
        {
            if (value.Length > 253)
            {
                return false;
            }
            foreach (var label in value.Split('.'))
            {
                if (label.Length is 0 or > 63 || !char.IsAsciiLetterLower(label[0]) && !char.IsAsciiDigit(label[0])
                    || !char.IsAsciiLetterLower(label[^1]) && !char.IsAsciiDigit(label[^1]))
                {
                    return false;
                }
                foreach (var c in label)
                {
                    if (!char.IsAsciiLetterLower(c) && !char.IsAsciiDigit(c) && c != '-')
                    {
                        return false;
                    }
                }
            }
            return true;
        }

        private static string FirstLine(string s)
        {
            var i = s.IndexOf('\n', StringComparison.Ordinal);
            return i < 0 ? s : s[..i];
        }
    }
}
