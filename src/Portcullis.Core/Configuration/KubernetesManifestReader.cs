using YamlDotNet.RepresentationModel;

namespace Portcullis.Configuration;

/// <summary>
/// What every reader of Kubernetes objects from manifest files shares: a file, or every <c>*.yaml</c>, <c>*.yml</c> and
/// <c>*.json</c> file under a folder (sorted, recursive); multi-document YAML and JSON; <c>kind: List</c> (or any
/// <c>*List</c> with <c>items</c>) flattened; empty documents skipped. An object of one of <see cref="Kinds"/> is handed
/// to <see cref="ReadKind"/>; an object without a kind, or with another kind of <see cref="Group"/> (a typo), is an error
/// naming file:line; a kind of another API group is skipped with a note, so one folder can hold mixed manifests.
/// </summary>
public abstract class KubernetesManifestReader(List<ConfigError> errors, List<string> notes)
{
    /// <summary>Where errors (file, line, field, message) are collected.</summary>
    protected List<ConfigError> Errors { get; } = errors;

    /// <summary>The API group whose other kinds are errors rather than skipped.</summary>
    protected abstract string Group { get; }

    /// <summary>The kinds this reader reads, in the order its messages name them.</summary>
    protected abstract IReadOnlyList<string> Kinds { get; }

    /// <summary>Reads one object of one of <see cref="Kinds"/>; <paramref name="node"/> is the object itself.</summary>
    protected abstract void ReadKind(YamlMappingNode map, string kind, string apiVersion, string file, YamlNode node);

    /// <summary>Reads a file, or every *.yaml, *.yml and *.json file under a folder (sorted, recursive).</summary>
    public void ReadPath(string path)
    {
        if (Directory.Exists(path))
        {
            foreach (var file in Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
                .Where(f => f.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".yml", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
                .Order(StringComparer.Ordinal))
            {
                ReadFile(file);
            }
            return;
        }
        ReadFile(path);
    }

    public void ReadFile(string file)
    {
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Errors.Add(new ConfigError(file, 0, "(file)", $"cannot read: {ex.Message}"));
            return;
        }
        ReadText(text, file);
    }

    public void ReadText(string text, string file)
    {
        foreach (var doc in new YamlBinder(file, Errors).Parse(text))
        {
            ReadObject(doc.RootNode, file);
        }
    }

    private void ReadObject(YamlNode node, string file)
    {
        if (node is YamlScalarNode { Value: null or "" })
        {
            return; // an empty document
        }
        if (node is not YamlMappingNode map)
        {
            Error(file, node, "(object)", "must be a mapping with apiVersion and kind");
            return;
        }
        var kind = Scalar(map, "kind") ?? "";
        var apiVersion = Scalar(map, "apiVersion") ?? "";
        if (kind.EndsWith("List", StringComparison.Ordinal) && Child(map, "items") is { } items)
        {
            if (items is YamlSequenceNode seq)
            {
                foreach (var item in seq.Children)
                {
                    ReadObject(item, file);
                }
            }
            else if (!IsNull(items))
            {
                Error(file, items, "items", "must be a list");
            }
            return;
        }
        if (!Kinds.Contains(kind))
        {
            if (kind.Length == 0)
            {
                // Not an object kubectl would apply either; skipping it could hide an object the operator meant.
                Error(file, node, "kind", $"is required ({Join(" or ")}, or another kind to be skipped)");
            }
            else if (apiVersion.StartsWith(Group + "/", StringComparison.Ordinal))
            {
                // A kind the API group does not have (a typo such as ClusterRoleBindng): an error, not a missing object.
                Error(file, Child(map, "kind") ?? node, "kind", $"\"{kind}\" is not a kind of {Group}: use {Join(" or ")}");
            }
            else
            {
                notes.Add($"{file}:{Line(node)}: ignored kind {kind} (only {Join(" and ")} are read)");
            }
            return;
        }
        ReadKind(map, kind, apiVersion, file, node);
    }

    // "A, B or C" / "A, B and C".
    private string Join(string last) =>
        Kinds.Count == 1 ? Kinds[0] : string.Join(", ", Kinds.Take(Kinds.Count - 1)) + " " + last + " " + Kinds[^1];

    /// <summary>A list of strings; absent or null is empty, anything else is an error naming <paramref name="field"/>.</summary>
    protected List<string> StringList(string file, YamlNode? node, string field)
    {
        var list = new List<string>();
        if (node is null || IsNull(node))
        {
            return list;
        }
        if (node is not YamlSequenceNode seq)
        {
            Error(file, node, field, "must be a list of strings");
            return list;
        }
        foreach (var item in seq.Children)
        {
            if (item is YamlScalarNode s)
            {
                list.Add(s.Value ?? "");
            }
            else
            {
                Error(file, item, field, "must be a string");
            }
        }
        return list;
    }

    protected static YamlNode? Child(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : null;

    protected static string? Scalar(YamlMappingNode map, string key) => (Child(map, key) as YamlScalarNode)?.Value;

    protected static bool IsNull(YamlNode node) => node is YamlScalarNode { Value: null or "" or "~" or "null" };

    protected static int Line(YamlNode node) => (int)node.Start.Line;

    protected void Error(string file, YamlNode node, string field, string message) =>
        Errors.Add(new ConfigError(file, Line(node), field, message));
}
