using System.Globalization;
using Portcullis.Configuration;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Admission.RateLimiting;

/// <summary>One limit of an EventRateLimit <c>Configuration</c> (<c>eventratelimit.admission.k8s.io/v1alpha1</c>).</summary>
public sealed record EventRateLimitLimit(string Type, int Qps, int Burst, int CacheSize);

/// <summary>A limit that refused an event: its type and the key (a namespace, a user name, a source and object; "" for Server).</summary>
public readonly record struct EventRateLimitFailure(string Type, string Key);

/// <summary>
/// kube-apiserver's EventRateLimit admission plugin: one token bucket per key of each limit (Server: one bucket; Namespace:
/// the request's namespace; User: the effective user's name; SourceAndObject: the event's source and involved object),
/// LRU-bounded by <c>cacheSize</c> (4096 when 0). Every limit takes a token even after one has refused, as kube-apiserver
/// evaluates every limit enforcer.
/// </summary>
public sealed class EventRateLimiter
{
    public const string Server = "Server";
    public const string Namespace = "Namespace";
    public const string User = "User";
    public const string SourceAndObject = "SourceAndObject";
    /// <summary>kube-apiserver's default cache size (limitenforcer.go <c>defaultCacheSize</c>).</summary>
    public const int DefaultCacheSize = 4096;

    private readonly (EventRateLimitLimit Limit, BucketCache Buckets)[] _limits;

    public EventRateLimiter(IReadOnlyList<EventRateLimitLimit> limits, TimeProvider time)
    {
        Limits = limits;
        _limits = [.. limits.Select(l => (l, new BucketCache(l.Qps, l.Burst, l.Type == Server ? 1 : l.CacheSize == 0 ? DefaultCacheSize : l.CacheSize, time)))];
    }

    public IReadOnlyList<EventRateLimitLimit> Limits { get; }

    /// <summary>True when a limit keys on the event's source and object (the request body must be read).</summary>
    public bool NeedsSourceAndObject => Limits.Any(l => l.Type == SourceAndObject);

    /// <summary>Takes a token from every limit; the limits that had none (empty: admitted).</summary>
    public List<EventRateLimitFailure> Admit(string @namespace, string user, string sourceAndObject)
    {
        List<EventRateLimitFailure>? failures = null;
        foreach (var (limit, buckets) in _limits)
        {
            var key = limit.Type switch
            {
                Namespace => @namespace,
                User => user,
                SourceAndObject => sourceAndObject,
                _ => "",
            };
            if (!buckets.TryTake(key, out _))
            {
                (failures ??= []).Add(new EventRateLimitFailure(limit.Type, key));
            }
        }
        return failures ?? [];
    }

    /// <summary>
    /// The message of kube-apiserver's 429: <c>Too many requests: limit reached on type Namespace for key default</c>;
    /// several limits: <c>Too many requests: [limit reached on type Server for key , limit reached on type User for key bob]</c>
    /// (duplicates dropped).
    /// </summary>
    public static string Message(IReadOnlyList<EventRateLimitFailure> failures)
    {
        var parts = failures.Select(f => $"limit reached on type {f.Type} for key {f.Key}").Distinct(StringComparer.Ordinal).ToList();
        return parts.Count == 1 ? $"Too many requests: {parts[0]}" : $"Too many requests: [{string.Join(", ", parts)}]";
    }

    /// <summary>
    /// The SourceAndObject key of an event body as kube-apiserver decodes it, by its Content-Type: Kubernetes protobuf
    /// (<c>application/vnd.kubernetes.protobuf</c>, what kubelet and the controllers send), YAML
    /// (<c>application/yaml</c>), JSON otherwise. A body that does not decode as such an object gives the empty key.
    /// </summary>
    public static string SourceAndObjectKey(ReadOnlyMemory<byte> body, string? contentType)
    {
        var value = contentType.AsSpan();
        var semicolon = value.IndexOf(';');
        var mediaType = (semicolon < 0 ? value : value[..semicolon]).Trim();
        if (mediaType.Equals("application/vnd.kubernetes.protobuf", StringComparison.OrdinalIgnoreCase))
        {
            return ProtobufSourceAndObjectKey(body);
        }
        return mediaType.Equals("application/yaml", StringComparison.OrdinalIgnoreCase) ? YamlSourceAndObjectKey(body) : SourceAndObjectKey(body);
    }

    /// <summary>
    /// The key of a protobuf Event: <c>"k8s\0"</c> + runtime.Unknown {2 raw}, raw the core/v1 Event {2 involvedObject
    /// {1 kind, 2 namespace, 3 name, 4 uid, 5 apiVersion}, 5 source {1 component, 2 host}} (k8s.io/api core/v1
    /// generated.proto). As Go's generated code, a repeated message is merged and the last value of a field wins.
    /// </summary>
    private static string ProtobufSourceAndObjectKey(ReadOnlyMemory<byte> body)
    {
        try
        {
            if (!body.Span.StartsWith(Portcullis.Http.ProtobufWire.KubernetesMagic))
            {
                return "";
            }
            ReadOnlyMemory<byte>? raw = null;
            var encoding = "";
            foreach (var (field, value) in Portcullis.Http.ProtobufWire.Fields(body[Portcullis.Http.ProtobufWire.KubernetesMagic.Length..]))
            {
                if (field == 2)
                {
                    raw = value;
                }
                else if (field == 3)
                {
                    encoding = Portcullis.Http.ProtobufWire.Utf8(value);
                }
            }
            if (raw is null || encoding.Length > 0)
            {
                return "";
            }
            var parts = new string[7]; // component, host, kind, namespace, name, uid, apiVersion
            foreach (var (field, message) in Portcullis.Http.ProtobufWire.Fields(raw.Value))
            {
                var (first, count) = field switch { 5 => (0, 2), 2 => (2, 5), _ => (-1, 0) };
                if (first < 0)
                {
                    continue;
                }
                foreach (var (f, v) in Portcullis.Http.ProtobufWire.Fields(message))
                {
                    if (f >= 1 && f <= count)
                    {
                        parts[first + f - 1] = Portcullis.Http.ProtobufWire.Utf8(v);
                    }
                }
            }
            return string.Concat(parts);
        }
        catch (FormatException)
        {
            return "";
        }
    }

    private static string YamlSourceAndObjectKey(ReadOnlyMemory<byte> body)
    {
        try
        {
            var stream = new YamlStream();
            using (var reader = new StringReader(System.Text.Encoding.UTF8.GetString(body.Span)))
            {
                stream.Load(new DepthLimitedParser(new YamlDotNet.Core.Parser(reader)));
            }
            if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
            {
                return "";
            }
            return string.Concat(
                Get(root, "source", "component"), Get(root, "source", "host"),
                Get(root, "involvedObject", "kind"), Get(root, "involvedObject", "namespace"), Get(root, "involvedObject", "name"),
                Get(root, "involvedObject", "uid"), Get(root, "involvedObject", "apiVersion"));
        }
        catch (Exception ex) when (ex is YamlDotNet.Core.YamlException or InvalidOperationException or ArgumentException or FormatException)
        {
            return ""; // YamlDotNet's scanner throws InvalidOperationException on some malformed plain scalars
        }

        static string Get(YamlMappingNode root, string parent, string name) =>
            root.Children.TryGetValue(new YamlScalarNode(parent), out var p) && p is YamlMappingNode map &&
            map.Children.TryGetValue(new YamlScalarNode(name), out var v) && v is YamlScalarNode { Value: { } text } ? text : "";
    }

    /// <summary>
    /// The SourceAndObject key of an event: <c>source.component</c>, <c>source.host</c>,
    /// <c>involvedObject.{kind,namespace,name,uid,apiVersion}</c> joined without a separator, as kube-apiserver makes it.
    /// A body that is not a JSON object (protobuf, malformed) gives the empty key, as kube-apiserver's for a non-Event.
    /// </summary>
    public static string SourceAndObjectKey(ReadOnlyMemory<byte> json)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object)
            {
                return "";
            }
            var root = doc.RootElement;
            return string.Concat(
                Get(root, "source", "component"), Get(root, "source", "host"),
                Get(root, "involvedObject", "kind"), Get(root, "involvedObject", "namespace"), Get(root, "involvedObject", "name"),
                Get(root, "involvedObject", "uid"), Get(root, "involvedObject", "apiVersion"));
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or InvalidOperationException)
        {
            return ""; // InvalidOperationException: a string that is not UTF-8 (JsonDocument validates it only when read)
        }

        static string Get(System.Text.Json.JsonElement root, string parent, string name) =>
            root.TryGetProperty(parent, out var p) && p.ValueKind == System.Text.Json.JsonValueKind.Object &&
            p.TryGetProperty(name, out var v) && v.ValueKind == System.Text.Json.JsonValueKind.String ? v.GetString()! : "";
    }
}

/// <summary>
/// The YAML an event key is read from, bounded. YamlDotNet's representation model builds nested nodes recursively: a
/// body of a few megabytes of <c>[</c> would overflow the stack, which ends the process. An Event nests four levels;
/// deeper than <see cref="MaxDepth"/> (the default depth limit of System.Text.Json's reader) is a
/// <see cref="YamlDotNet.Core.YamlException"/> before any node is built. An alias is one too: the model shares the
/// aliased node, but a mapping key hashes and compares a node whole, so thirty levels of ten aliases used as a key
/// take exponential time (kube-apiserver's YAML decoder refuses "excessive aliasing" too).
/// </summary>
internal sealed class DepthLimitedParser(YamlDotNet.Core.IParser inner) : YamlDotNet.Core.IParser
{
    public const int MaxDepth = 64;
    private int _depth;

    public YamlDotNet.Core.Events.ParsingEvent? Current => inner.Current;

    public bool MoveNext()
    {
        if (!inner.MoveNext())
        {
            return false;
        }
        switch (inner.Current)
        {
            case YamlDotNet.Core.Events.MappingStart or YamlDotNet.Core.Events.SequenceStart when ++_depth > MaxDepth:
                throw new YamlDotNet.Core.YamlException(inner.Current.Start, inner.Current.End, $"nested deeper than {MaxDepth} levels");
            case YamlDotNet.Core.Events.MappingEnd or YamlDotNet.Core.Events.SequenceEnd:
                _depth--;
                break;
            case YamlDotNet.Core.Events.AnchorAlias:
                throw new YamlDotNet.Core.YamlException(inner.Current.Start, inner.Current.End, "an alias in an event body");
        }
        return true;
    }
}

/// <summary>
/// Reads <c>admission.admissionControlConfigFile</c>: an <c>AdmissionConfiguration</c> (<c>apiserver.config.k8s.io/v1</c>
/// or <c>apiserver.k8s.io/v1alpha1</c>) whose <c>EventRateLimit</c> plugin has a <c>path</c> (relative to the file) or an
/// inline <c>configuration</c>, an <c>eventratelimit.admission.k8s.io/v1alpha1</c> <c>Configuration</c> validated as
/// kube-apiserver validates it. Another plugin in the file is an error: the gateway runs only EventRateLimit, and a
/// file that names a plugin must not look enforced when it is not.
/// </summary>
public static class EventRateLimitFile
{
    private const string ConfigurationApiVersion = "eventratelimit.admission.k8s.io/v1alpha1";
    private static readonly string[] AdmissionApiVersions = ["apiserver.config.k8s.io/v1", "apiserver.k8s.io/v1alpha1"];
    private static readonly string[] Types = [EventRateLimiter.Namespace, EventRateLimiter.Server, EventRateLimiter.SourceAndObject, EventRateLimiter.User];

    /// <summary>The limits, or null with the reasons in <paramref name="errors"/>; every file read is added to <paramref name="read"/>.</summary>
    public static List<EventRateLimitLimit>? Load(string file, List<ConfigError> errors, List<string> read)
    {
        read.Add(file);
        var before = errors.Count;
        var root = ReadDocument(file, errors);
        if (root is null)
        {
            return null;
        }
        var binder = new YamlBinder(file, errors);
        var apiVersion = Scalar(root, "apiVersion");
        var kind = Scalar(root, "kind");
        if (kind != "AdmissionConfiguration" || !AdmissionApiVersions.Contains(apiVersion))
        {
            binder.Error(root, "kind", $"must be an AdmissionConfiguration (apiVersion {AdmissionApiVersions[0]} or {AdmissionApiVersions[1]}), not {apiVersion}/{kind}");
            return null;
        }
        YamlMappingNode? plugin = null;
        if (Child(root, "plugins") is not YamlSequenceNode plugins || plugins.Children.Count == 0)
        {
            binder.Error(root, "plugins", "must list the EventRateLimit plugin");
            return null;
        }
        for (var i = 0; i < plugins.Children.Count; i++)
        {
            if (plugins.Children[i] is not YamlMappingNode entry)
            {
                binder.Error(plugins.Children[i], $"plugins[{i}]", "must be a mapping with name and path or configuration");
                continue;
            }
            var name = Scalar(entry, "name");
            if (name != "EventRateLimit")
            {
                binder.Error(entry, $"plugins[{i}].name", $"\"{name}\": the gateway runs only the EventRateLimit admission plugin; configure {(name.Length == 0 ? "other plugins" : name)} on kube-apiserver and remove it from this file");
                continue;
            }
            if (plugin is not null)
            {
                binder.Error(entry, $"plugins[{i}].name", "EventRateLimit is named twice");
                continue;
            }
            plugin = entry;
            foreach (var key in entry.Children.Keys.OfType<YamlScalarNode>().Where(k => k.Value is not ("name" or "path" or "configuration")))
            {
                binder.Error(key, $"plugins[{i}].{key.Value}", "unknown field (name, path, configuration)");
            }
        }
        if (plugin is null || errors.Count > before)
        {
            return null;
        }
        var path = Scalar(plugin, "path");
        var inline = Child(plugin, "configuration");
        if (path.Length > 0 && inline is not null)
        {
            binder.Error(plugin, "plugins.configuration", "give EventRateLimit a path or an inline configuration, not both");
            return null;
        }
        if (inline is not null)
        {
            return ReadConfiguration(inline, file, "plugins.configuration.", errors);
        }
        if (path.Length == 0)
        {
            binder.Error(plugin, "plugins.path", "EventRateLimit needs a path (relative to this file) or an inline configuration");
            return null;
        }
        var target = Path.GetFullPath(path, Path.GetDirectoryName(Path.GetFullPath(file))!);
        read.Add(target);
        var config = ReadDocument(target, errors);
        return config is null ? null : ReadConfiguration(config, target, "", errors);
    }

    private static List<EventRateLimitLimit>? ReadConfiguration(YamlNode node, string file, string prefix, List<ConfigError> errors)
    {
        var binder = new YamlBinder(file, errors);
        if (node is not YamlMappingNode map)
        {
            binder.Error(node, prefix + "(object)", $"must be a {ConfigurationApiVersion} Configuration");
            return null;
        }
        if (Scalar(map, "apiVersion") != ConfigurationApiVersion || Scalar(map, "kind") != "Configuration")
        {
            binder.Error(map, prefix + "kind", $"must be apiVersion {ConfigurationApiVersion}, kind Configuration (not {Scalar(map, "apiVersion")}/{Scalar(map, "kind")})");
            return null;
        }
        foreach (var key in map.Children.Keys.OfType<YamlScalarNode>().Where(k => k.Value is not ("apiVersion" or "kind" or "limits")))
        {
            binder.Error(key, prefix + key.Value, "unknown field (apiVersion, kind, limits)");
        }
        var before = errors.Count;
        var limits = new List<EventRateLimitLimit>();
        var seq = Child(map, "limits") as YamlSequenceNode;
        if (seq is null || seq.Children.Count == 0)
        {
            binder.Error(Child(map, "limits") ?? map, prefix + "limits", "Invalid value: null: must not be empty");
            return null;
        }
        for (var i = 0; i < seq.Children.Count; i++)
        {
            var field = $"{prefix}limits[{i}]";
            if (seq.Children[i] is not YamlMappingNode limit)
            {
                binder.Error(seq.Children[i], field, "must be a mapping with type, qps, burst and cacheSize");
                continue;
            }
            foreach (var key in limit.Children.Keys.OfType<YamlScalarNode>().Where(k => k.Value is not ("type" or "qps" or "burst" or "cacheSize")))
            {
                binder.Error(key, $"{field}.{key.Value}", "unknown field (type, qps, burst, cacheSize)");
            }
            var type = Scalar(limit, "type");
            if (!Types.Contains(type))
            {
                binder.Error(Child(limit, "type") ?? limit, field + ".type",
                    $"Unsupported value: \"{type}\": supported values: {string.Join(", ", Types.Select(t => $"\"{t}\""))}");
            }
            var burst = Int32(limit, "burst", field, binder);
            var qps = Int32(limit, "qps", field, binder);
            var cacheSize = Int32(limit, "cacheSize", field, binder);
            if (burst is <= 0)
            {
                binder.Error(Child(limit, "burst") ?? limit, field + ".burst", $"Invalid value: {burst}: must be positive");
            }
            if (qps is <= 0)
            {
                binder.Error(Child(limit, "qps") ?? limit, field + ".qps", $"Invalid value: {qps}: must be positive");
            }
            if (type != EventRateLimiter.Server && cacheSize is < 0)
            {
                binder.Error(Child(limit, "cacheSize")!, field + ".cacheSize", $"Invalid value: {cacheSize}: must not be negative");
            }
            limits.Add(new EventRateLimitLimit(type, qps ?? 0, burst ?? 0, cacheSize ?? 0));
        }
        return errors.Count > before ? null : limits;
    }

    // An absent field is 0 (kube-apiserver has no defaults for qps and burst: 0 then fails "must be positive");
    // a value that is not an int32 is an error (null).
    private static int? Int32(YamlMappingNode map, string name, string field, YamlBinder binder)
    {
        if (Child(map, name) is not { } node)
        {
            return 0;
        }
        if (node is YamlScalarNode { Value: { } text } && int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            return value;
        }
        binder.Error(node, $"{field}.{name}", "must be a whole number (int32)");
        return null;
    }

    private static YamlMappingNode? ReadDocument(string file, List<ConfigError> errors)
    {
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            errors.Add(new ConfigError(file, 0, "(file)", $"cannot read: {ex.Message}"));
            return null;
        }
        var binder = new YamlBinder(file, errors);
        var docs = binder.Parse(text).Where(d => d.RootNode is not YamlScalarNode { Value: null or "" }).ToList();
        if (docs.Count != 1 || docs[0].RootNode is not YamlMappingNode root)
        {
            if (docs.Count > 0 || !errors.Any(e => e.File == file))
            {
                errors.Add(new ConfigError(file, docs.Count > 1 ? (int)docs[1].RootNode.Start.Line : 0, "(file)", "must hold one YAML or JSON object"));
            }
            return null;
        }
        return root;
    }

    private static YamlNode? Child(YamlMappingNode map, string name) =>
        map.Children.TryGetValue(new YamlScalarNode(name), out var node) && node is not YamlScalarNode { Value: null or "" or "~" or "null", Tag.IsEmpty: true } ? node : null;

    private static string Scalar(YamlMappingNode map, string name) => Child(map, name) is YamlScalarNode { Value: { } v } ? v : "";
}
