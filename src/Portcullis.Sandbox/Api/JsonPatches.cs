using System.Globalization;
using System.Text.Json.Nodes;
using Portcullis.Sandbox.Storage;

namespace Portcullis.Sandbox.Api;

/// <summary>RFC 7386 JSON merge patch (also used for strategic merge patch) and RFC 6902 JSON patch.</summary>
internal static class JsonPatches
{
    /// <summary>Applies a merge patch: objects merge recursively, null deletes, anything else replaces.</summary>
    public static JsonNode? MergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }
        var result = target as JsonObject ?? [];
        foreach (var (name, value) in patchObject)
        {
            if (value is null)
            {
                result.Remove(name);
                continue;
            }
            // Strategic merge patch directives have no meaning here; drop them rather than store them.
            if (name.StartsWith('$'))
            {
                continue;
            }
            var current = result[name];
            result.Remove(name);
            result[name] = MergePatch(current?.DeepClone(), value);
        }
        return result;
    }

    /// <summary>Applies a JSON patch (add, remove, replace, test, copy, move).</summary>
    public static JsonObject JsonPatch(JsonObject target, JsonArray operations)
    {
        JsonNode root = target;
        foreach (var operation in operations)
        {
            var op = operation?["op"]?.GetValue<string>() ?? throw ApiException.BadRequest("json patch: operation without \"op\"");
            var path = operation["path"]?.GetValue<string>() ?? throw ApiException.BadRequest("json patch: operation without \"path\"");
            switch (op)
            {
                case "add":
                    Add(root, path, operation["value"]?.DeepClone());
                    break;
                case "remove":
                    Remove(root, path);
                    break;
                case "replace":
                    Remove(root, path);
                    Add(root, path, operation["value"]?.DeepClone());
                    break;
                case "test":
                    if (!JsonNode.DeepEquals(Resolve(root, path), operation["value"]))
                    {
                        throw new ApiException(System.Net.HttpStatusCode.UnprocessableEntity, "Invalid", $"json patch: test failed at {path}");
                    }
                    break;
                case "copy":
                case "move":
                    var from = operation["from"]?.GetValue<string>() ?? throw ApiException.BadRequest($"json patch: {op} without \"from\"");
                    var value = Resolve(root, from)?.DeepClone();
                    if (op == "move")
                    {
                        Remove(root, from);
                    }
                    Add(root, path, value);
                    break;
                default:
                    throw ApiException.BadRequest($"json patch: unknown op \"{op}\"");
            }
        }
        return (JsonObject)root;
    }

    private static string[] Tokens(string path)
    {
        if (path.Length == 0)
        {
            return [];
        }
        if (path[0] != '/')
        {
            throw ApiException.BadRequest($"json patch: path \"{path}\" must start with '/'");
        }
        return [.. path[1..].Split('/').Select(t => t.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal))];
    }

    private static JsonNode? Resolve(JsonNode root, string path)
    {
        JsonNode? node = root;
        foreach (var token in Tokens(path))
        {
            node = node switch
            {
                JsonObject o => o[token],
                JsonArray a when int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < a.Count => a[i],
                _ => throw ApiException.BadRequest($"json patch: path \"{path}\" does not exist"),
            };
        }
        return node;
    }

    private static void Add(JsonNode root, string path, JsonNode? value)
    {
        var tokens = Tokens(path);
        if (tokens.Length == 0)
        {
            throw ApiException.BadRequest("json patch: cannot replace the whole object");
        }
        var parent = Resolve(root, ParentPath(tokens));
        var last = tokens[^1];
        switch (parent)
        {
            case JsonObject o:
                o.Remove(last);
                o[last] = value;
                break;
            case JsonArray a when last == "-":
                a.Add(value);
                break;
            case JsonArray a when int.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i <= a.Count:
                a.Insert(i, value);
                break;
            default:
                throw ApiException.BadRequest($"json patch: cannot add at \"{path}\"");
        }
    }

    private static void Remove(JsonNode root, string path)
    {
        var tokens = Tokens(path);
        if (tokens.Length == 0)
        {
            throw ApiException.BadRequest("json patch: cannot remove the whole object");
        }
        var parent = Resolve(root, ParentPath(tokens));
        var last = tokens[^1];
        switch (parent)
        {
            case JsonObject o when o.ContainsKey(last):
                o.Remove(last);
                break;
            case JsonArray a when int.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < a.Count:
                a.RemoveAt(i);
                break;
            default:
                throw ApiException.BadRequest($"json patch: path \"{path}\" does not exist");
        }
    }

    private static string ParentPath(string[] tokens) =>
        tokens.Length == 1 ? "" : "/" + string.Join('/', tokens[..^1].Select(Escape));

    private static string Escape(string token) => token.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);
}
