using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Portcullis.Sandbox.Storage;

namespace Portcullis.Sandbox.Api;

/// <summary>
/// Server-side printing: a meta.k8s.io/v1 Table when the client asks for one (kubectl get sends
/// <c>Accept: application/json;as=Table;v=v1;g=meta.k8s.io</c>), with the columns kubectl users expect.
/// Rows carry the object's metadata (includeObject=Metadata, the default) or the whole object.
/// </summary>
internal static class TableConverter
{
    private sealed record Column(string Name, string Type, string Description, int Priority, Func<JsonObject, DateTimeOffset, JsonNode?> Cell);

    public static bool Wanted(HttpRequest request)
    {
        foreach (var accept in request.Headers.Accept)
        {
            if (accept is null)
            {
                continue;
            }
            // The first acceptable media type wins, as in content negotiation: kubectl lists Table first.
            var first = accept.Split(',')[0];
            return first.Contains("as=Table", StringComparison.Ordinal) && first.Contains("g=meta.k8s.io", StringComparison.Ordinal);
        }
        return false;
    }

    public static JsonObject ToTable(ResourceType type, IEnumerable<JsonObject> items, string? resourceVersion, string? continueToken,
        bool includeObject, DateTimeOffset now)
    {
        var columns = Columns(type);
        var definitions = new JsonArray();
        foreach (var column in columns)
        {
            definitions.Add(new JsonObject
            {
                ["name"] = column.Name,
                ["type"] = column.Type,
                ["format"] = column.Name == "Name" ? "name" : "",
                ["description"] = column.Description,
                ["priority"] = column.Priority,
            });
        }
        var rows = new JsonArray();
        foreach (var item in items)
        {
            var cells = new JsonArray();
            foreach (var column in columns)
            {
                cells.Add(column.Cell(item, now));
            }
            rows.Add(new JsonObject
            {
                ["cells"] = cells,
                ["object"] = includeObject
                    ? item.DeepClone()
                    : new JsonObject
                    {
                        ["kind"] = "PartialObjectMetadata",
                        ["apiVersion"] = "meta.k8s.io/v1",
                        ["metadata"] = item["metadata"]?.DeepClone(),
                    },
            });
        }
        var metadata = new JsonObject();
        if (resourceVersion is not null)
        {
            metadata["resourceVersion"] = resourceVersion;
        }
        if (continueToken is not null)
        {
            metadata["continue"] = continueToken;
        }
        return new JsonObject
        {
            ["kind"] = "Table",
            ["apiVersion"] = "meta.k8s.io/v1",
            ["metadata"] = metadata,
            ["columnDefinitions"] = definitions,
            ["rows"] = rows,
        };
    }

    /// <summary>Whether rows should carry whole objects (<c>includeObject=Object</c>).</summary>
    public static bool IncludeObject(HttpRequest request) => request.Query["includeObject"] == "Object";

    private static Column[] Columns(ResourceType type)
    {
        var name = new Column("Name", "string", "Name must be unique within a namespace.", 0, (o, _) => Text(o, "metadata", "name"));
        var age = new Column("Age", "string", "The time since the object was created.", 0, (o, now) => Age(o, now));
        if (type == ResourceTypes.Pods)
        {
            return
            [
                name,
                new("Ready", "string", "The number of containers that are ready.", 0, (o, _) => Ready(o)),
                new("Status", "string", "The pod phase.", 0, (o, _) => Text(o, "status", "phase")),
                new("Restarts", "string", "The number of container restarts.", 0, (o, _) => Restarts(o)),
                age,
                new("IP", "string", "The pod IP.", 1, (o, _) => Text(o, "status", "podIP")),
                new("Node", "string", "The node the pod runs on.", 1, (o, _) => Text(o, "spec", "nodeName") ?? "<none>"),
            ];
        }
        if (type == ResourceTypes.Namespaces)
        {
            return [name, new("Status", "string", "The namespace phase.", 0, (o, _) => Text(o, "status", "phase")), age];
        }
        if (type == ResourceTypes.ConfigMaps)
        {
            return [name, new("Data", "integer", "The number of keys.", 0, (o, _) => Count(o, "data") + Count(o, "binaryData")), age];
        }
        if (type == ResourceTypes.Secrets)
        {
            return
            [
                name,
                new("Type", "string", "The secret type.", 0, (o, _) => Text(o, "type") ?? "Opaque"),
                new("Data", "integer", "The number of keys.", 0, (o, _) => Count(o, "data")),
                age,
            ];
        }
        if (type == ResourceTypes.Deployments)
        {
            return
            [
                name,
                new("Ready", "string", "Ready replicas out of desired.", 0,
                    (o, _) => $"{Number(o, "status", "readyReplicas")}/{Number(o, "spec", "replicas", 1)}"),
                new("Up-to-date", "integer", "Updated replicas.", 0, (o, _) => Number(o, "status", "updatedReplicas")),
                new("Available", "integer", "Available replicas.", 0, (o, _) => Number(o, "status", "availableReplicas")),
                age,
            ];
        }
        if (type == ResourceTypes.Leases)
        {
            return [name, new("Holder", "string", "The holder of the lease.", 0, (o, _) => Text(o, "spec", "holderIdentity") ?? ""), age];
        }
        return [name, age];
    }

    private static string? Text(JsonObject obj, params string[] path)
    {
        JsonNode? node = obj;
        foreach (var part in path)
        {
            node = node is JsonObject o ? o[part] : null;
        }
        return node is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;
    }

    private static long Number(JsonObject obj, string section, string field, long fallback = 0)
    {
        var node = obj[section]?[field];
        return node is JsonValue value && long.TryParse(value.ToJsonString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number)
            ? number
            : fallback;
    }

    private static int Count(JsonObject obj, string field) => obj[field] is JsonObject map ? map.Count : 0;

    private static string Ready(JsonObject pod)
    {
        var statuses = pod["status"]?["containerStatuses"] as JsonArray ?? [];
        var ready = statuses.Count(s => s?["ready"] is JsonValue v && v.TryGetValue<bool>(out var b) && b);
        var total = (pod["spec"]?["containers"] as JsonArray)?.Count ?? statuses.Count;
        return $"{ready}/{total}";
    }

    private static long Restarts(JsonObject pod) =>
        (pod["status"]?["containerStatuses"] as JsonArray ?? [])
            .Sum(s => s?["restartCount"] is JsonValue v
                && long.TryParse(v.ToJsonString(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0);

    private static string Age(JsonObject obj, DateTimeOffset now)
    {
        if (!DateTimeOffset.TryParse(Text(obj, "metadata", "creationTimestamp"), CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal, out var created))
        {
            return "<unknown>";
        }
        var age = now - created;
        if (age < TimeSpan.Zero)
        {
            age = TimeSpan.Zero;
        }
        return age.TotalMinutes < 2 ? $"{(int)age.TotalSeconds}s"
            : age.TotalMinutes < 10 ? $"{(int)age.TotalMinutes}m{age.Seconds}s"
            : age.TotalHours < 3 ? $"{(int)age.TotalMinutes}m"
            : age.TotalHours < 8 ? $"{(int)age.TotalHours}h{age.Minutes}m"
            : age.TotalDays < 2 ? $"{(int)age.TotalHours}h"
            : age.TotalDays < 8 ? $"{(int)age.TotalDays}d{age.Hours}h"
            : $"{(int)age.TotalDays}d";
    }
}
