using Microsoft.AspNetCore.Http;
using Portcullis.Authentication;
using Portcullis.Authorization;
using Portcullis.Gateway.Snapshots;

namespace Portcullis.Gateway.Pipeline;

/// <summary>
/// Per-request state carried through the six layers; set by the first layer, read by the rest. What only an authenticated
/// request has is in <see cref="AuthenticatedRequest"/>.
/// </summary>
internal sealed class GatewayRequestFeature
{
    public required GatewaySnapshot Snapshot { get; init; }
    public required string AuditId { get; init; }
    public required RequestInfo RequestInfo { get; init; }
    public required DateTimeOffset ReceivedAt { get; init; }
    /// <summary>The host clock's monotonic timestamp (<see cref="TimeProvider.GetTimestamp"/>) when the request entered the
    /// pipeline: durations measured from here do not move with the wall clock. 0 where the request did not come through
    /// the request-start stage.</summary>
    public long ReceivedTimestamp { get; init; }

    /// <summary>Set by the authentication stage; null before it and on a request it refused.</summary>
    public AuthenticatedRequest? Authenticated { get; private set; }

    /// <summary>The authentication stage's success: from here on the request has a user.</summary>
    public AuthenticatedRequest Authenticate(UserInfo user, string authenticator, string? tokenSha256, string? certificateSerial)
    {
        if (Authenticated is not null)
        {
            throw new InvalidOperationException("the request is already authenticated");
        }
        Authenticated = new AuthenticatedRequest(this, user, authenticator, tokenSha256, certificateSerial);
        return Authenticated;
    }

    /// <summary>Normalized names the client listed in <c>Connection</c> (hop-by-hop: never forwarded); null when none.</summary>
    public HashSet<string>? ConnectionNominated { get; init; }

    /// <summary>
    /// The client's address: the TCP peer's (after a PROXY protocol header), or, when the peer is in
    /// <c>network.trustedProxies</c>, the client its X-Forwarded-For / Forwarded header names. Every check (allow/deny,
    /// bans, network scopes, the deny list) and every log line uses it.
    /// </summary>
    public System.Net.IPAddress? SourceAddress { get; init; }

    /// <summary>The TCP peer's address (a trusted proxy when <see cref="ViaProxy"/>).</summary>
    public System.Net.IPAddress? PeerAddress { get; init; }

    /// <summary>The client was named by a trusted proxy's forwarding header: the connection is the proxy's, shared.</summary>
    public bool ViaProxy { get; init; }

    /// <summary>The audit event's <c>sourceIPs</c>: the believed forwarded chain, client first, then the peer.</summary>
    public IReadOnlyList<System.Net.IPAddress> SourceIps { get; init; } = [];

    /// <summary>
    /// The request body as the body stage read it (<c>limits.maxRequestBodyBytes</c> at most), whatever its framing
    /// (Content-Length, chunked, HTTP/2 DATA frames); null when the stage did not read one (no body, a long-running or
    /// upgrade request, or a stage before it).
    /// </summary>
    public ReadOnlyMemory<byte>? RequestBody { get; set; }

    /// <summary>Audit annotations; written by any layer through <see cref="Annotate"/>, read by L6.</summary>
    public Dictionary<string, string> Annotations { get; } = new(StringComparer.Ordinal);

    /// <summary>The request's audit record once authentication succeeded (Disabled when the policy says None).</summary>
    public Portcullis.Audit.AuditRequest Audit { get; set; } = Portcullis.Audit.AuditRequest.Disabled;

    public void Annotate(string key, string value)
    {
        Annotations[key] = value;
        Audit.AddAnnotation(key, value);
    }

    /// <summary>Which layer ended the request early, if any (for metrics and audit).</summary>
    public string? RejectedBy { get; set; }

    /// <summary>The Status a refusing layer answered with, as the audit event's responseStatus (null: the code only).</summary>
    public Portcullis.Audit.AuditResponseStatus? RefusalStatus { get; set; }
}

internal static class GatewayRequestFeatureExtensions
{
    /// <summary>
    /// What YARP forwards as an upgrade: an HTTP/1.1 upgradable request or an HTTP/2 WebSocket CONNECT. Such a request
    /// streams (its body is never read by the gateway) and gets an upstream connection of its own.
    /// </summary>
    public static bool IsUpgradeRequest(this HttpContext context) =>
        context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpUpgradeFeature>()?.IsUpgradableRequest == true
        || context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpExtendedConnectFeature>()?.IsExtendedConnect == true;

    public static GatewayRequestFeature GetGatewayFeature(this HttpContext context) =>
        context.Features.Get<GatewayRequestFeature>() ?? throw new InvalidOperationException("the request did not pass the first layer");

    /// <summary>The state of a request past authentication; for the stages after it.</summary>
    public static AuthenticatedRequest GetAuthenticatedRequest(this HttpContext context) =>
        context.GetGatewayFeature().Authenticated ?? throw new InvalidOperationException("the request did not pass authentication");
}
