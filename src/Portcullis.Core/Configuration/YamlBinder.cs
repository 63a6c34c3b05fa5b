using System.Collections;
using System.Globalization;
using System.Reflection;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Configuration;

/// <summary>
/// Binds a YAML node tree onto plain classes by camelCase property name, collecting every error
/// (unknown field, wrong type, bad value) with file, line and field path instead of stopping at the first.
/// </summary>
public sealed class YamlBinder
{
    private readonly string _file;
    private readonly List<ConfigError> _errors;

    public YamlBinder(string file, List<ConfigError> errors)
    {
        _file = file;
        _errors = errors;
    }

    /// <summary>Parses <paramref name="text"/> into its documents; a syntax error is recorded and yields none.</summary>
    public IReadOnlyList<YamlDocument> Parse(string text)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException ex)
        {
            _errors.Add(new ConfigError(_file, (int)ex.Start.Line, "(yaml)", FirstLine(ex.InnerException?.Message ?? ex.Message)));
            return [];
        }
        return [.. stream.Documents];
    }

    /// <summary>
    /// Best-effort line of a field path like <c>jwt[0].claimMappings.username</c> in a YAML tree: the line of the deepest
    /// part of the path that is written (the root's line at worst).
    /// </summary>
    public static int LineOf(YamlNode root, string field)
    {
        var node = root;
        foreach (var part in field.Split('.'))
        {
            var name = part;
            int? index = null;
            var bracket = part.IndexOf('[', StringComparison.Ordinal);
            if (bracket >= 0)
            {
                name = part[..bracket];
                index = int.Parse(part[(bracket + 1)..^1], CultureInfo.InvariantCulture);
            }
            if (node is not YamlMappingNode map || !map.Children.TryGetValue(new YamlScalarNode(name), out var child))
            {
                break;
            }
            node = child;
            if (index is { } i)
            {
                if (node is not YamlSequenceNode seq || i >= seq.Children.Count)
                {
                    break;
                }
                node = seq.Children[i];
            }
        }
        return (int)node.Start.Line;
    }

    /// <summary>
    /// Parses a file that must hold exactly one YAML document and returns its root; null (with the error recorded) on a
    /// syntax error or any other number of documents.
    /// </summary>
    public YamlNode? ParseOne(string text)
    {
        var before = _errors.Count;
        var docs = Parse(text);
        if (_errors.Count > before)
        {
            return null;
        }
        if (docs.Count != 1)
        {
            _errors.Add(new ConfigError(_file, 0, "(document)", $"expected exactly one YAML document, found {docs.Count}"));
            return null;
        }
        return docs[0].RootNode;
    }

    public T Bind<T>(YamlNode node, string path) where T : new()
    {
        var result = new T();
        BindObject(result, node, path);
        return result;
    }

    public void Error(YamlNode? node, string field, string message) =>
        _errors.Add(new ConfigError(_file, node is null ? 0 : (int)node.Start.Line, field, message));

    private void BindObject(object target, YamlNode node, string path)
    {
        if (node is YamlScalarNode { Value: null or "" or "~" or "null" } && node.Tag.IsEmpty)
        {
            return; // an empty section keeps its defaults
        }
        if (node is not YamlMappingNode map)
        {
            Error(node, Display(path), "must be a mapping (key: value)");
            return;
        }
        var properties = PropertiesOf(target.GetType());
        foreach (var (keyNode, valueNode) in map.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value ?? "";
            var field = path.Length == 0 ? key : path + "." + key;
            if (!properties.TryGetValue(key, out var property))
            {
                Error(keyNode, field, $"unknown field \"{key}\"" + Suggest(key, properties.Keys));
                continue;
            }
            if (TryConvert(valueNode, property.PropertyType, field, out var value, property.GetValue(target)))
            {
                property.SetValue(target, value);
            }
        }
    }

    private bool TryConvert(YamlNode node, Type type, string field, out object? value, object? existing = null)
    {
        value = null;
        var underlying = Nullable.GetUnderlyingType(type);
        if (underlying is not null)
        {
            if (IsNull(node))
            {
                return true;
            }
            type = underlying;
        }

        if (type == typeof(string))
        {
            if (node is YamlScalarNode s)
            {
                value = IsNull(node) ? "" : s.Value ?? "";
                return true;
            }
            Error(node, field, "must be a string");
            return false;
        }
        if (type == typeof(bool))
        {
            if (node is YamlScalarNode { Value: { } b } && bool.TryParse(b, out var parsed))
            {
                value = parsed;
                return true;
            }
            Error(node, field, "must be true or false");
            return false;
        }
        if (type == typeof(int))
        {
            if (node is YamlScalarNode { Value: { } i } && int.TryParse(i, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed))
            {
                value = parsed;
                return true;
            }
            Error(node, field, "must be a whole number");
            return false;
        }
        if (type == typeof(double))
        {
            if (node is YamlScalarNode { Value: { } d } && double.TryParse(d, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed))
            {
                value = parsed;
                return true;
            }
            Error(node, field, "must be a number");
            return false;
        }
        if (type == typeof(TimeSpan))
        {
            if (node is YamlScalarNode { Value: { } t } && GoDuration.TryParse(t, out var parsed))
            {
                value = parsed;
                return true;
            }
            Error(node, field, "must be a duration such as 30s, 15m, 24h or 1h30m");
            return false;
        }
        if (type == typeof(DateTimeOffset))
        {
            if (node is YamlScalarNode { Value: { } t } && DateTimeOffset.TryParse(t, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
            {
                value = parsed;
                return true;
            }
            Error(node, field, "must be an RFC 3339 time such as 2026-12-31T00:00:00Z");
            return false;
        }
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>))
        {
            var itemType = type.GetGenericArguments()[0];
            var list = (IList)Activator.CreateInstance(type)!;
            value = list;
            if (IsNull(node))
            {
                return true;
            }
            if (node is not YamlSequenceNode seq)
            {
                Error(node, field, "must be a list");
                return false;
            }
            var ok = true;
            var index = 0;
            foreach (var item in seq.Children)
            {
                if (TryConvert(item, itemType, $"{field}[{index}]", out var converted))
                {
                    list.Add(converted);
                }
                else
                {
                    ok = false;
                }
                index++;
            }
            return ok;
        }
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>) && type.GetGenericArguments()[0] == typeof(string))
        {
            var dict = (IDictionary)Activator.CreateInstance(type)!;
            value = dict;
            if (IsNull(node))
            {
                return true;
            }
            if (node is not YamlMappingNode map)
            {
                Error(node, field, "must be a mapping");
                return false;
            }
            var ok = true;
            foreach (var (k, v) in map.Children)
            {
                var key = (k as YamlScalarNode)?.Value ?? "";
                if (TryConvert(v, type.GetGenericArguments()[1], field + "." + key, out var converted))
                {
                    dict[key] = converted;
                }
                else
                {
                    ok = false;
                }
            }
            return ok;
        }
        if (type.IsClass)
        {
            var target = existing ?? Activator.CreateInstance(type)!;
            BindObject(target, node, field);
            value = target;
            return true;
        }
        Error(node, field, $"unsupported type {type.Name}");
        return false;
    }

    private static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: not (ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted) } s && (s.Value is null or "" or "~" or "null");

    private static readonly Dictionary<Type, Dictionary<string, PropertyInfo>> Cache = [];

    private static Dictionary<string, PropertyInfo> PropertiesOf(Type type)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(type, out var map))
            {
                map = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                    .Where(p => p.CanWrite && p.GetCustomAttribute<NotInYamlAttribute>() is null)
                    .ToDictionary(p => char.ToLowerInvariant(p.Name[0]) + p.Name[1..], StringComparer.Ordinal);
                Cache[type] = map;
            }
            return map;
        }
    }

    private static string Suggest(string key, IEnumerable<string> known)
    {
        var match = known
            .Select(k => (Name: k, Distance: EditDistance(k.ToLowerInvariant(), key.ToLowerInvariant())))
            .Where(k => k.Distance <= 2)
            .OrderBy(k => k.Distance)
            .FirstOrDefault().Name;
        return match is null ? "" : $" (did you mean \"{match}\"?)";
    }

    private static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }
        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }

    private static string Display(string path) => path.Length == 0 ? "(document)" : path;

    private static string FirstLine(string s)
    {
        var i = s.IndexOf('\n', StringComparison.Ordinal);
        return i < 0 ? s : s[..i];
    }
}

/// <summary>
/// Go's <c>time.Duration</c> text, the one parser for every duration the project reads (configuration fields and
/// kube-apiserver flags in <c>portcullis check</c>): an optional sign, then one or more decimal numbers each with a unit
/// <c>ns</c>, <c>us</c>, <c>µs</c>, <c>μs</c>, <c>ms</c>, <c>s</c>, <c>m</c>, <c>h</c> (<c>1h30m</c>, <c>1.5s</c>,
/// <c>300ms</c>), or <c>0</c> alone, exactly as <c>time.ParseDuration</c> accepts them. There is no <c>d</c>: Go has none,
/// so a flag or field written with one would mean nothing to kube-apiserver either.
/// </summary>
public static class GoDuration
{
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        var s = text.Trim();
        var negative = false;
        if (s.Length > 0 && s[0] is '-' or '+')
        {
            negative = s[0] == '-';
            s = s[1..];
        }
        if (s == "0")
        {
            return true;
        }
        if (s.Length == 0)
        {
            return false;
        }
        var totalTicks = 0.0;
        var i = 0;
        while (i < s.Length)
        {
            var start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
            {
                i++;
            }
            var number = s.AsSpan(start, i - start);
            // Go accepts "1.", ".5" but not "." alone; one dot at most.
            if (number.Length == 0 || number.SequenceEqual(".") || number.Count('.') > 1
                || !double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount))
            {
                return false;
            }
            var unitStart = i;
            while (i < s.Length && !char.IsAsciiDigit(s[i]) && s[i] != '.')
            {
                i++;
            }
            double? ticksPerUnit = s[unitStart..i] switch
            {
                "ns" => 0.01,
                "us" or "\u00B5s" or "\u03BCs" => 10,
                "ms" => TimeSpan.TicksPerMillisecond,
                "s" => TimeSpan.TicksPerSecond,
                "m" => TimeSpan.TicksPerMinute,
                "h" => TimeSpan.TicksPerHour,
                _ => null,
            };
            if (ticksPerUnit is null)
            {
                return false;
            }
            totalTicks += amount * ticksPerUnit.Value;
        }
        if (totalTicks > TimeSpan.MaxValue.Ticks)
        {
            return false;
        }
        value = TimeSpan.FromTicks((long)Math.Round(totalTicks) * (negative ? -1 : 1));
        return true;
    }

    /// <summary>A duration as a short Go-style string (<c>2h</c>, <c>15m</c>, <c>1.5s</c>) for messages.</summary>
    public static string Format(TimeSpan t) =>
        t.TotalHours >= 1 && t.Minutes == 0 && t.Seconds == 0 ? $"{(int)t.TotalHours}h"
        : t.TotalMinutes >= 1 && t.Seconds == 0 ? $"{(int)t.TotalMinutes}m"
        : $"{t.TotalSeconds:0.###}s";
}
