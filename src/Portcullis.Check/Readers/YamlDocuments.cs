using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Check.Readers;

/// <summary>Loads YAML (or JSON) documents as node trees and walks them leniently; a bad file is an error string, not an exception.</summary>
public static class YamlDocuments
{
    /// <summary>Parses every document in <paramref name="text"/>; on failure returns null and says where.</summary>
    public static IReadOnlyList<YamlNode>? TryLoad(string text, string where, out string? error)
    {
        error = null;
        var trimmed = text.TrimStart();
        if (trimmed.StartsWith('{') || trimmed.StartsWith('['))
        {
            // JSON is YAML in theory; in practice tab-indented JSON is not, so JSON takes its own parser.
            try
            {
                using var json = JsonDocument.Parse(text, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
                return [FromJson(json.RootElement)];
            }
            catch (JsonException ex)
            {
                error = $"{where}: line {(ex.LineNumber ?? 0) + 1}: not valid JSON: {ex.Message}";
                return null;
            }
        }
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(text));
            var documents = stream.Documents.Select(d => d.RootNode).Where(n => n is not YamlScalarNode { Value: null or "" }).ToList();
            return documents;
        }
        catch (YamlException ex)
        {
            error = $"{where}: line {ex.Start.Line}: not valid YAML: {FirstLine(ex.Message)}";
            return null;
        }
    }

    private static string FirstLine(string message)
    {
        var i = message.IndexOf('\n', StringComparison.Ordinal);
        return i < 0 ? message : message[..i];
    }

    private static YamlNode FromJson(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var map = new YamlMappingNode();
                foreach (var property in element.EnumerateObject())
                {
                    map.Add(new YamlScalarNode(property.Name), FromJson(property.Value));
                }
                return map;
            case JsonValueKind.Array:
                return new YamlSequenceNode(element.EnumerateArray().Select(FromJson));
            case JsonValueKind.String:
                return new YamlScalarNode(element.GetString());
            case JsonValueKind.Null:
                return new YamlScalarNode(null);
            default:
                return new YamlScalarNode(element.GetRawText());
        }
    }

    public static YamlNode? Get(this YamlNode? node, string key) =>
        node is YamlMappingNode map && map.Children.TryGetValue(new YamlScalarNode(key), out var child) ? child : null;

    public static YamlMappingNode? Map(this YamlNode? node, string key) => node.Get(key) as YamlMappingNode;

    public static IEnumerable<YamlNode> Seq(this YamlNode? node, string key) =>
        node.Get(key) is YamlSequenceNode seq ? seq.Children : [];

    public static string? Str(this YamlNode? node, string key) => node.Get(key) is YamlScalarNode s ? s.Value : null;

    public static IReadOnlyList<string> Strings(this YamlNode? node, string key) =>
        node.Seq(key).OfType<YamlScalarNode>().Select(s => s.Value ?? "").ToList();

    public static string? Scalar(this YamlNode? node) => (node as YamlScalarNode)?.Value;

    public static int Line(this YamlNode? node) => node is null ? 0 : (int)node.Start.Line;
}
