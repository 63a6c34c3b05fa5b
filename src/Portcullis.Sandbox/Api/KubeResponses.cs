using System.Net;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Portcullis.Sandbox.Storage;

namespace Portcullis.Sandbox.Api;

/// <summary>Writes JSON bodies and Kubernetes Status objects.</summary>
internal static class KubeResponses
{
    /// <summary>Like kube-apiserver, leave '+' and non-ASCII readable; HTML-sensitive characters stay escaped.</summary>
    public static readonly JsonSerializerOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static async Task WriteJsonAsync(HttpContext context, JsonNode body, HttpStatusCode code = HttpStatusCode.OK)
    {
        context.Response.StatusCode = (int)code;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(JsonOptions), context.RequestAborted);
    }

    public static Task WriteStatusAsync(HttpContext context, ApiException error) =>
        WriteJsonAsync(context, Status(error), error.Code);

    public static Task WriteNotFoundAsync(HttpContext context) =>
        WriteStatusAsync(context, new ApiException(HttpStatusCode.NotFound, "NotFound", "the server could not find the requested resource"));

    /// <summary>A failure Status with the shape kube-apiserver uses.</summary>
    public static JsonObject Status(ApiException error)
    {
        ArgumentNullException.ThrowIfNull(error);
        var status = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = error.Message,
            ["reason"] = error.Reason,
        };
        if (error.Name is not null || error.Resource is not null)
        {
            var details = new JsonObject();
            if (error.Name is not null)
            {
                details["name"] = error.Name;
            }
            if (error.Resource is { Group.Length: > 0 })
            {
                details["group"] = error.Resource.Group;
            }
            if (error.Resource is not null)
            {
                details["kind"] = error.Resource.Resource;
            }
            status["details"] = details;
        }
        status["code"] = (int)error.Code;
        return status;
    }
}
