using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Portcullis.Authorization;
using Portcullis.Configuration;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;
using Portcullis.Gateway.Snapshots;
using Portcullis.Gateway.Webhook;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// <c>portcullis_webhook_review_duration_seconds</c> is the time the API server waits on Portcullis: from the request
/// entering the pipeline (the request-start stage's monotonic timestamp), through every stage before the endpoint and
/// the body read, to the answer written; not only the endpoint's own share.
/// </summary>
public sealed class WebhookReviewDurationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-webhook-duration-").FullName;
    private readonly TestPki _pki = new("webhook-duration-ca");

    [Fact]
    public async Task The_review_duration_counts_from_the_request_entering_the_pipeline()
    {
        TestPki.WritePem(_pki.IssueServer(), Path.Combine(_dir, "server.crt"), Path.Combine(_dir, "server.key"));
        File.WriteAllText(Path.Combine(_dir, "client-ca.crt"), _pki.CertificatePem);
        File.WriteAllText(Path.Combine(_dir, "tokens.csv"), "token-jane,jane,u-1,developers\n");
        File.WriteAllText(Path.Combine(_dir, "webhook.yaml"), """
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            listeners: [{address: 127.0.0.1:0}]
            tls: {certFile: server.crt, keyFile: server.key, clientCAFile: client-ca.crt}
            authentication: {tokenAuthFile: tokens.csv}
            """);
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-05T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var load = GatewayConfigurationPipeline.Load(Path.Combine(_dir, "webhook.yaml"), time, mode: ConfigurationMode.Webhook);
        Assert.True(load.IsValid, string.Join("\n", load.Errors));
        using var metrics = new GatewayMetrics();
        // A valid TokenReview is answered without a refusal, so the refusal path (and its bans) is not needed here.
        var endpoint = new WebhookEndpoint(metrics, new Refusals(metrics, null!), NullLogger<WebhookEndpoint>.Instance, time);

        var context = new DefaultHttpContext();
        var body = Encoding.UTF8.GetBytes("""{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"token-jane"}}""");
        context.Request.Method = "POST";
        context.Request.Path = WebhookEndpoint.AuthenticatePath;
        context.Request.ContentLength = body.Length;
        context.Request.Body = new MemoryStream(body);
        var answer = new MemoryStream();
        context.Response.Body = answer;
        context.Features.Set(new GatewayRequestFeature
        {
            Snapshot = load.TakeSnapshot(),
            AuditId = "duration-test",
            RequestInfo = RequestInfoParser.NonResource("post", WebhookEndpoint.AuthenticatePath),
            ReceivedAt = time.GetUtcNow(),
            ReceivedTimestamp = time.GetTimestamp(),
        });
        time.Advance(TimeSpan.FromMilliseconds(3)); // the stages before the endpoint (TLS identity, audit, ...) took 3 ms

        await endpoint.InvokeAsync(context);

        Assert.Equal(200, context.Response.StatusCode);
        Assert.Contains("\"authenticated\":true", Encoding.UTF8.GetString(answer.ToArray()), StringComparison.Ordinal);
        using var exported = new MemoryStream();
        await metrics.Registry.CollectAndExportAsTextAsync(exported);
        var text = Encoding.UTF8.GetString(exported.ToArray());
        Assert.Contains("portcullis_webhook_review_duration_seconds_bucket{review=\"TokenReview\",le=\"0.0025\"} 0", text, StringComparison.Ordinal);
        Assert.Contains("portcullis_webhook_review_duration_seconds_bucket{review=\"TokenReview\",le=\"0.005\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("portcullis_webhook_review_duration_seconds_count{review=\"TokenReview\"} 1", text, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        _pki.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
