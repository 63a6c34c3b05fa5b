using Microsoft.AspNetCore.Http;
using Portcullis.Authorization;
using Portcullis.Gateway.Hosting;
using Portcullis.Gateway.Streams;

namespace Portcullis.Gateway.Pipeline;

/// <summary>
/// Runs before the six layers: picks the snapshot, assigns the Audit-ID, sets Cache-Control as kube-apiserver does,
/// refuses a <c>Connection</c> header that nominates an identity header, and computes the RequestInfo.
/// </summary>
internal sealed class RequestStartMiddleware(RequestDelegate next, SnapshotHolder snapshots, StreamRegistry streams, TimeProvider time)
{
    private const int MaxAuditIdLength = 64;

    public Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        var auditId = AuditIdFrom(request.Headers["Audit-ID"]);
        context.Response.Headers["Audit-ID"] = auditId;
        context.Response.OnStarting(static state =>
        {
            var response = ((HttpContext)state).Response;
            if (!response.Headers.ContainsKey("Cache-Control"))
            {
                response.Headers.CacheControl = "no-cache, private";
            }
            return Task.CompletedTask;
        }, context);

        HashSet<string>? nominatedHeaders = null;
        foreach (var nominated in HeaderHygiene.ConnectionNominated(request.Headers))
        {
            if (HeaderHygiene.IsIdentityHeader(nominated))
            {
                context.Response.Headers.Connection = "close"; // a client that tries this gets no second request on the connection
                return StatusResponses.BadRequestAsync(context, $"the Connection header may not nominate the {nominated} header");
            }
            (nominatedHeaders ??= new(StringComparer.Ordinal)).Add(HeaderHygiene.Normalize(nominated));
        }

        RequestInfo info;
        try
        {
            // The raw target, not Kestrel's decoded and dot-normalized Path: RequestInfo must see what kube-apiserver sees.
            var target = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget ?? request.Path.ToUriComponent();
            var q = target.IndexOf('?', StringComparison.Ordinal);
            var rawPath = q < 0 ? target : target[..q];
            var guard = PathGuard.Check(rawPath, out _);
            if (guard is not null)
            {
                return StatusResponses.BadRequestAsync(context, guard);
            }
            info = RequestInfoParser.Parse(request.Method, rawPath, request.QueryString.HasValue ? request.QueryString.Value![1..] : "");
        }
        catch (RequestInfoException ex)
        {
            return StatusResponses.InternalErrorTextAsync(context, "failed to create RequestInfo: " + ex.Message);
        }

        var feature = new GatewayRequestFeature
        {
            Snapshot = snapshots.Current,
            AuditId = auditId,
            RequestInfo = info,
            ReceivedAt = time.GetUtcNow(),
            ConnectionNominated = nominatedHeaders,
            SourceAddress = context.Connection.RemoteIpAddress is { } ip ? Portcullis.Network.Cidr.Normalize(ip) : null,
        };
        context.Features.Set(feature);
        return info.IsLongRunning ? TrackedAsync(context, feature) : next(context);
    }

    private async Task TrackedAsync(HttpContext context, GatewayRequestFeature feature)
    {
        using var registration = streams.Register(context, feature);
        await next(context);
    }

    /// <summary>A client Audit-ID is echoed when it is short and of safe characters (so logs cannot be forged); else a new UUID.</summary>
    internal static string AuditIdFrom(Microsoft.Extensions.Primitives.StringValues values)
    {
        if (values.Count == 1 && values[0] is { Length: > 0 and <= MaxAuditIdLength } id && id.All(IsSafe))
        {
            return id;
        }
        return Guid.NewGuid().ToString();
    }

    private static bool IsSafe(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':';
}
