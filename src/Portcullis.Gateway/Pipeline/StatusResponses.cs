using Microsoft.AspNetCore.Http;
using Portcullis.Http;

namespace Portcullis.Gateway.Pipeline;

/// <summary>Writes Kubernetes Status responses with the headers kube-apiserver sends.</summary>
internal static class StatusResponses
{
    public static Task WriteAsync(HttpContext context, int code, byte[] body)
    {
        var response = context.Response;
        response.StatusCode = code;
        response.ContentType = "application/json";
        response.Headers.XContentTypeOptions = "nosniff";
        response.ContentLength = body.Length;
        return HttpMethods.IsHead(context.Request.Method) ? Task.CompletedTask : response.Body.WriteAsync(body, 0, body.Length);
    }

    public static Task BadRequestAsync(HttpContext context, string message) =>
        WriteAsync(context, 400, Status.Failure(message, "BadRequest", 400));

    /// <summary>kube-apiserver's 500 for an authorizer error or a failed RequestInfo: plain text.</summary>
    public static Task InternalErrorTextAsync(HttpContext context, string message)
    {
        var response = context.Response;
        response.StatusCode = 500;
        response.ContentType = "text/plain; charset=utf-8";
        response.Headers.XContentTypeOptions = "nosniff";
        return response.WriteAsync($"Internal Server Error: \"{context.Request.Path}{context.Request.QueryString}\": {message}");
    }
}
