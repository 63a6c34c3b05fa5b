using System.Text;
using System.Text.RegularExpressions;

namespace Portcullis.Check;

/// <summary>
/// kube-apiserver's command line as flags, keeping "absent" apart from "set to the default value"
/// (CIS 1.2.1, 1.2.15–1.2.19 and 1.2.30 fail on absence even when the default would pass).
/// </summary>
public sealed partial class ApiServerFlags
{
    // pflag boolean flags: "--name" alone means true and never consumes the next argument.
    private static readonly HashSet<string> BooleanFlags = new(StringComparer.Ordinal)
    {
        "anonymous-auth", "profiling", "contention-profiling", "service-account-lookup",
        "service-account-extend-token-expiration", "enable-priority-and-fairness", "kubelet-https",
        "allow-privileged", "enable-bootstrap-token-auth", "audit-log-compress", "enable-aggregator-routing",
        "enable-garbage-collector", "enable-logs-handler", "authorization-always-allow-paths-enabled",
        "audit-log-truncate-enabled", "audit-webhook-truncate-enabled", "oidc-skip-issuer-check", "v",
    };

    private readonly List<(string Name, string Value)> _entries;

    private ApiServerFlags(List<(string Name, string Value)> entries, IReadOnlyList<string> notes)
    {
        _entries = entries;
        Notes = notes;
    }

    /// <summary>Remarks made while parsing (e.g. two flags found in one argument).</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>Every flag in command-line order (name without dashes, value as given).</summary>
    public IReadOnlyList<(string Name, string Value)> Entries => _entries;

    public bool IsSet(string name) => _entries.Exists(e => e.Name == name);

    /// <summary>The last value given for the flag (pflag: last wins), or null when the flag is absent.</summary>
    public string? Get(string name)
    {
        for (var i = _entries.Count - 1; i >= 0; i--)
        {
            if (_entries[i].Name == name)
            {
                return _entries[i].Value;
            }
        }
        return null;
    }

    /// <summary>True when the flag is present with a non-empty value.</summary>
    public bool HasValue(string name) => !string.IsNullOrWhiteSpace(Get(name));

    /// <summary>All comma-separated items of every occurrence (slice flags append).</summary>
    public IReadOnlyList<string> GetList(string name) =>
        _entries.Where(e => e.Name == name)
            .SelectMany(e => e.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .ToList();

    /// <summary>Every value of a repeatable flag (e.g. <c>--service-account-key-file</c>).</summary>
    public IReadOnlyList<string> GetAll(string name) => _entries.Where(e => e.Name == name).Select(e => e.Value).ToList();

    /// <summary>Parses a boolean flag value as pflag does; null when absent or not a boolean.</summary>
    public bool? GetBool(string name)
    {
        var value = Get(name);
        if (value is null)
        {
            return null;
        }
        return value.Trim().ToLowerInvariant() switch
        {
            "" or "true" or "1" or "t" => true,
            "false" or "0" or "f" => false,
            _ => null,
        };
    }

    /// <summary>Renders the flag as evidence: <c>--name=value</c>, or <c>--name (absent)</c>.</summary>
    public string Show(string name)
    {
        var value = Get(name);
        return value is null ? $"--{name} not set" : $"--{name}={value}";
    }

    /// <summary>Builds the flags from the arguments of a container or process (program name and non-flags skipped).</summary>
    public static ApiServerFlags FromArguments(IEnumerable<string> arguments)
    {
        var notes = new List<string>();
        var tokens = new List<string>();
        foreach (var argument in arguments)
        {
            // A manifest entry holding several flags ("--a=x --b=y") reaches kube-apiserver as one argument when no
            // shell is involved, but tools that produced it (and people reading it) mean two flags; split and say so.
            if (!argument.TrimStart().StartsWith('-') && argument.Contains("kube-apiserver ", StringComparison.Ordinal) && EmbeddedFlag().IsMatch(argument))
            {
                // command: [sh, -c, "exec kube-apiserver --a=b ..."]: the shell splits the script.
                var words = SplitShellWords(argument);
                var binary = words.FindIndex(w => w.EndsWith("kube-apiserver", StringComparison.Ordinal));
                notes.Add("kube-apiserver is started by a shell script; its flags were read from the script");
                tokens.AddRange(words.Skip(binary + 1));
            }
            else if (EmbeddedFlag().IsMatch(argument) && argument.TrimStart().StartsWith("--", StringComparison.Ordinal))
            {
                var parts = argument.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                notes.Add($"argument \"{argument}\" holds {parts.Length} space-separated flags; read as separate flags");
                tokens.AddRange(parts);
            }
            else
            {
                tokens.Add(argument);
            }
        }

        var entries = new List<(string, string)>();
        for (var i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i].Trim();
            if (!token.StartsWith('-') || token == "-" || token == "--")
            {
                continue;
            }
            var body = token.TrimStart('-');
            var eq = body.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                entries.Add((body[..eq], Unquote(body[(eq + 1)..])));
                continue;
            }
            if (!BooleanFlags.Contains(body) && i + 1 < tokens.Count && !tokens[i + 1].StartsWith('-'))
            {
                entries.Add((body, Unquote(tokens[i + 1])));
                i++;
                continue;
            }
            entries.Add((body, BooleanFlags.Contains(body) ? "true" : ""));
        }
        foreach (var group in entries.GroupBy(e => e.Item1).Where(g => !RepeatableFlags.Contains(g.Key) && g.Select(e => e.Item2).Distinct().Count() > 1))
        {
            notes.Add($"--{group.Key} is given {group.Count()} times with different values ({string.Join(", ", group.Select(e => e.Item2))}); kube-apiserver uses the last");
        }
        return new ApiServerFlags(entries, notes);
    }

    // Slice flags that kube-apiserver accumulates rather than overrides.
    private static readonly HashSet<string> RepeatableFlags = new(StringComparer.Ordinal)
    {
        "service-account-key-file", "service-account-issuer", "api-audiences", "oidc-required-claim", "tls-sni-cert-key",
    };

    /// <summary>Parses a command line as a shell would split it (single and double quotes, backslash escapes).</summary>
    public static ApiServerFlags FromCommandLine(string commandLine)
    {
        var words = SplitShellWords(commandLine);
        // From `ps -ef`: skip the columns before the binary.
        var start = words.FindIndex(w => !w.StartsWith('-') && (w.EndsWith("kube-apiserver", StringComparison.Ordinal) || w.EndsWith("/apiserver", StringComparison.Ordinal)));
        return FromArguments(start >= 0 ? words.Skip(start + 1) : words);
    }

    internal static List<string> SplitShellWords(string text)
    {
        var words = new List<string>();
        var current = new StringBuilder();
        var inWord = false;
        char quote = '\0';
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quote != '\0')
            {
                if (c == quote)
                {
                    quote = '\0';
                }
                else if (c == '\\' && quote == '"' && i + 1 < text.Length)
                {
                    current.Append(text[++i]);
                }
                else
                {
                    current.Append(c);
                }
                continue;
            }
            if (c is '"' or '\'')
            {
                quote = c;
                inWord = true;
            }
            else if (c == '\\' && i + 1 < text.Length)
            {
                var next = text[++i];
                if (next != '\n')
                {
                    current.Append(next);
                    inWord = true;
                }
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    words.Add(current.ToString());
                    current.Clear();
                    inWord = false;
                }
            }
            else
            {
                current.Append(c);
                inWord = true;
            }
        }
        if (inWord)
        {
            words.Add(current.ToString());
        }
        return words;
    }

    private static string Unquote(string value)
    {
        var v = value.Trim();
        return v.Length >= 2 && (v[0] == '"' || v[0] == '\'') && v[^1] == v[0] ? v[1..^1] : v;
    }

    [GeneratedRegex(@"\s+--[a-z]")]
    private static partial Regex EmbeddedFlag();
}
