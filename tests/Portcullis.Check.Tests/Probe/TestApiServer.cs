using System.Net.Security;
using System.Security.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Portcullis.Check.Tests.Probe;

/// <summary>How the Kubernetes-like test server behaves.</summary>
internal sealed record ServerMode(bool RequireClientCertificate, bool AllowLegacyTls, bool AnonymousAllowed, string? BearerToken = null, bool PlainHttp = false)
{
    /// <summary>Secure servers offer only AEAD ECDHE suites (CIS 1.2.29); insecure ones add a CBC suite.</summary>
    public bool StrongCiphersOnly => !AllowLegacyTls;
}

/// <summary>A <see cref="LoopbackServer"/> (HTTPS unless plain HTTP is asked for) that answers like kube-apiserver for the paths the probe uses.</summary>
internal sealed class TestApiServer : IAsyncDisposable
{
    private readonly LoopbackServer _server;

    private TestApiServer(LoopbackServer server) => _server = server;

    public Uri Endpoint => _server.Url;

    public const string FlowSchemaUid = "5f1c0c6e-0000-4000-8000-000000000001";
    public const string PriorityLevelUid = "5f1c0c6e-0000-4000-8000-000000000002";

    private const string Unauthorized = """{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}""";

    public static async Task<TestApiServer> StartAsync(ProbePki pki, ServerMode mode, CancellationToken cancellationToken) =>
        new(await LoopbackServer.StartAsync(context => Handle(context, mode), mode.PlainHttp ? null : Tls(pki, mode), cancellationToken: cancellationToken));

    private static LoopbackTls Tls(ProbePki pki, ServerMode mode) => new(pki.Server)
    {
        Chain = [pki.Ca],
        ClientCertificates = mode.RequireClientCertificate ? ClientCertificateMode.RequireCertificate : ClientCertificateMode.NoCertificate,
        ClientCa = pki.Ca,
        Configure = https =>
        {
#pragma warning disable SYSLIB0039, CA5397 // the insecure server deliberately allows TLS 1.0/1.1 so the probe can find it
            https.SslProtocols = mode.AllowLegacyTls ? SslProtocols.Tls | SslProtocols.Tls11 | SslProtocols.Tls12 | SslProtocols.Tls13 : SslProtocols.Tls12 | SslProtocols.Tls13;
#pragma warning restore SYSLIB0039, CA5397
            https.OnAuthenticate = (_, ssl) =>
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
            };
        },
    };

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

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
