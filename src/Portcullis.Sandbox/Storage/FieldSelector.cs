using System.Text.Json;
using System.Text.Json.Nodes;

namespace Portcullis.Sandbox.Storage;

/// <summary>A parsed field selector: comma-separated <c>path=value</c>, <c>path==value</c> or <c>path!=value</c>,
/// where path is a dotted JSON path such as <c>metadata.name</c> or <c>status.phase</c>.</summary>
public sealed class FieldSelector
{
    private sealed record Requirement(string[] Path, bool Equal, string Value);

    private readonly Requirement[] _requirements;

    private FieldSelector(Requirement[] requirements) => _requirements = requirements;

    /// <summary>The selector that matches everything.</summary>
    public static FieldSelector Everything { get; } = new([]);

    /// <summary>Parses a selector; throws <see cref="FormatException"/> naming the bad term.</summary>
    public static FieldSelector Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return Everything;
        }
        var requirements = new List<Requirement>();
        foreach (var raw in text.Split(','))
        {
            var term = raw.Trim();
            var ne = term.IndexOf("!=", StringComparison.Ordinal);
            var eq = term.IndexOf('=', StringComparison.Ordinal);
            if (ne > 0)
            {
                requirements.Add(new Requirement(term[..ne].Trim().Split('.'), false, term[(ne + 2)..].Trim()));
            }
            else if (eq > 0)
            {
                var valueStart = eq + 1 < term.Length && term[eq + 1] == '=' ? eq + 2 : eq + 1;
                requirements.Add(new Requirement(term[..eq].Trim().Split('.'), true, term[valueStart..].Trim()));
            }
            else
            {
                throw new FormatException($"field selector term \"{term}\": expected field=value, field==value or field!=value");
            }
        }
        return new FieldSelector([.. requirements]);
    }

    /// <summary>True when every requirement holds; a missing field compares as the empty string.</summary>
    public bool Matches(JsonObject obj)
    {
        foreach (var r in _requirements)
        {
            JsonNode? node = obj;
            foreach (var part in r.Path)
            {
                node = node is JsonObject o ? o[part] : null;
            }
            var value = node switch
            {
                null => "",
                JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
                _ => node.ToJsonString(),
            };
            if ((value == r.Value) != r.Equal)
            {
                return false;
            }
        }
        return true;
    }
}
