using System.Collections.Concurrent;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Portcullis.Sandbox.Tests;

/// <summary>
/// A TokenReview (<c>/authenticate</c>) and SubjectAccessReview (<c>/authorize</c>) webhook on real Kestrel with mTLS on
/// loopback: only a client certificate from its own CA (the one written into the kubeconfigs it makes) gets in. It
/// records the exact JSON each review arrives with and answers what the test sets.
/// </summary>
public sealed class RecordingWebhooks : IAsyncDisposable
{
    private static readonly Lazy<(X509Certificate2 Ca, X509Certificate2 Server, X509Certificate2 Client)> Pki = new(() =>
    {
        var pki = new TestPki("webhook-test-ca", TimeSpan.FromDays(2));
        return (pki.Certificate, pki.IssueServer("localhost"), pki.IssueClient("kube-apiserver"));
    });

    private readonly LoopbackServer _server;
    private readonly ConcurrentQueue<string> _tokenReviews = new();
    private readonly ConcurrentQueue<string> _accessReviews = new();

    private RecordingWebhooks(LoopbackServer server) => _server = server;

    /// <summary>The status of the TokenReview answer for a token (null: not authenticated).</summary>
    public Func<string, JsonObject?> Authenticate { get; set; } = _ => null;

    /// <summary>The status of the SubjectAccessReview answer for a spec (default: no opinion).</summary>
    public Func<JsonObject, JsonObject> Authorize { get; set; } = _ => new JsonObject { ["allowed"] = false };

    /// <summary>The TokenReview bodies received, as sent.</summary>
    public IReadOnlyList<string> TokenReviews => [.. _tokenReviews];

    /// <summary>The SubjectAccessReview bodies received, as sent.</summary>
    public IReadOnlyList<string> AccessReviews => [.. _accessReviews];

    public static async Task<RecordingWebhooks> StartAsync()
    {
        RecordingWebhooks? self = null;
        var server = await LoopbackServer.StartAsync(context => self!.HandleAsync(context),
            new LoopbackTls(Pki.Value.Server) { ClientCertificates = ClientCertificateMode.RequireCertificate, ClientCa = Pki.Value.Ca });
        self = new RecordingWebhooks(server);
        return self;
    }

    /// <summary>Writes a webhook kubeconfig for <paramref name="path"/> (authenticate or authorize) with the CA and the client certificate; returns its file.</summary>
    public string WriteKubeconfig(string directory, string path) => WriteKubeconfig(directory, path, new Uri(_server.Url, path));

    /// <summary>The same kubeconfig pointing at <paramref name="server"/> (e.g. a closed port).</summary>
    public static string WriteKubeconfig(string directory, string name, Uri server)
    {
        var ca = Path.Combine(directory, "webhook-ca.crt");
        var cert = Path.Combine(directory, "apiserver-client.crt");
        var key = Path.Combine(directory, "apiserver-client.key");
        File.WriteAllText(ca, Pki.Value.Ca.ExportCertificatePem());
        TestPki.WritePem(Pki.Value.Client, cert, key);
        var file = Path.Combine(directory, name + ".kubeconfig");
        File.WriteAllText(file, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: webhook
              cluster:
                server: {server}
                certificate-authority: {ca}
            users:
            - name: kube-apiserver
              user:
                client-certificate: {cert}
                client-key: {key}
            contexts:
            - name: webhook
              context:
                cluster: webhook
                user: kube-apiserver
            current-context: webhook
            """);
        return file;
    }

    private async Task HandleAsync(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body);
        var body = await reader.ReadToEndAsync(context.RequestAborted);
        var review = JsonNode.Parse(body)!.AsObject();
        JsonObject status;
        switch (context.Request.Path.Value)
        {
            case "/authenticate":
                _tokenReviews.Enqueue(body);
                status = Authenticate(review["spec"]!["token"]!.GetValue<string>()) is { } user
                    ? new JsonObject { ["authenticated"] = true, ["user"] = user }
                    : new JsonObject { ["authenticated"] = false };
                break;
            case "/authorize":
                _accessReviews.Enqueue(body);
                status = Authorize(review["spec"]!.AsObject());
                break;
            default:
                context.Response.StatusCode = 404;
                return;
        }
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(new JsonObject
        {
            ["apiVersion"] = review["apiVersion"]!.GetValue<string>(),
            ["kind"] = review["kind"]!.GetValue<string>(),
            ["status"] = status,
        }.ToJsonString(), context.RequestAborted);
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}

/// <summary>The system clock plus an offset the test moves forward, so cache expiry is reached without waiting.</summary>
public sealed class OffsetClock : TimeProvider
{
    private long _offsetTicks;

    public void Advance(TimeSpan by) => Interlocked.Add(ref _offsetTicks, by.Ticks);

    private TimeSpan Offset => TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));

    public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + Offset;

    public override long GetTimestamp() => base.GetTimestamp() + (long)(Offset.TotalSeconds * TimestampFrequency);
}
