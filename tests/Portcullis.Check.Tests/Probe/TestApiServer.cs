using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Portcullis.Check.Tests.Probe;

/// <summary>How the Kubernetes-like test server behaves.</summary>
internal sealed record ServerMode(bool RequireClientCertificate, bool AllowLegacyTls, bool AnonymousAllowed, string? BearerToken = null, bool PlainHttp = false)
{
    /// <summary>Secure servers offer only AEAD ECDHE suites (CIS 1.2.29); insecure ones add a CBC suite.</summary>
    public bool StrongCiphersOnly => !AllowLegacyTls;
}

/// <summary>A real Kestrel HTTPS server on 127.0.0.1:0 that answers like kube-apiserver for the paths the probe uses.</summary>
internal sealed class TestApiServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestApiServer(WebApplication app, Uri endpoint)
    {
        _app = app;
        Endpoint = endpoint;
    }

    public Uri Endpoint { get; }

    public const string FlowSchemaUid = "5f1c0c6e-0000-4000-8000-000000000001";
    public const string PriorityLevelUid = "5f1c0c6e-0000-4000-8000-000000000002";

    private const string Unauthorized = """{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}""";

    public static async Task<TestApiServer> StartAsync(ProbePki pki, ServerMode mode, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            if (!mode.PlainHttp)
            {
                UseTls(listen, pki, mode);
            }
        }));
        var app = builder.Build();
        app.Run(context => Handle(context, mode));
        await app.StartAsync(cancellationToken).WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        var port = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal)).Port;
        return new TestApiServer(app, new Uri($"{(mode.PlainHttp ? "http" : "https")}://127.0.0.1:{port}"));
    }

    private static void UseTls(Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions listen, ProbePki pki, ServerMode mode) =>
        listen.UseHttps(new HttpsConnectionAdapterOptions
        {
            ServerCertificate = pki.Server,
            ServerCertificateChain = [pki.Ca],
#pragma warning disable SYSLIB0039, CA5397 // the insecure server deliberately allows TLS 1.0/1.1 so the probe can find it
            SslProtocols = mode.AllowLegacyTls ? SslProtocols.Tls | SslProtocols.Tls11 | SslProtocols.Tls12 | SslProtocols.Tls13 : SslProtocols.Tls12 | SslProtocols.Tls13,
#pragma warning restore SYSLIB0039, CA5397
            OnAuthenticate = (_, ssl) =>
            {
                if (!mode.StrongCiphersOnly && !OperatingSystem.IsWindows())
                {
                    // .NET's server defaults are already AEAD-only; the insecure server adds a CBC suite on purpose.
                    ssl.CipherSuitesPolicy = new CipherSuitesPolicy(
                    [
                        TlsCipherSuite.TLS_AES_128_GCM_SHA256,
                        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
                    ]);
                }
                else if (!OperatingSystem.IsWindows())
                {
                    ssl.CipherSuitesPolicy = new CipherSuitesPolicy(
                    [
                        TlsCipherSuite.TLS_AES_128_GCM_SHA256,
                        TlsCipherSuite.TLS_AES_256_GCM_SHA384,
                        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                    ]);
                }
            },
            ClientCertificateMode = mode.RequireClientCertificate ? ClientCertificateMode.RequireCertificate : ClientCertificateMode.NoCertificate,
            ClientCertificateValidation = (certificate, _, _) =>
            {
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(pki.Ca);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(certificate);
            },
        });

    private static Task Handle(HttpContext context, ServerMode mode)
    {
        var authorized = mode.BearerToken is not null && context.Request.Headers.Authorization == "Bearer " + mode.BearerToken;
        context.Response.ContentType = "application/json";
        if (!authorized && !mode.AnonymousAllowed)
        {
            context.Response.StatusCode = 401;
            return context.Response.WriteAsync(Unauthorized);
        }
        // Every classified request carries the APF headers, as kube-apiserver's do.
        context.Response.Headers["X-Kubernetes-PF-FlowSchema-UID"] = FlowSchemaUid;
        context.Response.Headers["X-Kubernetes-PF-PriorityLevel-UID"] = PriorityLevelUid;
        var path = context.Request.Path.Value ?? "";
        return path switch
        {
            "/version" or "/version/" => context.Response.WriteAsync("""{"major":"1","minor":"34","gitVersion":"v1.34.0","platform":"linux/amd64"}"""),
            "/healthz" or "/readyz" or "/livez" => WriteText(context, "ok"),
            "/api" => context.Response.WriteAsync("""{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[]}"""),
            "/apis" => context.Response.WriteAsync("""{"kind":"APIGroupList","apiVersion":"v1","groups":[]}"""),
            "/api/v1/namespaces" => context.Response.WriteAsync("""{"kind":"NamespaceList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"default"}}]}"""),
            "/apis/authentication.k8s.io/v1/selfsubjectreviews" => context.Response.WriteAsync(
                """{"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1","metadata":{},"status":{"userInfo":{"username":"alice","groups":["devs","system:authenticated"]}}}"""),
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews" => context.Response.WriteAsync(
                """{"kind":"SelfSubjectRulesReview","apiVersion":"authorization.k8s.io/v1","metadata":{},"spec":{},"status":{"resourceRules":[{"verbs":["get","list","watch"],"apiGroups":[""],"resources":["pods"]},{"verbs":["create"],"apiGroups":["authorization.k8s.io"],"resources":["selfsubjectaccessreviews","selfsubjectrulesreviews"]}],"nonResourceRules":[{"verbs":["get"],"nonResourceURLs":["/version","/healthz"]}],"incomplete":false}}"""),
            // What `check --kubeconfig` reads: the kube-apiserver Pod, APF objects and the kubernetes Service.
            "/api/v1/namespaces/kube-system/pods" when context.Request.Query["labelSelector"] == "component=kube-apiserver" => context.Response.WriteAsync(
                """{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"kube-apiserver-cp1","namespace":"kube-system","labels":{"component":"kube-apiserver"}},"spec":{"containers":[{"name":"kube-apiserver","image":"registry.k8s.io/kube-apiserver:v1.34.0","command":["kube-apiserver","--anonymous-auth=true","--authorization-mode=Node,RBAC","--enable-admission-plugins=NodeRestriction","--enable-priority-and-fairness=true"]}]}}]}"""),
            "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas" => context.Response.WriteAsync(
                """{"kind":"FlowSchemaList","apiVersion":"flowcontrol.apiserver.k8s.io/v1","metadata":{},"items":[{"metadata":{"name":"exempt"},"spec":{"priorityLevelConfiguration":{"name":"exempt"},"matchingPrecedence":1}},{"metadata":{"name":"catch-all"},"spec":{"priorityLevelConfiguration":{"name":"catch-all"},"matchingPrecedence":10000}}]}"""),
            "/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations" => context.Response.WriteAsync(
                """{"kind":"PriorityLevelConfigurationList","apiVersion":"flowcontrol.apiserver.k8s.io/v1","metadata":{},"items":[{"metadata":{"name":"exempt"},"spec":{"type":"Exempt"}},{"metadata":{"name":"catch-all"},"spec":{"type":"Limited"}}]}"""),
            "/api/v1/namespaces/default/services/kubernetes" => context.Response.WriteAsync(
                """{"kind":"Service","apiVersion":"v1","metadata":{"name":"kubernetes","namespace":"default"},"spec":{"type":"LoadBalancer","ports":[{"port":443,"targetPort":6443}]},"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.7"}]}}}"""),
            _ => NotFound(context),
        };
    }

    private static Task WriteText(HttpContext context, string text)
    {
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(text);
    }

    private static Task NotFound(HttpContext context)
    {
        context.Response.StatusCode = 404;
        return context.Response.WriteAsync("""{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","reason":"NotFound","code":404}""");
    }

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _app.StopAsync(cts.Token);
        await _app.DisposeAsync();
    }
}
