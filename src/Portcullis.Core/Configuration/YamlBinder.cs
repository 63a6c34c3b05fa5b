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
            if (node is YamlScalarNode { Value: { } t } && Durations.TryParse(t, out var parsed))
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

/// <summary>Go-style durations (<c>30s</c>, <c>15m</c>, <c>1h30m</c>, <c>500ms</c>) as kube-apiserver flags write them.</summary>
public static class Durations
{
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        var s = text.Trim();
        if (s.Length == 0)
        {
            return false;
        }
        if (s == "0")
        {
            return true;
        }
        var total = 0.0;
        var i = 0;
        while (i < s.Length)
        {
            var start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
            {
                i++;
            }
            if (start == i || !double.TryParse(s.AsSpan(start, i - start), NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
            {
                return false;
            }
            var unitStart = i;
            while (i < s.Length && char.IsAsciiLetter(s[i]))
            {
                i++;
            }
            var unit = s[unitStart..i];
            double? ms = unit switch
            {
                "ms" => number,
                "s" => number * 1000,
                "m" => number * 60_000,
                "h" => number * 3_600_000,
                "d" => number * 86_400_000,
                _ => null,
            };
            if (ms is null)
            {
                return false;
            }
            total += ms.Value;
        }
        value = TimeSpan.FromMilliseconds(total);
        return true;
    }

    public static string Format(TimeSpan t) =>
        t.TotalHours >= 1 && t.Minutes == 0 && t.Seconds == 0 ? $"{(int)t.TotalHours}h"
        : t.TotalMinutes >= 1 && t.Seconds == 0 ? $"{(int)t.TotalMinutes}m"
        : $"{t.TotalSeconds:0.###}s";
}
