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

    /// <summary>
    /// 431 as kube-apiserver's Go HTTP server writes it for a header block over its limit: plain text
    /// <c>431 Request Header Fields Too Large</c>, and the connection is closed (HTTP/1.x).
    /// </summary>
    public static Task HeaderFieldsTooLargeAsync(HttpContext context)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status431RequestHeaderFieldsTooLarge;
        response.ContentType = "text/plain; charset=utf-8";
        response.Headers.XContentTypeOptions = "nosniff";
        CloseAfterResponse(context);
        response.ContentLength = HeaderFieldsTooLargeBody.Length;
        return HttpMethods.IsHead(context.Request.Method) ? Task.CompletedTask : response.Body.WriteAsync(HeaderFieldsTooLargeBody, 0, HeaderFieldsTooLargeBody.Length);
    }

    private static readonly byte[] HeaderFieldsTooLargeBody = "431 Request Header Fields Too Large"u8.ToArray();

    /// <summary>
    /// HTTP/1.x: <c>Connection: close</c>, so that Kestrel neither drains an unread request body nor reads another request
    /// from a client that broke a limit (HTTP/2 resets the stream instead).
    /// </summary>
    public static void CloseAfterResponse(HttpContext context)
    {
        if (HttpProtocol.IsHttp11(context.Request.Protocol) || HttpProtocol.IsHttp10(context.Request.Protocol))
        {
            context.Response.Headers.Connection = "close";
        }
    }

    /// <summary>kube-apiserver's 500 for an authorizer error or a failed RequestInfo: plain text.</summary>
    public static Task InternalErrorTextAsync(HttpContext context, string message)
    {
        var response = context.Response;
        response.StatusCode = 500;
        response.ContentType = "text/plain; charset=utf-8";
        response.Headers.XContentTypeOptions = "nosniff";
        return response.WriteAsync($"Internal Server Error: \"{context.Request.Path}{context.Request.QueryString}\": {message}");
    }

    /// <summary>kube-apiserver's TooManyRequests answer (responsewriters' tooManyRequests): plain text and Retry-After.</summary>
    public static Task TooManyRequestsAsync(HttpContext context, int retryAfterSeconds)
    {
        var response = context.Response;
        response.StatusCode = 429;
        response.ContentType = "text/plain; charset=utf-8";
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return response.WriteAsync("Too many requests, please try again later.\n");
    }
}
