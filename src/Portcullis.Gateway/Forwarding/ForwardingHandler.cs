using System.Net.Http.Headers;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Portcullis.Audit;
using Portcullis.Authentication;
using Portcullis.Diagnostics;
using Portcullis.Configuration;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;
using Portcullis.Gateway.Snapshots;
using Portcullis.Gateway.Upstream;
using Portcullis.Http;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;

namespace Portcullis.Gateway.Forwarding;

/// <summary>
/// Forwards an admitted request to kube-apiserver with YARP. Every client-supplied identity header is removed, every
/// forwarded value is checked, and the identity lines for the effective user are registered with the upstream client's
/// <see cref="IdentityBlocks"/> for <see cref="UpstreamHeaderFilter"/> to write; upgrades (WebSocket, SPDY) go upstream
/// over HTTP/1.1 on a connection of their own and are tunnelled only after the upstream answered 101; redirects are
/// passed back, never followed.
/// </summary>
internal sealed class ForwardingHandler(IHttpForwarder forwarder, Refusals refusals, ILogger<ForwardingHandler> logger)
{
    // Watches, exec, attach, port-forward, logs and proxy have no request timeout (as in kube-apiserver).
    private static readonly ForwarderRequestConfig LongRunning = new()
    {
        ActivityTimeout = TimeSpan.FromDays(1),
        Version = System.Net.HttpVersion.Version11,
        VersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };


    public async Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetGatewayFeature();
        var snapshot = feature.Snapshot;
        var config = feature.RequestInfo.IsLongRunning ? LongRunning : snapshot.ShortRequest;

        // Every value the upstream will receive is checked before anything is sent: a client header an HTTP parser
        // would read differently is refused, and the identity must survive the wire unchanged.
        if (FirstUnforwardableHeader(context.Request.Headers) is { } bad)
        {
            await RefuseAsync(context, feature, RefusalLayers.Http, 400, "BadRequest",
                $"the value of the {SafeText.Of(bad)} header contains a character that cannot be forwarded (only visible ASCII, space and tab)");
            return;
        }
        var (user, mode) = UpstreamUser(context, context.GetAuthenticatedRequest(), snapshot.IdentityMode);
        var identity = UpstreamIdentity.Build(user, mode, out var problem);
        if (identity is null)
        {
            Log.IdentityNotForwardable(logger, problem ?? "identity");
            await RefuseAsync(context, feature, RefusalLayers.Upstream, 500, "InternalError", $"the {problem} of the authenticated user cannot be sent to the upstream");
            return;
        }

        var upstream = snapshot.UpstreamClient;
        var upgrade = context.IsUpgradeRequest();
        var transformer = new IdentityTransformer(feature, snapshot, identity);
        var invoker = upgrade ? upstream.ForUpgrade() : upstream.Pooled;
        ForwarderError error;
        try
        {
            error = await forwarder.SendAsync(context, upstream.Destination, invoker, config, transformer);
        }
        finally
        {
            transformer.Registration?.Dispose();
            if (upgrade)
            {
                invoker.Dispose();
            }
        }
        if (error == ForwarderError.None)
        {
            if (transformer.AmbiguousFraming)
            {
                Log.ForwardingError(logger, "ResponseFraming", context.Request.Method, context.Request.Path.Value ?? "", AmbiguousFramingReason);
                await RefuseAsync(context, feature, RefusalLayers.Upstream, 502, "InternalError",
                    "the upstream kube-apiserver answered with both Content-Length and Transfer-Encoding; an answer of ambiguous length is not passed on",
                    AmbiguousFramingReason);
            }
            return;
        }
        var exception = context.GetForwarderErrorFeature()?.Exception;
        var refused = FindRefusal(exception);
        var reason = refused?.Message ?? exception?.GetBaseException().Message ?? error.ToString();
        if (IsClientGone(error))
        {
            Log.ForwardingClientGone(logger, error.ToString(), context.Request.Method, context.Request.Path.Value ?? "", reason);
        }
        else
        {
            Log.ForwardingError(logger, error.ToString(), context.Request.Method, context.Request.Path.Value ?? "", reason);
        }
        if (context.Response.HasStarted)
        {
            return; // a stream broke mid-way; nothing more can be said to the client
        }
        context.Response.Clear();
        if (refused is not null)
        {
            await RefuseAsync(context, feature, RefusalLayers.Upstream, 502, "InternalError", "the gateway refused to send this request upstream", refused.Message);
        }
        else if (error is ForwarderError.RequestTimedOut)
        {
            await RefuseAsync(context, feature, RefusalLayers.Upstream, 504, "Timeout", "Timeout: request did not complete within the allotted timeout");
        }
        else if (error is ForwarderError.Request or ForwarderError.RequestCreation)
        {
            await RefuseAsync(context, feature, RefusalLayers.Upstream, 503, "ServiceUnavailable", "the upstream kube-apiserver is unavailable");
        }
        else if (error is ForwarderError.UpgradeRequestCanceled or ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled)
        {
            // The client went away.
        }
        else
        {
            await RefuseAsync(context, feature, RefusalLayers.Upstream, 502, "InternalError", "error talking to the upstream kube-apiserver");
        }
    }

    // YARP's client-side errors: *Canceled is the client's RequestAborted firing (a closed connection, an HTTP/2 reset, or
    // the gateway closing a stream at shutdown or a deny-list reload), *Client a failed read from or write to the client.
    // The upstream's (Request, ResponseHeaders, *Destination, RequestTimedOut, ...) stay Warnings.
    private static bool IsClientGone(ForwarderError error) => error is
        ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.RequestBodyClient or
        ForwarderError.ResponseBodyCanceled or ForwarderError.ResponseBodyClient or
        ForwarderError.UpgradeRequestCanceled or ForwarderError.UpgradeRequestClient or
        ForwarderError.UpgradeResponseCanceled or ForwarderError.UpgradeResponseClient;

    private const string AmbiguousFramingReason = "the upstream answer had both Content-Length and Transfer-Encoding";

    /// <summary>A refusal of this layer: Status body, audit annotations (<c>portcullis.dev/rejected-by</c>, the reason), counter.</summary>
    private Task RefuseAsync(HttpContext context, GatewayRequestFeature feature, string layer, int code, string reason, string message, string? auditReason = null) =>
        refusals.RefuseAsync(context, feature, Refusal.WithStatus(layer, code, reason, message, auditReason));

    private static UpstreamHeaderException? FindRefusal(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is UpstreamHeaderException refused)
            {
                return refused;
            }
        }
        return null;
    }

    /// <summary>The first client header whose value is not visible ASCII, SP and HTAB; null when all are.</summary>
    internal static string? FirstUnforwardableHeader(IHeaderDictionary headers)
    {
        foreach (var (name, values) in headers)
        {
            foreach (var value in values)
            {
                if (value is not null && !FieldValues.IsForwardable(value))
                {
                    return name;
                }
            }
        }
        return null;
    }

    /// <summary>
    /// Who the upstream must act for, and in which identity mode the lines are written. Passthrough acts with the
    /// client's own credentials, so an allowed <c>kubectl --as</c> goes along as <c>Impersonate-*</c> lines exactly as
    /// the client asked for it (the groups it named, none the gateway derived), for the upstream to check against the
    /// client's own rights; without them the upstream would act for the token's user while the gateway authorized the
    /// impersonated one.
    /// </summary>
    private static (UserInfo User, string Mode) UpstreamUser(HttpContext context, AuthenticatedRequest authenticated, string mode)
    {
        if (mode != UpstreamIdentityModes.Passthrough || authenticated.ImpersonatedUser is not { } impersonated)
        {
            return (authenticated.EffectiveUser, mode);
        }
        string[] requestedGroups = [.. context.Request.Headers[Portcullis.Authorization.Impersonation.ImpersonationHeaders.GroupHeader].Select(g => g ?? "")];
        return (impersonated with { Groups = requestedGroups }, UpstreamIdentityModes.Impersonate);
    }

    /// <summary>
    /// Passthrough: the client's Authorization header, only when its bearer token is the one that authenticated the
    /// request. A token the gateway refused (the subprotocol token authenticated instead) or never read (a Basic header,
    /// an anonymous request) would have the upstream act for someone the gateway did not check.
    /// </summary>
    private static string? AuthenticatedAuthorization(HttpContext context, GatewayRequestFeature feature)
    {
        if (context.Request.Headers.Authorization is not [{ } header] || feature.Authenticated?.TokenSha256 is not { } authenticated)
        {
            return null;
        }
        var token = AuthenticatorChain.ParseBearerToken(header, out _);
        return token is not null && TokenDigest.Of(token).ToHex() == authenticated ? header : null;
    }

    /// <summary>Strips what the client may not send upstream and adds the identity the gateway vouches for.</summary>
    private sealed class IdentityTransformer(GatewayRequestFeature feature, GatewaySnapshot snapshot, byte[] identity) : HttpTransformer
    {
        public IdentityBlocks.Registration? Registration { get; private set; }

        /// <summary>The upstream answered with both Content-Length and Transfer-Encoding; nothing of it was copied.</summary>
        public bool AmbiguousFraming { get; private set; }

        public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
        {
            await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
            var headers = proxyRequest.Headers;
            Strip(headers, feature.ConnectionNominated);
            if (proxyRequest.Content is not null)
            {
                Strip(proxyRequest.Content.Headers, feature.ConnectionNominated);
            }
            // The Host (and so the upstream's virtual host) is the kubeconfig's server, never the client's.
            headers.Host = snapshot.UpstreamClient.HostHeader;
            HeaderHygiene.RemoveBearerSubprotocols(headers);

            headers.TryAddWithoutValidation("Audit-ID", feature.AuditId);
            // Every forwarding header the client sent was stripped above; the gateway writes its own X-Forwarded-For: the
            // peer, or behind a trusted proxy the believed chain (client first) and the peer, so kube-apiserver's audit
            // shows the same sourceIPs followed by the gateway's own address.
            if (feature.SourceIps.Count > 0)
            {
                headers.TryAddWithoutValidation("X-Forwarded-For", string.Join(", ", feature.SourceIps));
            }
            switch (snapshot.IdentityMode)
            {
                case UpstreamIdentityModes.Impersonate:
                case UpstreamIdentityModes.RequestHeader:
                    if (snapshot.Upstream.Token is { Length: > 0 } token)
                    {
                        headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                    }
                    break;
                case UpstreamIdentityModes.Passthrough:
                    if (AuthenticatedAuthorization(httpContext, feature) is { } authorization)
                    {
                        headers.TryAddWithoutValidation("Authorization", authorization);
                    }
                    break;
                default:
                    throw new InvalidOperationException("unknown identity mode");
            }
            Registration?.Dispose();
            Registration = snapshot.UpstreamClient.Identities.Register(headers, identity);
        }

        /// <summary>
        /// A long-running answer (a watch, a followed log) goes to the client with its headers at once, as kube-apiserver
        /// flushes them: an empty watch would otherwise hold them until its first event, and a client that waits for
        /// them before it acts (client-node's <c>Watch.watch</c> resolves on the headers) would wait as long.
        /// </summary>
        public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
        {
            // RFC 9112 section 6.3: both framings on one answer "ought to be handled as an error" — it is how a response is
            // split or smuggled, and kube-apiserver never sends it. Nothing of it is copied; the handler answers 502.
            if (proxyResponse is not null
                && proxyResponse.Headers.NonValidated.Contains("Transfer-Encoding")
                && proxyResponse.Content.Headers.NonValidated.Contains("Content-Length"))
            {
                AmbiguousFraming = true;
                return false;
            }
            // The fields the gateway set before forwarding (Audit-ID) are its own, not the upstream connection's to remove.
            var own = proxyResponse is not null && proxyResponse.Headers.NonValidated.Contains("Connection")
                ? httpContext.Response.Headers.Keys.ToHashSet(StringComparer.OrdinalIgnoreCase)
                : null;
            var proceed = await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken);
            if (proceed && own is not null && proxyResponse!.StatusCode != System.Net.HttpStatusCode.SwitchingProtocols)
            {
                RemoveNominated(httpContext.Response.Headers, proxyResponse.Headers, own);
            }
            if (proceed && feature.RequestInfo.IsLongRunning && proxyResponse is { StatusCode: System.Net.HttpStatusCode.OK })
            {
                // StartAsync alone leaves the head in Kestrel's output buffer; a flush sends it.
                await httpContext.Response.Body.FlushAsync(cancellationToken);
            }
            return proceed;
        }

        /// <summary>
        /// The fields the upstream named in its Connection header belong to the upstream connection alone (RFC 9110
        /// section 7.6.1): YARP drops the standard hop-by-hop fields but passes these on. A 101 keeps its Upgrade. A field
        /// the gateway set itself before forwarding (<paramref name="own"/>) is kept as an upstream that does not name it
        /// would leave it.
        /// </summary>
        private static void RemoveNominated(IHeaderDictionary response, HttpResponseHeaders upstream, HashSet<string> own)
        {
            if (!upstream.NonValidated.TryGetValues("Connection", out var values))
            {
                return;
            }
            foreach (var value in values)
            {
                foreach (var name in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    if (!own.Contains(name))
                    {
                        response.Remove(name);
                    }
                }
            }
        }

        // Identity and forwarding headers, and any header the client named in Connection (hop-by-hop).
        private static void Strip(System.Net.Http.Headers.HttpHeaders headers, HashSet<string>? nominated)
        {
            foreach (var name in headers.Select(h => h.Key).ToList())
            {
                if (HeaderHygiene.IsProtected(name) || (nominated?.Contains(HeaderHygiene.Normalize(name)) ?? false))
                {
                    headers.Remove(name);
                }
            }
        }
    }
}
