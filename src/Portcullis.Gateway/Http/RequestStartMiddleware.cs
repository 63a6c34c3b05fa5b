using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Portcullis.Configuration;
using Portcullis.Authorization;
using Portcullis.Network;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;
using Portcullis.Gateway.Snapshots;
using Portcullis.Gateway.Streams;

namespace Portcullis.Gateway.Http;

/// <summary>
/// Runs before the six layers: picks the snapshot, assigns the Audit-ID, sets Cache-Control as kube-apiserver does,
/// refuses a request with more headers than <see cref="RequestHeaderLimits"/> allow (431), a <c>Connection</c> header
/// that nominates an identity header (400) and a path <see cref="PathGuard"/> refuses (400), and computes the
/// RequestInfo. A refused request still gets its <see cref="GatewayRequestFeature"/>, marked rejected by <c>http</c>,
/// so that the audit stage measures and audits it: an attack that never reaches authentication is
/// exactly what the audit log must show.
/// </summary>
internal sealed class RequestStartMiddleware(RequestDelegate next, SnapshotHolder snapshots, StreamRegistry streams, Refusals refusals,
    SourceBans bans, ILogger<RequestStartMiddleware> logger, TimeProvider time)
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

        // The raw target, not Kestrel's decoded and dot-normalized Path: RequestInfo must see what kube-apiserver sees.
        var target = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget ?? request.Path.ToUriComponent();
        var q = target.IndexOf('?', StringComparison.Ordinal);
        var rawPath = q < 0 ? target : target[..q];
        var query = request.QueryString.HasValue ? request.QueryString.Value![1..] : "";

        // The snapshot is entered once per request (NewFeature), but which proxies are trusted is read here already: a
        // reload in between only changes which snapshot a request runs on, and both answers are of a valid configuration.
        var current = snapshots.Current;
        var source = ResolveSource(context, current.TrustedProxies);
        if (RequestHeaderLimits.Check(request.Headers, current.Config.Limits) is { } tooMany)
        {
            return RefuseAsync(context, auditId, rawPath, query, source, Refusal.HeaderFieldsTooLarge(RefusalLayers.Http, tooMany));
        }
        if (source?.Error is { } unreadable)
        {
            // Fail closed: a trusted proxy's chain that cannot be read is neither believed nor blamed on the proxy.
            Log.ForwardedRefused(logger, "an unreadable chain", source!.Client.ToString(), unreadable);
            return RefuseAsync(context, auditId, rawPath, query, source, BadRequest(unreadable));
        }
        if (source is { ViaProxy: true } && NetworkRefusal(source) is { } refused)
        {
            return RefuseAsync(context, auditId, rawPath, query, source, refused);
        }

        HashSet<string>? nominatedHeaders = null;
        foreach (var nominated in HeaderHygiene.ConnectionNominated(request.Headers))
        {
            if (HeaderHygiene.IsIdentityHeader(nominated))
            {
                var message = $"the Connection header may not nominate the {nominated} header";
                // A client that tries this gets no second request on the connection.
                return RefuseAsync(context, auditId, rawPath, query, source, BadRequest(message, closeConnection: true));
            }
            (nominatedHeaders ??= new(StringComparer.Ordinal)).Add(HeaderHygiene.Normalize(nominated));
        }

        // PathGuard first (400 for a path kube-apiserver and a router could read differently), then RequestInfo itself
        // (500 text, as kube-apiserver answers for /api/v1/watch without a resource).
        if (!RequestInfoParser.TryParse(request.Method, rawPath, query, out var info, out var error))
        {
            if (error.StatusCode == 400)
            {
                return RefuseAsync(context, auditId, rawPath, query, source, BadRequest(error.Message));
            }
            // error.Message is kube-apiserver's "failed to create RequestInfo: ..." already.
            return RefuseAsync(context, auditId, rawPath, query, source, Refusal.InternalError(RefusalLayers.Http, error.Message, error.Message));
        }

        var feature = NewFeature(context, auditId, info, source, nominatedHeaders);
        context.Features.Set(feature);
        if (info.IsLongRunning)
        {
            ExemptFromDataRates(context);
            return TrackedAsync(context, feature);
        }
        return next(context);
    }

    private GatewayRequestFeature NewFeature(HttpContext context, string auditId, RequestInfo info, ForwardedSource? source, HashSet<string>? nominatedHeaders = null) => new()
    {
        ConnectionNominated = nominatedHeaders,
        Snapshot = snapshots.Enter(), // left by the audit stage when the request's record is complete
        AuditId = auditId,
        RequestInfo = info,
        ReceivedAt = time.GetUtcNow(),
        ReceivedTimestamp = time.GetTimestamp(),
        SourceAddress = source?.Client,
        PeerAddress = context.Connection.RemoteIpAddress is { } ip ? Cidr.Normalize(ip) : null,
        ViaProxy = source?.ViaProxy ?? false,
        SourceIps = source?.SourceIps ?? [],
    };

    /// <summary>
    /// The client of the request: the peer, or the client a trusted proxy names (<see cref="ForwardedFor"/>). Null when
    /// the connection has no IP peer.
    /// </summary>
    private static ForwardedSource? ResolveSource(HttpContext context, CidrSet trustedProxies)
    {
        if (context.Connection.RemoteIpAddress is not { } peer)
        {
            return null;
        }
        peer = Cidr.Normalize(peer);
        if (trustedProxies.IsEmpty || !trustedProxies.Contains(peer))
        {
            return ForwardedSource.Direct(peer); // the headers of any other peer are ignored (and never forwarded)
        }
        var headers = context.Request.Headers;
        return ForwardedFor.Resolve(peer, trustedProxies, [.. headers["X-Forwarded-For"].OfType<string>()], [.. headers["Forwarded"].OfType<string>()]);
    }

    /// <summary>
    /// L1 for a client behind a trusted proxy: the accept-time check saw only the proxy, so network.allow/deny and the bans
    /// are applied to the client here, on every request. The proxy's connection stays open for its other clients.
    /// </summary>
    private Refusal? NetworkRefusal(ForwardedSource source)
    {
        string? reason = null;
        if (!snapshots.Current.IsAllowed(source.Client))
        {
            reason = "the client address is refused by network policy";
        }
        else if (bans.IsBanned(source.Client))
        {
            reason = "the client address is banned";
        }
        if (reason is null)
        {
            return null;
        }
        Log.ForwardedRefused(logger, source.Client.ToString(), source.SourceIps[^1].ToString(), reason);
        return Refusal.WithStatus(RefusalLayers.Network, StatusCodes.Status403Forbidden, "Forbidden", "forbidden: " + reason);
    }

    private static Refusal BadRequest(string message, bool closeConnection = false) =>
        Refusal.WithStatus(RefusalLayers.Http, StatusCodes.Status400BadRequest, "BadRequest", message, closeConnection: closeConnection);

    // The refused request's feature, for metrics and the audit event. Its RequestInfo is the real one when the path
    // can be classified (so resource rules of the audit policy apply), else a non-resource request for the raw path.
    private Task RefuseAsync(HttpContext context, string auditId, string rawPath, string query, ForwardedSource? source, Refusal refusal)
    {
        var request = context.Request;
        if (!RequestInfoParser.TryParse(request.Method, rawPath, query, out var info, out _))
        {
            info = RequestInfoParser.NonResource(request.Method.ToLowerInvariant(), rawPath);
        }
        var feature = NewFeature(context, auditId, info, source);
        context.Features.Set(feature);
        return refusals.RefuseAsync(context, feature, refusal);
    }

    /// <summary>
    /// A long-running request (watch, exec/attach/port-forward, logs, proxy) is exempt from Kestrel's minimum data rates
    /// (<c>limits.minRequestBodyDataRate</c>, and the minimum response rate): its body is a terminal's keystrokes and its
    /// response waits for events, so neither may be cut off for being slow. On HTTP/2 Kestrel allows only switching the
    /// request rate off per request (the response rate is the connection's; it counts only while the client leaves
    /// written data unread).
    /// </summary>
    private static void ExemptFromDataRates(HttpContext context)
    {
        if (context.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } body)
        {
            body.MinDataRate = null;
        }
        if (context.Features.Get<IHttpMinResponseDataRateFeature>() is { } response)
        {
            response.MinDataRate = null;
        }
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
