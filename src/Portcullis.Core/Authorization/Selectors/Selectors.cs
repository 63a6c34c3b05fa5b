using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Portcullis.Authorization.Selectors;

/// <summary>
/// One requirement of a parsed field or label selector, with kube-apiserver's <c>selection.Operator</c> spelling:
/// <c>=</c>, <c>==</c>, <c>!=</c>, <c>in</c>, <c>notin</c>, <c>exists</c>, <c>!</c> (does not exist), <c>gt</c>, <c>lt</c>.
/// </summary>
/// <param name="Key">The field (field selectors) or label key.</param>
/// <param name="Operator">The selection operator as kube-apiserver names it.</param>
/// <param name="Values">The values: one for field selectors; for labels sorted and without duplicates (a Go string set), none for exists and !.</param>
public sealed record SelectorRequirement(string Key, string Operator, IReadOnlyList<string> Values);

/// <summary>
/// <c>fields.ParseSelector</c> of k8s.io/apimachinery: terms split on unescaped <c>,</c>, sorted (byte order of their
/// UTF-8), empty terms skipped; each term splits at the first <c>!=</c>, <c>==</c> or <c>=</c> (no escapes on the left);
/// the value is unescaped (<c>\\</c>, <c>\,</c>, <c>\=</c>; any other escape or a bare <c>,</c> / <c>=</c> is an error).
/// A term with an empty field and an empty value selects everything and yields no requirement.
/// </summary>
public static class FieldSelectorParser
{
    /// <summary>The requirements in kube-apiserver's order, or null with <paramref name="error"/> when it does not parse.</summary>
    public static IReadOnlyList<SelectorRequirement>? Parse(string selector, out string error)
    {
        ArgumentNullException.ThrowIfNull(selector);
        error = "";
        if (selector.Length == 0)
        {
            return [];
        }
        var parts = SplitTerms(selector);
        parts.Sort(Utf8Order.Instance);
        var requirements = new List<SelectorRequirement>(parts.Count);
        foreach (var part in parts)
        {
            if (part.Length == 0)
            {
                continue;
            }
            if (!SplitTerm(part, out var lhs, out var op, out var rhs))
            {
                error = $"invalid selector: '{selector}'; can't understand '{part}'";
                return null;
            }
            var value = UnescapeValue(rhs, out error);
            if (value is null)
            {
                return null;
            }
            if (lhs.Length == 0 && value.Length == 0)
            {
                continue; // Transform makes it Everything, which an andTerm drops
            }
            requirements.Add(new SelectorRequirement(lhs, op == "!=" ? "!=" : "=", [value]));
        }
        return requirements;
    }

    private static List<string> SplitTerms(string selector)
    {
        var terms = new List<string>(1);
        var start = 0;
        var inSlash = false;
        for (var i = 0; i < selector.Length; i++)
        {
            var c = selector[i];
            if (inSlash)
            {
                inSlash = false;
            }
            else if (c == '\\')
            {
                inSlash = true;
            }
            else if (c == ',')
            {
                terms.Add(selector[start..i]);
                start = i + 1;
            }
        }
        terms.Add(selector[start..]);
        return terms;
    }

    // fields.splitTerm: the first position where "!=", "==" or "=" starts (in that order of preference).
    private static bool SplitTerm(string term, out string lhs, out string op, out string rhs)
    {
        for (var i = 0; i < term.Length; i++)
        {
            var rest = term.AsSpan(i);
            op = rest.StartsWith("!=", StringComparison.Ordinal) ? "!=" : rest.StartsWith("==", StringComparison.Ordinal) ? "==" : rest.StartsWith('=') ? "=" : "";
            if (op.Length > 0)
            {
                lhs = term[..i];
                rhs = term[(i + op.Length)..];
                return true;
            }
        }
        lhs = op = rhs = "";
        return false;
    }

    /// <summary>fields.UnescapeValue: null with the error for an invalid escape or an unescaped <c>,</c> or <c>=</c>.</summary>
    public static string? UnescapeValue(string value, out string error)
    {
        ArgumentNullException.ThrowIfNull(value);
        error = "";
        if (value.AsSpan().IndexOfAny('\\', ',', '=') < 0)
        {
            return value;
        }
        var sb = new StringBuilder(value.Length);
        var inSlash = false;
        foreach (var rune in value.EnumerateRunes())
        {
            if (inSlash)
            {
                if (rune.Value is not ('\\' or ',' or '='))
                {
                    error = $"invalid escape sequence: \\{rune}";
                    return null;
                }
                sb.Append(rune.ToString());
                inSlash = false;
                continue;
            }
            switch (rune.Value)
            {
                case '\\':
                    inSlash = true;
                    break;
                case ',' or '=':
                    error = $"invalid character present in value: {rune}";
                    return null;
                default:
                    sb.Append(rune.ToString());
                    break;
            }
        }
        if (inSlash)
        {
            error = "invalid escape sequence: \\";
            return null;
        }
        return sb.ToString();
    }
}

/// <summary>
/// <c>labels.Parse</c> of k8s.io/apimachinery, token for token: <c>[!]key</c>, <c>key(=|==|!=)value</c>,
/// <c>key in (a,b)</c>, <c>key notin (a,b)</c>, <c>key&gt;1</c>, <c>key&lt;1</c>, comma-separated; keys must be
/// qualified names and values label values; requirements sorted by key, set values sorted without duplicates.
/// </summary>
public static partial class LabelSelectorParser
{
    private enum Token
    {
        Error,
        EndOfString,
        ClosedPar,
        Comma,
        DoesNotExist,
        DoubleEquals,
        Equals,
        GreaterThan,
        Identifier,
        In,
        LessThan,
        NotEquals,
        NotIn,
        OpenPar,
    }

    private static Token? TokenOf(string s) => s switch
    {
        ")" => Token.ClosedPar,
        "," => Token.Comma,
        "!" => Token.DoesNotExist,
        "==" => Token.DoubleEquals,
        "=" => Token.Equals,
        ">" => Token.GreaterThan,
        "in" => Token.In,
        "<" => Token.LessThan,
        "!=" => Token.NotEquals,
        "notin" => Token.NotIn,
        "(" => Token.OpenPar,
        _ => null,
    };

    /// <summary>The requirements in kube-apiserver's order, or null with <paramref name="error"/> when it does not parse.</summary>
    public static IReadOnlyList<SelectorRequirement>? Parse(string selector, out string error)
    {
        ArgumentNullException.ThrowIfNull(selector);
        var parser = new Parser(Scan(selector));
        var requirements = parser.Parse(out error);
        if (requirements is null)
        {
            return null;
        }
        // sort.Sort(ByKey): insertion sort (stable) up to 12 requirements; stable here for any number
        return [.. requirements.OrderBy(r => r.Key, StringComparer.Ordinal)];
    }

    private static bool IsWhitespace(char c) => c is ' ' or '\t' or '\r' or '\n';

    private static bool IsSpecialSymbol(char c) => c is '=' or '!' or '(' or ')' or ',' or '>' or '<';

    // Lexer.Lex over the whole string; Go reads bytes and a NUL reads like the end of the string.
    private static List<(Token Token, string Literal)> Scan(string s)
    {
        var items = new List<(Token, string)>();
        var pos = 0;
        char Read() => pos < s.Length ? s[pos++] : '\0';
        while (true)
        {
            var ch = Read();
            while (IsWhitespace(ch))
            {
                ch = Read();
            }
            if (ch == '\0')
            {
                items.Add((Token.EndOfString, ""));
                return items;
            }
            pos--;
            var buffer = new StringBuilder();
            if (IsSpecialSymbol(ch))
            {
                (Token Token, string Literal)? last = null;
                while (true)
                {
                    var c = Read();
                    if (c == '\0')
                    {
                        break;
                    }
                    if (!IsSpecialSymbol(c))
                    {
                        pos--;
                        break;
                    }
                    buffer.Append(c);
                    if (TokenOf(buffer.ToString()) is { } t)
                    {
                        last = (t, buffer.ToString());
                    }
                    else if (last is not null)
                    {
                        pos--;
                        break;
                    }
                }
                items.Add(last ?? (Token.Error, $"error expected: keyword found '{buffer}'"));
            }
            else
            {
                while (true)
                {
                    var c = Read();
                    if (c == '\0')
                    {
                        break;
                    }
                    if (IsSpecialSymbol(c) || IsWhitespace(c))
                    {
                        pos--;
                        break;
                    }
                    buffer.Append(c);
                }
                var literal = buffer.ToString();
                items.Add((TokenOf(literal) ?? Token.Identifier, literal));
            }
        }
    }

    private sealed class Parser(List<(Token Token, string Literal)> items)
    {
        private int _position;

        private (Token Token, string Literal) Lookahead(bool values)
        {
            var (t, l) = items[_position];
            return (values && t is Token.In or Token.NotIn ? Token.Identifier : t, l);
        }

        private (Token Token, string Literal) Consume(bool values)
        {
            var item = Lookahead(values);
            _position++;
            return item;
        }

        public List<SelectorRequirement>? Parse(out string error)
        {
            var requirements = new List<SelectorRequirement>();
            while (true)
            {
                var (tok, lit) = Lookahead(values: true);
                switch (tok)
                {
                    case Token.Identifier or Token.DoesNotExist:
                        var r = ParseRequirement(out error);
                        if (r is null)
                        {
                            error = "unable to parse requirement: " + error;
                            return null;
                        }
                        requirements.Add(r);
                        var (t, l) = Consume(values: true);
                        if (t == Token.EndOfString)
                        {
                            return requirements;
                        }
                        if (t != Token.Comma)
                        {
                            error = $"found '{l}', expected: ',' or 'end of string'";
                            return null;
                        }
                        var (t2, l2) = Lookahead(values: true);
                        if (t2 is not (Token.Identifier or Token.DoesNotExist))
                        {
                            error = $"found '{l2}', expected: identifier after ','";
                            return null;
                        }
                        break;
                    case Token.EndOfString:
                        error = "";
                        return requirements;
                    default:
                        error = $"found '{lit}', expected: !, identifier, or 'end of string'";
                        return null;
                }
            }
        }

        private SelectorRequirement? ParseRequirement(out string error)
        {
            // parseKeyAndInferOperator
            var op = "";
            var (tok, key) = Consume(values: true);
            if (tok == Token.DoesNotExist)
            {
                op = "!";
                (tok, key) = Consume(values: true);
            }
            if (tok != Token.Identifier)
            {
                error = $"found '{key}', expected: identifier";
                return null;
            }
            if (LabelKeyError(key) is { } keyError)
            {
                error = keyError;
                return null;
            }
            var (next, _) = Lookahead(values: true);
            if (next is Token.EndOfString or Token.Comma)
            {
                return Requirement(key, op == "!" ? "!" : "exists", [], out error);
            }
            if (op == "!")
            {
                // "!key" followed by something else: Go's operator stays DoesNotExist and NewRequirement sees no values
                return Requirement(key, "!", [], out error);
            }
            var (opTok, opLit) = Consume(values: false);
            op = opTok switch
            {
                Token.In => "in",
                Token.Equals => "=",
                Token.DoubleEquals => "==",
                Token.GreaterThan => "gt",
                Token.LessThan => "lt",
                Token.NotIn => "notin",
                Token.NotEquals => "!=",
                _ => "",
            };
            if (op.Length == 0)
            {
                error = $"found '{opLit}', expected: in, notin, =, ==, !=, gt, lt";
                return null;
            }
            var values = op is "in" or "notin" ? ParseValues(out error) : ParseExactValue(out error);
            return values is null ? null : Requirement(key, op, [.. values], out error);
        }

        private SortedSet<string>? ParseValues(out string error)
        {
            var (tok, lit) = Consume(values: true);
            if (tok != Token.OpenPar)
            {
                error = $"found '{lit}' expected: '('";
                return null;
            }
            (tok, lit) = Lookahead(values: true);
            switch (tok)
            {
                case Token.Identifier or Token.Comma:
                    var set = ParseIdentifiersList(out error);
                    if (set is null)
                    {
                        return null;
                    }
                    if (Consume(values: true).Token != Token.ClosedPar)
                    {
                        error = $"found '{lit}', expected: ')'";
                        return null;
                    }
                    return set;
                case Token.ClosedPar:
                    Consume(values: true);
                    error = "";
                    return new SortedSet<string>(StringComparer.Ordinal) { "" };
                default:
                    error = $"found '{lit}', expected: ',', ')' or identifier";
                    return null;
            }
        }

        private SortedSet<string>? ParseIdentifiersList(out string error)
        {
            var set = new SortedSet<string>(StringComparer.Ordinal);
            while (true)
            {
                var (tok, lit) = Consume(values: true);
                switch (tok)
                {
                    case Token.Identifier:
                        set.Add(lit);
                        var (t2, l2) = Lookahead(values: true);
                        if (t2 == Token.Comma)
                        {
                            continue;
                        }
                        if (t2 == Token.ClosedPar)
                        {
                            error = "";
                            return set;
                        }
                        error = $"found '{l2}', expected: ',' or ')'";
                        return null;
                    case Token.Comma:
                        if (set.Count == 0)
                        {
                            set.Add("");
                        }
                        var (t3, _) = Lookahead(values: true);
                        if (t3 == Token.ClosedPar)
                        {
                            set.Add("");
                            error = "";
                            return set;
                        }
                        if (t3 == Token.Comma)
                        {
                            set.Add("");
                        }
                        break;
                    default:
                        error = $"found '{lit}', expected: ',', or identifier";
                        return null;
                }
            }
        }

        private SortedSet<string>? ParseExactValue(out string error)
        {
            error = "";
            var (tok, _) = Lookahead(values: true);
            if (tok is Token.EndOfString or Token.Comma)
            {
                return new SortedSet<string>(StringComparer.Ordinal) { "" };
            }
            (tok, var lit) = Consume(values: true);
            if (tok == Token.Identifier)
            {
                return new SortedSet<string>(StringComparer.Ordinal) { lit };
            }
            error = $"found '{lit}', expected: identifier";
            return null;
        }
    }

    // labels.NewRequirement: the operator's value count, integers for gt/lt, every value a label value.
    private static SelectorRequirement? Requirement(string key, string op, string[] values, out string error)
    {
        var errors = new List<string>();
        if (LabelKeyError(key) is { } keyError)
        {
            errors.Add(keyError);
        }
        switch (op)
        {
            case "in" or "notin" when values.Length == 0:
                errors.Add("for 'in', 'notin' operators, values set can't be empty");
                break;
            case "=" or "==" or "!=" when values.Length != 1:
                errors.Add("exact-match compatibility requires one single value");
                break;
            case "exists" or "!" when values.Length != 0:
                errors.Add("values set must be empty for exists and does not exist");
                break;
            case "gt" or "lt":
                if (values.Length != 1)
                {
                    errors.Add("for 'Gt', 'Lt' operators, exactly one value is required");
                }
                foreach (var v in values)
                {
                    if (!IsInt64(v))
                    {
                        errors.Add($"values: Invalid value: \"{v}\": for 'Gt', 'Lt' operators, the value must be an integer");
                    }
                }
                break;
            default:
                break;
        }
        foreach (var v in values)
        {
            if (v.Length > 63 || !LabelValue().IsMatch(v))
            {
                errors.Add($"values[{key}]: Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character");
            }
        }
        if (errors.Count > 0)
        {
            error = errors.Count == 1 ? errors[0] : "[" + string.Join(", ", errors) + "]";
            return null;
        }
        error = "";
        return new SelectorRequirement(key, op, values);
    }

    // strconv.ParseInt(v, 10, 64): an optional sign and decimal digits, within int64.
    private static bool IsInt64(string v)
    {
        var digits = v.AsSpan(v.Length > 0 && v[0] is '+' or '-' ? 1 : 0);
        foreach (var c in digits)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }
        return digits.Length > 0 && long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _);
    }

    /// <summary>content.IsLabelKey: [DNS-1123 subdomain "/"] name, the name at most 63 characters; null when valid.</summary>
    public static string? LabelKeyError(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var parts = key.Split('/');
        string name;
        var errors = new List<string>();
        switch (parts.Length)
        {
            case 1:
                name = parts[0];
                break;
            case 2:
                name = parts[1];
                if (parts[0].Length == 0)
                {
                    errors.Add("prefix part must be non-empty");
                }
                else if (parts[0].Length > 253 || !Dns1123Subdomain().IsMatch(parts[0]))
                {
                    errors.Add("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character");
                }
                break;
            default:
                return $"Invalid value: \"{key}\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
        }
        if (name.Length == 0)
        {
            errors.Add("name part must be non-empty");
        }
        else if (name.Length > 63)
        {
            errors.Add("name part must be no more than 63 characters");
        }
        if (!LabelName().IsMatch(name))
        {
            errors.Add("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character");
        }
        return errors.Count == 0 ? null : $"Invalid value: \"{key}\": " + string.Join("; ", errors);
    }

    [GeneratedRegex(@"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\z", RegexOptions.CultureInvariant)]
    private static partial Regex LabelName();

    [GeneratedRegex(@"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\z", RegexOptions.CultureInvariant)]
    private static partial Regex LabelValue();

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\z", RegexOptions.CultureInvariant)]
    private static partial Regex Dns1123Subdomain();
}

/// <summary>Go's string order: the bytes of the UTF-8 encoding, which is the order of code points.</summary>
internal sealed class Utf8Order : IComparer<string>
{
    public static Utf8Order Instance { get; } = new();

    public int Compare(string? x, string? y)
    {
        if (x is null || y is null)
        {
            return x is null ? (y is null ? 0 : -1) : 1;
        }
        var a = x.EnumerateRunes();
        var b = y.EnumerateRunes();
        while (true)
        {
            var hasA = a.MoveNext();
            var hasB = b.MoveNext();
            if (!hasA || !hasB)
            {
                return hasA ? 1 : hasB ? -1 : 0;
            }
            var c = a.Current.Value.CompareTo(b.Current.Value);
            if (c != 0)
            {
                return c;
            }
        }
    }
}
