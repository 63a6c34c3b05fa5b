using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Portcullis.Audit;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;
using Portcullis.Http;

namespace Portcullis.Gateway.Http;

/// <summary>
/// After authorization, where kube-apiserver's handlers read a body: reads the whole body of a request that is not
/// long-running, up to <c>limits.maxRequestBodyBytes</c> (kube-apiserver's <c>--max-request-body-bytes</c>, 3 MiB by
/// default), before any of it is forwarded. A larger body is answered with kube-apiserver's 413 Status and nothing goes
/// upstream: at once when Content-Length says so, as soon as the count passes the limit for a chunked body. The bytes
/// read are what is forwarded and what the audit record gets (objectRef completed from the metadata; the object kept at
/// Request level and above), whatever the framing. Upgrades and long-running requests (exec and attach stdin,
/// port-forward, proxy) stream through unread and unlimited, as kube-apiserver lets them.
/// </summary>
internal sealed class RequestBodyMiddleware(RequestDelegate next, Refusals refusals)
{
    private const int FirstChunkBytes = 16 * 1024;

    public Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetGatewayFeature();
        if (feature.RequestInfo.IsLongRunning || context.IsUpgradeRequest() || !HasBody(context))
        {
            return next(context);
        }
        return ReadAsync(context, feature);
    }

    private static bool HasBody(HttpContext context) =>
        context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody
        ?? (context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0);

    private async Task ReadAsync(HttpContext context, GatewayRequestFeature feature)
    {
        var request = context.Request;
        var limit = feature.Snapshot.Config.Limits.MaxRequestBodyBytes;
        if (request.ContentLength > limit)
        {
            await TooLargeAsync(context, feature, limit, $"the request body (Content-Length {request.ContentLength.Value.ToString(CultureInfo.InvariantCulture)})");
            return;
        }
        // The gateway counts; Kestrel's own body limit (30 MB by default) must not cut in below it. It stays otherwise:
        // after a 413 it bounds how much of the rest Kestrel reads and discards before closing the connection.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size && size.MaxRequestBodySize <= limit)
        {
            size.MaxRequestBodySize = limit + 1L;
        }

        byte[] body;
        int length;
        try
        {
            (body, length) = await ReadBoundedAsync(request.Body, request.ContentLength, limit, context.RequestAborted);
        }
        catch (BadHttpRequestException ex)
        {
            // Malformed chunking, a body shorter than its Content-Length, a client too slow to send it: Kestrel's words.
            await RefuseAsync(context, feature, ex.StatusCode, "the request body could not be read: " + ex.Message);
            return;
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException && context.RequestAborted.IsCancellationRequested)
        {
            // The client went away while sending: there is nobody to answer.
            await refusals.RefuseAsync(context, feature, Refusal.Abandoned(RefusalLayers.Http, StatusCodes.Status400BadRequest,
                "the client closed the connection before the request body was complete"));
            return;
        }
        if (length > limit)
        {
            await TooLargeAsync(context, feature, limit, "the request body");
            return;
        }

        // Replayable for the forwarder (and the SelfSubjectAccessReview check); Content-Length or Transfer-Encoding
        // stay as the client sent them, and still describe exactly these bytes.
        request.Body = new MemoryStream(body, 0, length, writable: false, publiclyVisible: true);
        feature.RequestBody = body.AsMemory(0, length); // what admission (EventRateLimit's SourceAndObject key) reads
        feature.Audit.SetRequestObject(feature.RequestBody.Value);
        await next(context);
    }

    // Reads until the end of the body or until one byte more than the limit has arrived. The buffer grows with what
    // arrives rather than with what Content-Length promises, so a client that announces 3 MiB and sends nothing holds
    // 16 KiB of the gateway's memory, not 3 MiB.
    private static async Task<(byte[] Body, int Length)> ReadBoundedAsync(Stream source, long? contentLength, int limit, CancellationToken cancellationToken)
    {
        var most = Math.Min(contentLength ?? long.MaxValue, limit + 1L);
        var buffer = new byte[(int)Math.Min(most, FirstChunkBytes)];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (length >= most)
                {
                    // Past the limit, or the whole Content-Length body (Kestrel enforces that framing).
                    return (buffer, length);
                }
                Array.Resize(ref buffer, (int)Math.Min(buffer.Length * 2L, most));
            }
            var read = await source.ReadAsync(buffer.AsMemory(length), cancellationToken);
            if (read == 0)
            {
                return (buffer, length);
            }
            length += read;
        }
    }

    private Task TooLargeAsync(HttpContext context, GatewayRequestFeature feature, int limit, string what)
    {
        // kube-apiserver: errors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", limit)) from limitedReadBody.
        var message = "Request entity too large: limit is " + limit.ToString(CultureInfo.InvariantCulture);
        feature.Audit.SetRequestObjectTruncated();
        return refusals.RefuseAsync(context, feature, Refusal.WithStatus(RefusalLayers.Http, StatusCodes.Status413PayloadTooLarge, "RequestEntityTooLarge", message,
            $"{what} is larger than limits.maxRequestBodyBytes ({limit.ToString(CultureInfo.InvariantCulture)} bytes)", closeConnection: true));
    }

    // The rest of the body is never read: the connection closes after the answer.
    private Task RefuseAsync(HttpContext context, GatewayRequestFeature feature, int code, string reason) =>
        refusals.RefuseAsync(context, feature, Refusal.WithStatus(RefusalLayers.Http, code, code switch
        {
            StatusCodes.Status408RequestTimeout => "Timeout",
            StatusCodes.Status413PayloadTooLarge => "RequestEntityTooLarge",
            _ => "BadRequest",
        }, reason, closeConnection: true));
}
