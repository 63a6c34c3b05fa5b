using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Authorization;
using Portcullis.Configuration;
using Portcullis.Gateway.Pipeline;
using Portcullis.Gateway.Snapshots;
using Portcullis.Gateway.Webhook;

namespace Portcullis.Benchmarks;

/// <summary>
/// <c>portcullis webhook</c> in-process, without the HTTP and TLS around it: a TokenReview body parsed, its token-file
/// token through the authenticator chain (a cache hit after the first), the deny list, the answer written; and a
/// SubjectAccessReview parsed, the deny list and RBAC asked (an allow), the answer written. The snapshot is built by the
/// same pipeline as <c>portcullis webhook --config</c>, from files written to a temp folder.
/// </summary>
[MemoryDiagnoser]
public class WebhookBenchmarks
{
    private string _dir = "";
    private GatewayConfigurationLoad _load = null!;
    private GatewaySnapshot _snapshot = null!;
    private byte[] _tokenReview = [];
    private byte[] _subjectAccessReview = [];

    [GlobalSetup]
    public void Setup()
    {
        _dir = Directory.CreateTempSubdirectory("portcullis-webhook-bench-").FullName;
        WriteFiles(_dir);
        _load = GatewayConfigurationPipeline.Load(Path.Combine(_dir, "webhook.yaml"), mode: ConfigurationMode.Webhook);
        if (!_load.IsValid)
        {
            throw new InvalidOperationException(string.Join("\n", _load.Errors));
        }
        _snapshot = _load.TakeSnapshot();
        _tokenReview = Encoding.UTF8.GetBytes("""{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"token-jane-0123456789abcdef0123456789abcdef","audiences":["https://kubernetes.default.svc"]}}""");
        _subjectAccessReview = Encoding.UTF8.GetBytes("""{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"resourceAttributes":{"namespace":"dev","verb":"get","version":"v1","resource":"pods"},"user":"jane","groups":["developers","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["X509SHA256=0000000000000000000000000000000000000000000000000000000000000000"]},"uid":"u-1"}}""");
        TokenReview().GetAwaiter().GetResult(); // the first review fills the token cache
    }

    /// <summary>Writes a webhook configuration (token file, RBAC granting developers pods, a deny list) to <paramref name="dir"/>.</summary>
    internal static void WriteFiles(string dir)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(2));
        File.WriteAllText(Path.Combine(dir, "server.crt"), certificate.ExportCertificatePem());
        File.WriteAllText(Path.Combine(dir, "server.key"), key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(Path.Combine(dir, "client-ca.crt"), certificate.ExportCertificatePem());
        File.WriteAllText(Path.Combine(dir, "tokens.csv"), "token-jane-0123456789abcdef0123456789abcdef,jane,u-1,\"developers,qa\"\n");
        File.WriteAllText(Path.Combine(dir, "deny.yaml"), "apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries:\n- user: mallory\n  reason: stolen laptop\n");
        File.WriteAllText(Path.Combine(dir, "rbac.yaml"), """
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRole
            metadata: {name: pod-reader}
            rules:
            - apiGroups: [""]
              resources: [pods]
              verbs: [get, list, watch]
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRoleBinding
            metadata: {name: developers}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}
            subjects:
            - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: developers}
            """);
        File.WriteAllText(Path.Combine(dir, "webhook.yaml"), """
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            listeners: [{address: 127.0.0.1:0}]
            tls: {certFile: server.crt, keyFile: server.key, clientCAFile: client-ca.crt}
            authentication: {tokenAuthFile: tokens.csv}
            authorization:
              modes: [RBAC]
              rbac: {manifests: [rbac.yaml]}
              denyListFile: deny.yaml
            admin: {address: 127.0.0.1:0}
            """);
    }

    private GatewayRequestFeature Feature() => new()
    {
        Snapshot = _snapshot,
        AuditId = "bench",
        RequestInfo = RequestInfoParser.NonResource("post", "/authenticate"),
        ReceivedAt = DateTimeOffset.UnixEpoch,
    };

    [Benchmark(Description = "cached TokenReview: parse, chain (cache hit), deny list, answer")]
    public async Task<int> TokenReview()
    {
        if (!WebhookReviews.TryParseTokenReview(_tokenReview, out var review, out var error))
        {
            throw new InvalidOperationException(error);
        }
        var (answer, _) = await WebhookEndpoint.DecideTokenAsync(Feature(), review!, NullLogger.Instance, CancellationToken.None);
        return answer.Length;
    }

    [Benchmark(Description = "SubjectAccessReview: parse, revocation, deny list, RBAC allow, answer")]
    public async Task<int> SubjectAccessReview()
    {
        if (!WebhookReviews.TryParseSubjectAccessReview(_subjectAccessReview, out var review, out var error))
        {
            throw new InvalidOperationException(error);
        }
        var status = await WebhookEndpoint.DecideAccessAsync(Feature(), review!, CancellationToken.None);
        return WebhookReviews.Decision(review!.ApiVersion, status).Length;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _snapshot.Dispose();
        _load.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
