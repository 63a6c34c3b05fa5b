using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Portcullis.Sandbox.Api.Protobuf;
using Portcullis.Sandbox.Identity;
using Portcullis.Sandbox.Storage;
using Portcullis.Sandbox.Streaming;

namespace Portcullis.Sandbox.Api;

/// <summary>The REST verbs on stored resources: get, list, watch, create, update, patch, delete, deletecollection.</summary>
internal sealed class ResourceHandler
{
    private readonly ObjectStore _store;
    private readonly LogStreamer _logs;
    private readonly CancellationToken _stopping;
    private readonly TimeProvider _time;

    public ResourceHandler(ObjectStore store, LogStreamer logs, TimeProvider time, CancellationToken stopping)
    {
        _time = time;
        _store = store;
        _logs = logs;
        _stopping = stopping;
    }

    public async Task HandleAsync(HttpContext context, ApiPath path)
    {
        var type = path.Type!;
        var request = context.Request;
        var query = request.Query;
        var dryRun = query.ContainsKey("dryRun");
        if (type.Namespaced && path.Namespace is null && path.Name is not null)
        {
            await KubeResponses.WriteNotFoundAsync(context);
            return;
        }
        var ns = type.Namespaced ? path.Namespace : null;
        switch (request.Method, path.Name, path.Subresource)
        {
            case ("GET", null, _) when path.WatchPrefix || QueryFlag.IsTrue(query["watch"]):
                await WatchAsync(context, type, ns, null);
                return;
            case ("GET", { } name, null) when path.WatchPrefix:
                await WatchAsync(context, type, ns, name);
                return;
            case ("GET", null, _):
                await ListAsync(context, type, ns);
                return;
            case ("GET", { } name, null or "status"):
                {
                    var obj = _store.Get(type, ns, name);
                    await KubeResponses.WriteJsonAsync(context, TableConverter.Wanted(request)
                        ? TableConverter.ToTable(type, [obj], null, null, TableConverter.IncludeObject(request), _time.GetUtcNow())
                        : obj);
                    return;
                }
            case ("GET", { } name, "log") when type == ResourceTypes.Pods:
                await _logs.StreamAsync(context, _store.Get(type, ns, name), _stopping);
                return;
            case ("GET" or "POST", { } name, "exec" or "attach") when type == ResourceTypes.Pods:
                await ExecHandler.HandleAsync(context, _store.Get(type, ns, name), path.Subresource == "attach", _stopping);
                return;
            case ("POST", null, null):
                {
                    var body = await ReadObjectAsync(context);
                    var created = _store.Create(type, ns, body, RequestIdentity.From(context).Username, dryRun);
                    await KubeResponses.WriteJsonAsync(context, created, HttpStatusCode.Created);
                    return;
                }
            case ("PUT", { } name, null or "status"):
                {
                    var body = await ReadObjectAsync(context);
                    await KubeResponses.WriteJsonAsync(context, _store.Update(type, ns, name, body, dryRun));
                    return;
                }
            case ("PATCH", { } name, null or "status"):
                await PatchAsync(context, type, ns, name, dryRun);
                return;
            case ("DELETE", { } name, null):
                {
                    var deleted = _store.Delete(type, ns, name, dryRun);
                    await KubeResponses.WriteJsonAsync(context, type.ReturnsDeletedObject ? deleted : DeletedStatus(type, deleted));
                    return;
                }
            case ("DELETE", null, null):
                {
                    var deleted = _store.DeleteCollection(type, ns, LabelSelectorOf(context), FieldSelectorOf(context), dryRun);
                    await KubeResponses.WriteJsonAsync(context, ListBody(type, deleted, _store.CurrentResourceVersion.ToString(CultureInfo.InvariantCulture), null, null));
                    return;
                }
            case (_, _, null or "status" or "log" or "exec" or "attach"):
                await KubeResponses.WriteStatusAsync(context, new ApiException(HttpStatusCode.MethodNotAllowed, "MethodNotAllowed",
                    $"the server does not allow this method on the requested resource"));
                return;
            default:
                await KubeResponses.WriteNotFoundAsync(context);
                return;
        }
    }

    private async Task ListAsync(HttpContext context, ResourceType type, string? ns)
    {
        var query = context.Request.Query;
        var limit = 0;
        if (query.TryGetValue("limit", out var limitText) && !int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit))
        {
            throw ApiException.BadRequest($"invalid limit \"{limitText}\"");
        }
        var result = _store.List(type, ns, LabelSelectorOf(context), FieldSelectorOf(context), limit, query["continue"]);
        await KubeResponses.WriteJsonAsync(context, TableConverter.Wanted(context.Request)
            ? TableConverter.ToTable(type, result.Items, result.ResourceVersion, result.Continue, TableConverter.IncludeObject(context.Request), _time.GetUtcNow())
            : ListBody(type, result.Items, result.ResourceVersion, result.Continue, result.RemainingItemCount));
    }

    private async Task WatchAsync(HttpContext context, ResourceType type, string? ns, string? name)
    {
        var query = context.Request.Query;
        var fields = FieldSelectorOf(context);
        if (name is not null)
        {
            fields = FieldSelector.Parse(string.IsNullOrEmpty(query["fieldSelector"]) ? "metadata.name=" + name : query["fieldSelector"] + ",metadata.name=" + name);
        }
        using var subscription = _store.Watch(type, ns, LabelSelectorOf(context), fields, query["resourceVersion"]);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping);
        if (query.TryGetValue("timeoutSeconds", out var timeoutText) && int.TryParse(timeoutText, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds > 0)
        {
            cancel.CancelAfter(TimeSpan.FromSeconds(seconds));
        }
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json";
        response.Headers.CacheControl = "no-cache, private";
        await response.StartAsync(cancel.Token);
        await response.Body.FlushAsync(cancel.Token);
        try
        {
            var table = TableConverter.Wanted(context.Request);
            var includeObject = TableConverter.IncludeObject(context.Request);
            await foreach (var line in subscription.Events.ReadAllAsync(cancel.Token))
            {
                await response.WriteAsync((table ? AsTableEvent(type, line, includeObject) : line) + "\n", cancel.Token);
                await response.Body.FlushAsync(cancel.Token);
            }
        }
        catch (OperationCanceledException)
        {
            // The client went away, the timeout ran out, or the server is stopping: the watch simply ends.
        }
    }

    private async Task PatchAsync(HttpContext context, ResourceType type, string? ns, string name, bool dryRun)
    {
        var contentType = context.Request.ContentType ?? "";
        var body = await ReadNodeAsync(context);
        Func<JsonObject, JsonObject> patch;
        if (contentType.StartsWith("application/merge-patch+json", StringComparison.OrdinalIgnoreCase)
            || contentType.StartsWith("application/strategic-merge-patch+json", StringComparison.OrdinalIgnoreCase))
        {
            if (body is not JsonObject)
            {
                throw ApiException.BadRequest("a merge patch must be a JSON object");
            }
            patch = current => (JsonObject)JsonPatches.MergePatch(current, body)!;
        }
        else if (contentType.StartsWith("application/json-patch+json", StringComparison.OrdinalIgnoreCase))
        {
            var operations = body as JsonArray ?? throw ApiException.BadRequest("a JSON patch must be an array of operations");
            patch = current => JsonPatches.JsonPatch(current, operations);
        }
        else
        {
            throw new ApiException(HttpStatusCode.UnsupportedMediaType, "UnsupportedMediaType",
                $"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (server-side apply is not supported by the sandbox)");
        }
        await KubeResponses.WriteJsonAsync(context, _store.Patch(type, ns, name, patch, dryRun));
    }

    // A watch in Table form carries each object as a one-row Table.
    private string AsTableEvent(ResourceType type, string line, bool includeObject)
    {
        var watchEvent = JsonNode.Parse(line)!.AsObject();
        var obj = watchEvent["object"]!.AsObject();
        var version = obj["metadata"]?["resourceVersion"]?.GetValue<string>();
        watchEvent["object"] = TableConverter.ToTable(type, [obj], version, null, includeObject, _time.GetUtcNow());
        return watchEvent.ToJsonString(KubeResponses.JsonOptions);
    }

    // kube-apiserver's registry finalizeDelete for a type without ReturnDeletedObject: a Success Status whose details name
    // the object, its group (omitted when empty), its resource as "kind" (sic, as kube-apiserver sets it) and its uid.
    private static JsonObject DeletedStatus(ResourceType type, JsonObject deleted)
    {
        var metadata = deleted["metadata"] as JsonObject;
        var details = new JsonObject { ["name"] = metadata?["name"]?.GetValue<string>() ?? "" };
        if (type.Group.Length > 0)
        {
            details["group"] = type.Group;
        }
        details["kind"] = type.Resource;
        if (metadata?["uid"]?.GetValue<string>() is { Length: > 0 } uid)
        {
            details["uid"] = uid;
        }
        return new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Success",
            ["details"] = details,
        };
    }

    private static JsonObject ListBody(ResourceType type, IReadOnlyList<JsonObject> items, string resourceVersion, string? continueToken, long? remaining)
    {
        var metadata = new JsonObject { ["resourceVersion"] = resourceVersion };
        if (continueToken is not null)
        {
            metadata["continue"] = continueToken;
        }
        if (remaining is not null)
        {
            metadata["remainingItemCount"] = remaining;
        }
        var array = new JsonArray();
        foreach (var item in items)
        {
            array.Add(item);
        }
        return new JsonObject
        {
            ["kind"] = type.ListKind,
            ["apiVersion"] = type.ApiVersion,
            ["metadata"] = metadata,
            ["items"] = array,
        };
    }

    private static LabelSelector LabelSelectorOf(HttpContext context)
    {
        try
        {
            return LabelSelector.Parse(context.Request.Query["labelSelector"]);
        }
        catch (FormatException e)
        {
            throw ApiException.BadRequest("unable to parse requirement: " + e.Message);
        }
    }

    private static FieldSelector FieldSelectorOf(HttpContext context)
    {
        try
        {
            return FieldSelector.Parse(context.Request.Query["fieldSelector"]);
        }
        catch (FormatException e)
        {
            throw ApiException.BadRequest(e.Message);
        }
    }

    private static async Task<JsonObject> ReadObjectAsync(HttpContext context) =>
        await ReadNodeAsync(context) as JsonObject ?? throw ApiException.BadRequest("the request body must be a JSON object");

    private static async Task<JsonNode?> ReadNodeAsync(HttpContext context)
    {
        var contentType = context.Request.ContentType ?? "";
        if (contentType.StartsWith("application/vnd.kubernetes.protobuf", StringComparison.OrdinalIgnoreCase))
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
            return ProtobufDecoder.Decode(buffer.ToArray());
        }
        if (contentType.Contains("yaml", StringComparison.OrdinalIgnoreCase) || contentType.Contains("protobuf", StringComparison.OrdinalIgnoreCase))
        {
            throw new ApiException(HttpStatusCode.UnsupportedMediaType, "UnsupportedMediaType",
                $"the body of the request was in an unknown format - accepted media types include: application/json");
        }
        try
        {
            return await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest("the request body is not valid JSON: " + e.Message);
        }
    }

}
