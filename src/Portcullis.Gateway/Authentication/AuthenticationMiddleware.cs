using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Portcullis.Authentication;
using Portcullis.Configuration;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;
using Portcullis.Http;
using Portcullis.Tls;

namespace Portcullis.Gateway.Authentication;

/// <summary>
/// L3: the snapshot's <see cref="AuthenticatorChain"/> with kube-apiserver's union semantics (x509, then the token union:
/// token file, service accounts, OIDC/JWT, webhook; anonymous only without any credential). The client certificate was
/// verified during the handshake; its result is read once per connection. Failure ends the request with kube-apiserver's
/// exact 401 body.
/// </summary>
internal sealed class AuthenticationMiddleware(RequestDelegate next, GatewayMetrics metrics, Refusals refusals, ILogger<AuthenticationMiddleware> logger, TimeProvider time)
{
    private const string ConnectionCacheKey = "portcullis.x509";
    private const string CertificateLifetimeAnnotation = "portcullis.dev/certificate-lifetime";

    private static readonly byte[] PassthroughX509Body = Status.Failure(
        "Unauthorized: upstream.identity is Passthrough, which forwards bearer tokens only; a client certificate cannot be passed through",
        "Unauthorized", 401);

    public async Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetGatewayFeature();
        var snapshot = feature.Snapshot;
        var request = context.Request;

        if (snapshot.IdentityMode == UpstreamIdentityModes.Passthrough && context.Connection.ClientCertificate is not null
            && request.Headers.Authorization.Count == 0)
        {
            await RefuseAsync(context, feature, "client certificate cannot be passed through", "failure", PassthroughX509Body, 0);
            return;
        }

        // tls.clientCertificates with action warn let this certificate in at the handshake; every request on the connection
        // says so in its audit event (also a connection made before a reload turned the policy to refuse).
        if (context.Connection.ClientCertificate is { } presented && snapshot.CertificateLifetime is { } lifetimePolicy
            && lifetimePolicy.IsExceededBy(presented, out var lifetime))
        {
            feature.Annotate(CertificateLifetimeAnnotation, lifetimePolicy.Describe(lifetime));
        }

        var start = time.GetTimestamp();
        var result = await snapshot.Authenticator.AuthenticateAsync(new AuthenticationRequest
        {
            ClientCertificate = CertificateResult(context, snapshot.Authenticator),
            AuthorizationHeaders = request.Headers.Authorization.Count == 0 ? [] : [.. request.Headers.Authorization.Select(v => v ?? "")],
            WebSocketProtocols = request.Headers.SecWebSocketProtocol.Count == 0 ? [] : [.. request.Headers.SecWebSocketProtocol.Select(v => v ?? "")],
            IsUpgrade = request.Headers.Upgrade.Count > 0 || HttpMethods.IsConnect(request.Method),
            Path = request.Path.Value ?? "/",
        }, context.RequestAborted);
        var seconds = time.GetElapsedTime(start).TotalSeconds;

        if (result.RewrittenWebSocketProtocol is { } protocols)
        {
            // The bearer token rode in the subprotocol list: it never goes further than this layer.
            if (protocols.Length == 0)
            {
                request.Headers.Remove("Sec-WebSocket-Protocol");
            }
            else
            {
                request.Headers.SecWebSocketProtocol = protocols;
            }
        }
        foreach (var (key, value) in result.AuditAnnotations)
        {
            feature.Annotate(key, value);
        }

        if (!result.Authenticated || result.User is null)
        {
            await RefuseAsync(context, feature, result.FailureReason ?? "no credentials provided", result.IsError ? "error" : "failure", Status.Unauthorized, seconds);
            return;
        }
        metrics.Authentication.Record(result.Authenticator, "success", seconds);
        feature.Authenticate(result.User, result.Authenticator, result.TokenDigest?.ToHex(),
            result.Authenticator == "x509" ? context.Connection.ClientCertificate?.SerialNumber : null);
        feature.Annotate("portcullis.dev/authenticator", result.Authenticator);
        await next(context);
    }

    private Task RefuseAsync(HttpContext context, GatewayRequestFeature feature, string reason, string result, byte[] body, double seconds)
    {
        metrics.Authentication.Record("", result, seconds); // a refusal has no deciding authenticator: "none"
        feature.Annotate("portcullis.dev/authentication", reason);
        Log.AuthenticationFailed(logger, feature.SourceAddress?.ToString() ?? "", reason); // the client, also behind a trusted proxy
        return refusals.RefuseAsync(context, feature, Refusal.WithBody(RefusalLayers.Authentication, StatusCodes.Status401Unauthorized, body));
    }

    // The handshake already verified the certificate (a failure never gets here); the validator caches by certificate
    // hash and the result object is kept on the connection so every request on it shares one.
    private static ClientCertificateResult? CertificateResult(HttpContext context, AuthenticatorChain chain)
    {
        var cert = context.Connection.ClientCertificate;
        if (cert is null || chain.CertificateValidator is not { } validator)
        {
            return null;
        }
        var items = context.Features.Get<IConnectionItemsFeature>()?.Items;
        if (items is not null && items.TryGetValue(ConnectionCacheKey, out var cached) && cached is ClientCertificateResult r)
        {
            return r;
        }
        var result = validator.Validate(cert);
        if (items is not null)
        {
            items[ConnectionCacheKey] = result;
        }
        return result;
    }
}
