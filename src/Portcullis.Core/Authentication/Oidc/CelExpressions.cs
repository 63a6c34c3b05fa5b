using System.Collections;
using System.Text.Json;
using Cel;

namespace Portcullis.Authentication.Oidc;

/// <summary>
/// The CEL subset that AuthenticationConfiguration files use, evaluated by the <c>Cel</c> package: claim access,
/// <c>has()</c>, string concatenation, <c>split</c>, list <c>map</c>/<c>filter</c>/<c>all</c>/<c>exists</c>, comparisons.
/// The package only finds an unknown function when it evaluates it, so every call in an expression is checked against
/// <see cref="SupportedFunctions"/> at load: a file using anything else is refused naming the expression, never ignored.
/// </summary>
public sealed class CelExpression
{
    /// <summary>Functions and macros the evaluator implements (the Cel package's built-ins plus split/lowerAscii/upperAscii/trim/join registered here).</summary>
    public static readonly IReadOnlySet<string> SupportedFunctions = new HashSet<string>(StringComparer.Ordinal)
    {
        "has", "size", "startsWith", "endsWith", "contains", "matches", "map", "filter", "all", "exists", "exists_one",
        "int", "uint", "double", "string", "bool", "type", "split", "lowerAscii", "upperAscii", "trim", "join",
    };

    private static readonly CelEnvironment Environment = CreateEnvironment();

    private readonly CelProgramDelegate _program;

    private CelExpression(string source, CelProgramDelegate program)
    {
        Source = source;
        _program = program;
    }

    public string Source { get; }

    /// <summary>Compiles <paramref name="source"/>; an unsupported construct or a syntax error is a <see cref="FormatException"/> naming it.</summary>
    public static CelExpression Compile(string source)
    {
        if (string.IsNullOrWhiteSpace(source))
        {
            throw new FormatException("expression is empty");
        }
        foreach (var problem in Unsupported(source))
        {
            throw new FormatException($"expression '{source}' is not supported by this gateway: {problem}");
        }
        try
        {
            return new CelExpression(source, Environment.Compile(source));
        }
        catch (Exception ex) when (ex is CelException or InvalidOperationException or ArgumentException)
        {
            throw new FormatException($"expression '{source}' does not compile: {ex.Message}", ex);
        }
    }

    /// <summary>Evaluates with the given variables (<c>claims</c> or <c>user</c>); errors become <see cref="CelEvaluationException"/>.</summary>
    public object? Evaluate(IDictionary<string, object?> variables)
    {
        object? result;
        try
        {
            result = _program(variables!);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new CelEvaluationException($"expression '{Source}' resulted in error: {Describe(ex)}", ex);
        }
        if (result is not null && result.GetType().Namespace == "Cel.Internal")
        {
            // The package returns marker objects (e.g. CelNoSuchField) for a missing key instead of throwing.
            throw new CelEvaluationException($"expression '{Source}' resulted in error: no such key");
        }
        return result;
    }

    public bool EvaluateBool(IDictionary<string, object?> variables) => Evaluate(variables) switch
    {
        bool b => b,
        var other => throw new CelEvaluationException($"expression '{Source}' must return a bool, got {TypeName(other)}"),
    };

    /// <summary>A string result, or a list of strings; null/empty results are empty lists.</summary>
    public IReadOnlyList<string> EvaluateStrings(IDictionary<string, object?> variables)
    {
        switch (Evaluate(variables))
        {
            case null:
                return [];
            case string s:
                return s.Length == 0 ? [] : [s];
            case IEnumerable list:
                var result = new List<string>();
                foreach (var item in list)
                {
                    if (item is not string s)
                    {
                        throw new CelEvaluationException($"expression '{Source}' must return a string or a list of strings, got a list holding {TypeName(item)}");
                    }
                    result.Add(s);
                }
                return result;
            case var other:
                throw new CelEvaluationException($"expression '{Source}' must return a string or a list of strings, got {TypeName(other)}");
        }
    }

    public string EvaluateString(IDictionary<string, object?> variables) => Evaluate(variables) switch
    {
        string s => s,
        var other => throw new CelEvaluationException($"expression '{Source}' must return a string, got {TypeName(other)}"),
    };

    /// <summary>Converts JSON claims to the value model the evaluator reads (maps, lists, strings, int64/double, bools).</summary>
    public static object? FromJson(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => element.EnumerateObject().ToDictionary(p => p.Name, p => FromJson(p.Value), StringComparer.Ordinal),
        JsonValueKind.Array => element.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.String => element.GetString(),
        JsonValueKind.Number => element.TryGetInt64(out var l) ? l : element.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    /// <summary>kube-apiserver's wording for a missing claim ("no such key: hd"); other errors as the package says them.</summary>
    private static string Describe(Exception ex)
    {
        if (ex is CelNoSuchFieldException)
        {
            var match = System.Text.RegularExpressions.Regex.Match(ex.Message, "field '([^']*)'");
            return match.Success ? "no such key: " + match.Groups[1].Value : "no such key";
        }
        return ex.Message;
    }

    private static string TypeName(object? o) => o switch
    {
        null => "null",
        string => "string",
        bool => "bool",
        long or int => "int",
        double => "double",
        IDictionary => "map",
        IEnumerable => "list",
        _ => o.GetType().Name,
    };

    /// <summary>Finds calls to functions outside the supported set, and CEL syntax the package lacks (optional <c>.?</c>/<c>[?</c>).</summary>
    internal static IEnumerable<string> Unsupported(string source)
    {
        var i = 0;
        while (i < source.Length)
        {
            var c = source[i];
            if (c is '"' or '\'')
            {
                i = SkipString(source, i);
                continue;
            }
            if ((c == '.' && i + 1 < source.Length && source[i + 1] == '?') || (c == '[' && i + 1 < source.Length && source[i + 1] == '?'))
            {
                yield return "optional field selection (.? / [?) is not supported";
                i += 2;
                continue;
            }
            if (char.IsAsciiLetter(c) || c == '_')
            {
                var start = i;
                while (i < source.Length && (char.IsAsciiLetterOrDigit(source[i]) || source[i] == '_'))
                {
                    i++;
                }
                var name = source[start..i];
                var j = i;
                while (j < source.Length && char.IsWhiteSpace(source[j]))
                {
                    j++;
                }
                if (j < source.Length && source[j] == '(' && !SupportedFunctions.Contains(name))
                {
                    yield return $"function {name}() is not supported (supported: {string.Join(", ", SupportedFunctions.Order(StringComparer.Ordinal))})";
                }
                continue;
            }
            i++;
        }
    }

    private static int SkipString(string s, int i)
    {
        var quote = s[i];
        var triple = i + 2 < s.Length && s[i + 1] == quote && s[i + 2] == quote;
        i += triple ? 3 : 1;
        while (i < s.Length)
        {
            if (s[i] == '\\')
            {
                i += 2;
                continue;
            }
            if (s[i] == quote)
            {
                if (!triple)
                {
                    return i + 1;
                }
                if (i + 2 < s.Length && s[i + 1] == quote && s[i + 2] == quote)
                {
                    return i + 3;
                }
            }
            i++;
        }
        return i;
    }

    private static CelEnvironment CreateEnvironment()
    {
        var env = new CelEnvironment(null!, null!);
        env.RegisterFunction("split", [typeof(string), typeof(string)],
            args => ((string)args[0]!).Split((string)args[1]!).Cast<object?>().ToList());
        env.RegisterFunction("lowerAscii", [typeof(string)], args => ((string)args[0]!).ToLowerInvariant());
        env.RegisterFunction("upperAscii", [typeof(string)], args => ((string)args[0]!).ToUpperInvariant());
        env.RegisterFunction("trim", [typeof(string)], args => ((string)args[0]!).Trim());
        env.RegisterFunction("join", [typeof(List<object?>), typeof(string)],
            args => string.Join((string)args[1]!, ((IEnumerable)args[0]!).Cast<object?>()));
        return env;
    }
}

/// <summary>A CEL expression failed at evaluation (missing claim, wrong type).</summary>
public sealed class CelEvaluationException : Exception
{
    public CelEvaluationException(string message) : base(message) { }
    public CelEvaluationException(string message, Exception inner) : base(message, inner) { }
    public CelEvaluationException() { }
}
