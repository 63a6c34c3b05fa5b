using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Portcullis.Sandbox.Storage;

/// <summary>The result of a list: items in name order, the store's resourceVersion and a continue token.</summary>
public sealed record ListResult(IReadOnlyList<JsonObject> Items, string ResourceVersion, string? Continue, long? RemainingItemCount);

/// <summary>
/// The in-memory object store: every resource, one global increasing resourceVersion, a bounded event
/// history for watches that resume from a resourceVersion. One lock guards everything; stored objects
/// are never mutated in place (a write replaces the object) and callers only ever receive copies.
/// </summary>
public sealed class ObjectStore
{
    /// <summary>The annotation carrying the identity that created an object.</summary>
    public const string CreatedByAnnotation = "sandbox.portcullis.dev/created-by";

    private const int HistoryCapacity = 4096;

    private readonly Lock _lock = new();
    private readonly Dictionary<ResourceType, SortedDictionary<string, JsonObject>> _objects = [];
    private readonly Queue<HistoryEntry> _history = new();
    private readonly List<WatchSubscription> _watchers = [];
    private readonly TimeProvider _time;
    private long _resourceVersion;
    private long _oldestRetained = 1;
    private int _podCount;

    /// <summary>Creates an empty store.</summary>
    public ObjectStore(TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        foreach (var type in ResourceTypes.All)
        {
            _objects[type] = new SortedDictionary<string, JsonObject>(StringComparer.Ordinal);
        }
    }

    internal sealed record WatchFilter(ResourceType Type, string? Namespace, LabelSelector Labels, FieldSelector Fields)
    {
        public bool Matches(ResourceType type, JsonObject obj) =>
            type == Type
            && (Namespace is null || Namespace == NamespaceOf(obj))
            && Labels.Matches(obj)
            && Fields.Matches(obj);
    }

    private sealed record HistoryEntry(long ResourceVersion, string EventType, ResourceType Type, JsonObject Object);

    /// <summary>The latest resourceVersion handed out.</summary>
    public long CurrentResourceVersion
    {
        get
        {
            lock (_lock)
            {
                return _resourceVersion;
            }
        }
    }

    /// <summary>Stores a new object. <paramref name="namespace"/> is null for cluster-scoped resources.</summary>
    public JsonObject Create(ResourceType type, string? @namespace, JsonObject obj, string createdBy, bool dryRun = false)
    {
        ArgumentNullException.ThrowIfNull(type);
        ArgumentNullException.ThrowIfNull(obj);
        var created = (JsonObject)obj.DeepClone();
        var metadata = Metadata(created);
        var name = metadata["name"]?.GetValue<string>() ?? "";
        if (name.Length == 0 && metadata["generateName"]?.GetValue<string>() is { Length: > 0 } prefix)
        {
            name = prefix + RandomSuffix();
        }
        if (name.Length == 0)
        {
            throw ApiException.Invalid(type, "", "metadata.name: Required value: name or generateName is required");
        }
        CheckNamespace(type, @namespace, metadata);
        lock (_lock)
        {
            if (type.Namespaced && !_objects[ResourceTypes.Namespaces].ContainsKey(Key(null, @namespace!)))
            {
                throw ApiException.NotFound(ResourceTypes.Namespaces, @namespace!);
            }
            var key = Key(@namespace, name);
            if (_objects[type].ContainsKey(key))
            {
                throw ApiException.AlreadyExists(type, name);
            }
            created["apiVersion"] = type.ApiVersion;
            created["kind"] = type.Kind;
            metadata["name"] = name;
            if (type.Namespaced)
            {
                metadata["namespace"] = @namespace;
            }
            else
            {
                metadata.Remove("namespace");
            }
            metadata["uid"] = Guid.NewGuid().ToString();
            metadata["creationTimestamp"] = Timestamp();
            var annotations = metadata["annotations"] as JsonObject ?? [];
            annotations[CreatedByAnnotation] = createdBy;
            metadata["annotations"] = annotations;
            ApplyDefaults(type, created);
            if (dryRun)
            {
                return created;
            }
            metadata["resourceVersion"] = NextResourceVersion();
            _objects[type][key] = created;
            Record("ADDED", type, created);
            return (JsonObject)created.DeepClone();
        }
    }

    /// <summary>Returns a copy of one object, or throws a NotFound <see cref="ApiException"/>.</summary>
    public JsonObject Get(ResourceType type, string? @namespace, string name) =>
        TryGet(type, @namespace, name) ?? throw ApiException.NotFound(type, name);

    /// <summary>Returns a copy of one object, or null.</summary>
    public JsonObject? TryGet(ResourceType type, string? @namespace, string name)
    {
        ArgumentNullException.ThrowIfNull(type);
        lock (_lock)
        {
            return _objects[type].TryGetValue(Key(type.Namespaced ? @namespace : null, name), out var obj)
                ? (JsonObject)obj.DeepClone()
                : null;
        }
    }

    /// <summary>Lists objects in name order. <paramref name="namespace"/> null means all namespaces.</summary>
    public ListResult List(ResourceType type, string? @namespace, LabelSelector? labels = null, FieldSelector? fields = null,
        int limit = 0, string? continueToken = null)
    {
        ArgumentNullException.ThrowIfNull(type);
        labels ??= LabelSelector.Everything;
        fields ??= FieldSelector.Everything;
        var after = DecodeContinue(continueToken);
        lock (_lock)
        {
            var items = new List<JsonObject>();
            string? lastKey = null;
            long remaining = 0;
            foreach (var (key, obj) in _objects[type])
            {
                if (after is not null && string.CompareOrdinal(key, after) <= 0)
                {
                    continue;
                }
                if (type.Namespaced && @namespace is not null && NamespaceOf(obj) != @namespace)
                {
                    continue;
                }
                if (!labels.Matches(obj) || !fields.Matches(obj))
                {
                    continue;
                }
                if (limit > 0 && items.Count == limit)
                {
                    remaining++;
                    continue;
                }
                items.Add((JsonObject)obj.DeepClone());
                lastKey = key;
            }
            var rv = _resourceVersion.ToString(CultureInfo.InvariantCulture);
            return remaining > 0
                ? new ListResult(items, rv, EncodeContinue(lastKey!), remaining)
                : new ListResult(items, rv, null, null);
        }
    }

    /// <summary>Replaces an object (PUT). A non-empty metadata.resourceVersion must match the stored one.</summary>
    public JsonObject Update(ResourceType type, string? @namespace, string name, JsonObject obj, bool dryRun = false)
    {
        ArgumentNullException.ThrowIfNull(type);
        ArgumentNullException.ThrowIfNull(obj);
        var updated = (JsonObject)obj.DeepClone();
        var metadata = Metadata(updated);
        var bodyName = metadata["name"]?.GetValue<string>();
        if (bodyName is not null && bodyName != name)
        {
            throw ApiException.BadRequest("the name of the object (" + bodyName + ") does not match the name on the URL (" + name + ")");
        }
        CheckNamespace(type, @namespace, metadata);
        lock (_lock)
        {
            var key = Key(type.Namespaced ? @namespace : null, name);
            if (!_objects[type].TryGetValue(key, out var current))
            {
                throw ApiException.NotFound(type, name);
            }
            var currentMetadata = Metadata(current);
            var wanted = metadata["resourceVersion"]?.GetValue<string>();
            if (!string.IsNullOrEmpty(wanted) && wanted != currentMetadata["resourceVersion"]?.GetValue<string>())
            {
                throw ApiException.Conflict(type, name);
            }
            updated["apiVersion"] = type.ApiVersion;
            updated["kind"] = type.Kind;
            metadata["name"] = name;
            if (type.Namespaced)
            {
                metadata["namespace"] = @namespace;
            }
            // Server-owned fields survive whatever the client sent.
            metadata["uid"] = currentMetadata["uid"]?.DeepClone();
            metadata["creationTimestamp"] = currentMetadata["creationTimestamp"]?.DeepClone();
            if (currentMetadata["annotations"]?[CreatedByAnnotation]?.GetValue<string>() is { } createdBy)
            {
                var annotations = metadata["annotations"] as JsonObject ?? [];
                annotations[CreatedByAnnotation] = createdBy;
                metadata["annotations"] = annotations;
            }
            if (dryRun)
            {
                return updated;
            }
            metadata["resourceVersion"] = NextResourceVersion();
            _objects[type][key] = updated;
            Record("MODIFIED", type, updated);
            return (JsonObject)updated.DeepClone();
        }
    }

    /// <summary>Applies a patch function to the current object and stores the result as an update.</summary>
    public JsonObject Patch(ResourceType type, string? @namespace, string name, Func<JsonObject, JsonObject> patch, bool dryRun = false)
    {
        ArgumentNullException.ThrowIfNull(patch);
        // Read-modify-write under the same lock so concurrent patches do not lose each other's changes.
        lock (_lock)
        {
            var current = Get(type, @namespace, name);
            var currentVersion = current["metadata"]?["resourceVersion"]?.GetValue<string>();
            var patched = patch(current);
            var patchedVersion = patched["metadata"]?["resourceVersion"]?.GetValue<string>();
            if (patchedVersion is not null && patchedVersion != currentVersion)
            {
                throw ApiException.Conflict(type, name);
            }
            return Update(type, @namespace, name, patched, dryRun);
        }
    }

    /// <summary>Deletes one object and returns its last state. Deleting a namespace deletes its contents.</summary>
    public JsonObject Delete(ResourceType type, string? @namespace, string name, bool dryRun = false)
    {
        ArgumentNullException.ThrowIfNull(type);
        lock (_lock)
        {
            var key = Key(type.Namespaced ? @namespace : null, name);
            if (!_objects[type].TryGetValue(key, out var current))
            {
                throw ApiException.NotFound(type, name);
            }
            if (dryRun)
            {
                return (JsonObject)current.DeepClone();
            }
            if (type == ResourceTypes.Namespaces)
            {
                foreach (var inner in ResourceTypes.All.Where(t => t.Namespaced))
                {
                    foreach (var innerKey in _objects[inner].Where(p => NamespaceOf(p.Value) == name).Select(p => p.Key).ToList())
                    {
                        RemoveLocked(inner, innerKey);
                    }
                }
            }
            return (JsonObject)RemoveLocked(type, key).DeepClone();
        }
    }

    /// <summary>Deletes every matching object and returns their last states.</summary>
    public IReadOnlyList<JsonObject> DeleteCollection(ResourceType type, string? @namespace, LabelSelector? labels = null,
        FieldSelector? fields = null, bool dryRun = false)
    {
        lock (_lock)
        {
            var deleted = new List<JsonObject>();
            foreach (var item in List(type, @namespace, labels, fields).Items)
            {
                var metadata = Metadata(item);
                deleted.Add(Delete(type, metadata["namespace"]?.GetValue<string>(), metadata["name"]!.GetValue<string>(), dryRun));
            }
            return deleted;
        }
    }

    /// <summary>
    /// Opens a watch. An empty or "0" <paramref name="resourceVersion"/> first sends the current matching objects
    /// as ADDED; any other value replays the changes after it (410 Expired when they are no longer retained).
    /// </summary>
    public WatchSubscription Watch(ResourceType type, string? @namespace, LabelSelector? labels = null,
        FieldSelector? fields = null, string? resourceVersion = null)
    {
        ArgumentNullException.ThrowIfNull(type);
        var filter = new WatchFilter(type, type.Namespaced ? @namespace : null, labels ?? LabelSelector.Everything, fields ?? FieldSelector.Everything);
        long? from = null;
        if (!string.IsNullOrEmpty(resourceVersion) && resourceVersion != "0")
        {
            if (!long.TryParse(resourceVersion, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
            {
                throw ApiException.BadRequest($"invalid resourceVersion \"{resourceVersion}\"");
            }
            from = parsed;
        }
        var subscription = new WatchSubscription(filter, Unsubscribe);
        lock (_lock)
        {
            if (from is null)
            {
                foreach (var obj in _objects[type].Values.Where(o => filter.Matches(type, o)))
                {
                    subscription.Publish(EventLine("ADDED", obj));
                }
            }
            else
            {
                if (from.Value + 1 < _oldestRetained)
                {
                    throw new ApiException(HttpStatusCode.Gone, "Expired",
                        $"too old resource version: {from.Value} ({_oldestRetained - 1})");
                }
                foreach (var entry in _history.Where(e => e.ResourceVersion > from.Value && filter.Matches(e.Type, e.Object)))
                {
                    subscription.Publish(EventLine(entry.EventType, entry.Object));
                }
            }
            _watchers.Add(subscription);
        }
        return subscription;
    }

    internal static string? NamespaceOf(JsonObject obj) => obj["metadata"]?["namespace"]?.GetValue<string>();

    private void Unsubscribe(WatchSubscription subscription)
    {
        lock (_lock)
        {
            _watchers.Remove(subscription);
        }
    }

    private JsonObject RemoveLocked(ResourceType type, string key)
    {
        var current = _objects[type][key];
        _objects[type].Remove(key);
        var gone = (JsonObject)current.DeepClone();
        Metadata(gone)["resourceVersion"] = NextResourceVersion();
        Record("DELETED", type, gone);
        return gone;
    }

    private void Record(string eventType, ResourceType type, JsonObject obj)
    {
        var rv = _resourceVersion;
        _history.Enqueue(new HistoryEntry(rv, eventType, type, obj));
        while (_history.Count > HistoryCapacity)
        {
            _history.Dequeue();
            _oldestRetained = _history.Peek().ResourceVersion;
        }
        string? line = null;
        foreach (var watcher in _watchers)
        {
            if (watcher.Filter.Matches(type, obj))
            {
                line ??= EventLine(eventType, obj);
                watcher.Publish(line);
            }
        }
    }

    private static string EventLine(string eventType, JsonObject obj)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteString("type", eventType);
            writer.WritePropertyName("object");
            obj.WriteTo(writer);
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private string NextResourceVersion() => (++_resourceVersion).ToString(CultureInfo.InvariantCulture);

    private string Timestamp() => _time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private void ApplyDefaults(ResourceType type, JsonObject obj) =>
        ObjectDefaults.Apply(type, obj, Timestamp(), () => Interlocked.Increment(ref _podCount));

    private static void CheckNamespace(ResourceType type, string? @namespace, JsonObject metadata)
    {
        if (!type.Namespaced)
        {
            return;
        }
        if (string.IsNullOrEmpty(@namespace))
        {
            throw ApiException.BadRequest("the server could not find the requested resource: a namespace is required for " + type.Resource);
        }
        var bodyNamespace = metadata["namespace"]?.GetValue<string>();
        if (!string.IsNullOrEmpty(bodyNamespace) && bodyNamespace != @namespace)
        {
            throw ApiException.BadRequest("the namespace of the provided object does not match the namespace sent on the request");
        }
    }

    private static JsonObject Metadata(JsonObject obj)
    {
        if (obj["metadata"] is JsonObject metadata)
        {
            return metadata;
        }
        metadata = [];
        obj["metadata"] = metadata;
        return metadata;
    }

    private static string Key(string? @namespace, string name) => (@namespace ?? "") + "/" + name;

    private static string RandomSuffix()
    {
        const string alphabet = "bcdfghjklmnpqrstvwxz2456789";
        Span<char> chars = stackalloc char[5];
        for (var i = 0; i < chars.Length; i++)
        {
            chars[i] = alphabet[RandomNumberGenerator.GetInt32(alphabet.Length)];
        }
        return new string(chars);
    }

    private static string EncodeContinue(string lastKey) => Convert.ToBase64String(Encoding.UTF8.GetBytes(lastKey));

    private static string? DecodeContinue(string? token)
    {
        if (string.IsNullOrEmpty(token))
        {
            return null;
        }
        try
        {
            return Encoding.UTF8.GetString(Convert.FromBase64String(token));
        }
        catch (FormatException)
        {
            throw ApiException.BadRequest("invalid continue token");
        }
    }
}
