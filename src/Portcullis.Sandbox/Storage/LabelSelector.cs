using System.Text.Json.Nodes;

namespace Portcullis.Sandbox.Storage;

/// <summary>A parsed label selector: =, ==, !=, in, notin, exists (key) and does-not-exist (!key).</summary>
public sealed class LabelSelector
{
    private enum Op { Equals, NotEquals, In, NotIn, Exists, DoesNotExist }

    private sealed record Requirement(string Key, Op Op, string[] Values);

    private readonly Requirement[] _requirements;

    private LabelSelector(Requirement[] requirements) => _requirements = requirements;

    /// <summary>The selector that matches everything.</summary>
    public static LabelSelector Everything { get; } = new([]);

    /// <summary>Parses a selector; throws <see cref="FormatException"/> naming the bad term.</summary>
    public static LabelSelector Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return Everything;
        }
        var requirements = new List<Requirement>();
        foreach (var term in SplitTerms(text))
        {
            requirements.Add(ParseTerm(term.Trim()));
        }
        return new LabelSelector([.. requirements]);
    }

    /// <summary>True when the object's metadata.labels satisfy every requirement.</summary>
    public bool Matches(JsonObject obj)
    {
        if (_requirements.Length == 0)
        {
            return true;
        }
        var labels = obj["metadata"]?["labels"] as JsonObject;
        foreach (var r in _requirements)
        {
            string? value = null;
            var has = labels is not null && labels.TryGetPropertyValue(r.Key, out var node) && (value = node?.GetValue<string>()) is not null;
            var ok = r.Op switch
            {
                Op.Exists => has,
                Op.DoesNotExist => !has,
                Op.Equals => has && value == r.Values[0],
                Op.NotEquals => !has || value != r.Values[0],
                Op.In => has && r.Values.Contains(value),
                Op.NotIn => !has || !r.Values.Contains(value),
                _ => false,
            };
            if (!ok)
            {
                return false;
            }
        }
        return true;
    }

    private static IEnumerable<string> SplitTerms(string text)
    {
        var depth = 0;
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            switch (text[i])
            {
                case '(':
                    depth++;
                    break;
                case ')':
                    depth--;
                    break;
                case ',' when depth == 0:
                    yield return text[start..i];
                    start = i + 1;
                    break;
            }
        }
        yield return text[start..];
    }

    private static Requirement ParseTerm(string term)
    {
        if (term.Length == 0)
        {
            throw new FormatException("empty term in label selector");
        }
        if (term[0] == '!')
        {
            return new Requirement(ValidKey(term[1..].Trim(), term), Op.DoesNotExist, []);
        }
        var ne = term.IndexOf("!=", StringComparison.Ordinal);
        if (ne > 0)
        {
            return new Requirement(ValidKey(term[..ne].Trim(), term), Op.NotEquals, [term[(ne + 2)..].Trim()]);
        }
        var eq = term.IndexOf('=', StringComparison.Ordinal);
        if (eq > 0)
        {
            var valueStart = eq + 1 < term.Length && term[eq + 1] == '=' ? eq + 2 : eq + 1;
            return new Requirement(ValidKey(term[..eq].Trim(), term), Op.Equals, [term[valueStart..].Trim()]);
        }
        var paren = term.IndexOf('(', StringComparison.Ordinal);
        if (paren > 0)
        {
            if (term[^1] != ')')
            {
                throw new FormatException($"label selector term \"{term}\": missing ')'");
            }
            var head = term[..paren].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (head.Length != 2 || (head[1] != "in" && head[1] != "notin"))
            {
                throw new FormatException($"label selector term \"{term}\": expected 'key in (…)' or 'key notin (…)'");
            }
            var values = term[(paren + 1)..^1].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            return new Requirement(ValidKey(head[0], term), head[1] == "in" ? Op.In : Op.NotIn, values);
        }
        return new Requirement(ValidKey(term, term), Op.Exists, []);
    }

    private static string ValidKey(string key, string term)
    {
        if (key.Length == 0 || key.Any(c => char.IsWhiteSpace(c) || c is '(' or ')' or '!' or '=' or ','))
        {
            throw new FormatException($"label selector term \"{term}\": invalid label key \"{key}\"");
        }
        return key;
    }
}
