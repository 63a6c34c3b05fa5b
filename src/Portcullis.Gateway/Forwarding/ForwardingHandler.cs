using System.Net.Http.Headers;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Portcullis.Authentication;
using Portcullis.Configuration;
using Portcullis.Gateway.Hosting;
using Portcullis.Gateway.Metrics;
using Portcullis.Gateway.Pipeline;
using Portcullis.Http;
using Yarp.ReverseProxy.Forwarder;

namespace Portcullis.Gateway.Forwarding;

/// <summary>
/// Forwards an admitted request to kube-apiserver with YARP. Every client-supplied identity header is removed and the
/// gateway's own identity headers are set for the effective user; upgrades (WebSocket, SPDY) go upstream over HTTP/1.1
/// and are tunnelled only after the upstream answered 101; redirects are passed back, never followed.
/// </summary>
internal sealed class ForwardingHandler(IHttpForwarder forwarder, GatewayMetrics metrics, ILogger<ForwardingHandler> logger)
{
    // Watches, exec, attach, port-forward, logs and proxy have no request timeout (as in kube-apiserver).
    private static readonly ForwarderRequestConfig LongRunning = new()
    {
        ActivityTimeout = TimeSpan.FromDays(1),
        Version = System.Net.HttpVersion.Version11,
        VersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    private static readonly byte[] Unavailable = Status.Failure("the upstream kube-apiserver is unavailable", "ServiceUnavailable", 503);
    private static readonly byte[] GatewayTimeout = Status.Failure("Timeout: request did not complete within the allotted timeout", "Timeout", 504);

    public async Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetGatewayFeature();
        var snapshot = feature.Snapshot;
        var config = feature.RequestInfo.IsLongRunning ? LongRunning : snapshot.ShortRequest;
        var transformer = new IdentityTransformer(feature, snapshot);
        var error = await forwarder.SendAsync(context, snapshot.Upstream.Server.GetLeftPart(UriPartial.Authority), snapshot.UpstreamClient, config, transformer);
        if (error == ForwarderError.None)
        {
            return;
        }
        var reason = context.GetForwarderErrorFeature()?.Exception?.GetBaseException().Message ?? error.ToString();
        Log.ForwardingError(logger, error.ToString(), context.Request.Method, context.Request.Path.Value ?? "", reason);
        if (context.Response.HasStarted)
        {
            return; // a stream broke mid-way; nothing more can be said to the client
        }
        context.Response.Clear();
        if (error is ForwarderError.RequestTimedOut)
        {
            metrics.RequestsRejected.WithLabels("upstream", "504").Inc();
            await StatusResponses.WriteAsync(context, 504, GatewayTimeout);
        }
        else if (error is ForwarderError.Request or ForwarderError.RequestCreation)
        {
            metrics.RequestsRejected.WithLabels("upstream", "503").Inc();
            await StatusResponses.WriteAsync(context, 503, Unavailable);
        }
        else if (error is ForwarderError.UpgradeRequestCanceled or ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled)
        {
            // The client went away.
        }
        else
        {
            metrics.RequestsRejected.WithLabels("upstream", "502").Inc();
            await StatusResponses.WriteAsync(context, 502, Status.Failure("error talking to the upstream kube-apiserver", "InternalError", 502));
        }
    }

    /// <summary>One header line per value upstream (see <see cref="MultiValueHeaderStream"/>); no line for no values.</summary>
    private static void AddMultiValue(HttpRequestHeaders headers, string name, IEnumerable<string> values)
    {
        var encoded = string.Join(',', values.Select(Uri.EscapeDataString));
        if (encoded.Length > 0)
        {
            headers.TryAddWithoutValidation(MultiValueHeaderStream.SplitPrefix + name, encoded);
        }
    }

    /// <summary>Strips what the client may not send upstream and adds the identity the gateway vouches for.</summary>
    private sealed class IdentityTransformer(GatewayRequestFeature feature, GatewaySnapshot snapshot) : HttpTransformer
    {
        public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
        {
            await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
            var headers = proxyRequest.Headers;
            var nominated = feature.ConnectionNominated;
            foreach (var name in headers.Select(h => h.Key).ToList())
            {
                if (HeaderHygiene.IsProtected(name) || (nominated?.Contains(HeaderHygiene.Normalize(name)) ?? false))
                {
                    headers.Remove(name);
                }
            }
            if (proxyRequest.Content is not null)
            {
                foreach (var name in proxyRequest.Content.Headers.Select(h => h.Key).ToList())
                {
                    if (HeaderHygiene.IsProtected(name) || (nominated?.Contains(HeaderHygiene.Normalize(name)) ?? false))
                    {
                        proxyRequest.Content.Headers.Remove(name);
                    }
                }
            }

            headers.TryAddWithoutValidation("Audit-ID", feature.AuditId);
            if (httpContext.Connection.RemoteIpAddress is { } remote)
            {
                headers.TryAddWithoutValidation("X-Forwarded-For", Portcullis.Network.Cidr.Normalize(remote).ToString());
            }

            var user = feature.EffectiveUser!;
            switch (snapshot.IdentityMode)
            {
                case UpstreamIdentityModes.Impersonate:
                    AddUpstreamToken(headers);
                    AddIdentity(headers, user, "Impersonate-User", "Impersonate-Group", "Impersonate-Uid", "Impersonate-Extra-");
                    break;
                case UpstreamIdentityModes.RequestHeader:
                    AddUpstreamToken(headers);
                    AddIdentity(headers, user, "X-Remote-User", "X-Remote-Group", "X-Remote-Uid", "X-Remote-Extra-");
                    break;
                case UpstreamIdentityModes.Passthrough:
                    if (httpContext.Request.Headers.Authorization.Count == 1)
                    {
                        headers.TryAddWithoutValidation("Authorization", httpContext.Request.Headers.Authorization[0]);
                    }
                    break;
                default:
                    throw new InvalidOperationException("unknown identity mode");
            }
        }

        private void AddUpstreamToken(HttpRequestHeaders headers)
        {
            if (snapshot.Upstream.Token is { Length: > 0 } token)
            {
                headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }
        }

        private static void AddIdentity(HttpRequestHeaders headers, UserInfo user, string userHeader, string groupHeader, string uidHeader, string extraPrefix)
        {
            headers.TryAddWithoutValidation(userHeader, user.Name);
            // kube-apiserver adds system:authenticated itself; sending it would need an extra impersonation right.
            AddMultiValue(headers, groupHeader, user.Groups.Where(g => g != UserInfo.AuthenticatedGroup));
            if (user.Uid.Length > 0)
            {
                headers.TryAddWithoutValidation(uidHeader, user.Uid);
            }
            foreach (var (key, values) in user.Extra)
            {
                // Reserved by Kubernetes for what the apiserver itself derives (credential ids, bound pod); not impersonable.
                if (key.StartsWith("authentication.kubernetes.io/", StringComparison.Ordinal))
                {
                    continue;
                }
                AddMultiValue(headers, extraPrefix + Uri.EscapeDataString(key), values);
            }
        }
    }
}
