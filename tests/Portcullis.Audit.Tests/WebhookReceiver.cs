using System.Collections.Concurrent;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Portcullis.Audit.Tests;

/// <summary>An audit webhook receiver (POST /audit) on a <see cref="LoopbackServer"/> that can fail its first requests.</summary>
internal sealed class WebhookReceiver : IAsyncDisposable
{
    private LoopbackServer _server = null!;
    private int _calls;

    public ConcurrentDictionary<string, int> Accepted { get; } = new();

    public ConcurrentQueue<string> Authorization { get; } = new();

    public ConcurrentQueue<string> ClientSubjects { get; } = new();

    /// <summary>Answer this status to the first <see cref="FailFirst"/> requests.</summary>
    public int FailFirst { get; set; }

    public int FailStatus { get; set; } = 500;

    public int Calls => Volatile.Read(ref _calls);

    /// <summary>The most events seen in one accepted EventList.</summary>
    public int LargestBatch { get; private set; }

    public Uri Url => new(_server.Url, "/audit");

    private WebhookReceiver()
    {
    }

    /// <summary>HTTP, or HTTPS with <paramref name="serverCertificate"/>; a required client certificate is recorded, not verified.</summary>
    public static async Task<WebhookReceiver> StartAsync(X509Certificate2? serverCertificate = null, bool requireClientCertificate = false)
    {
        var receiver = new WebhookReceiver();
        receiver._server = await LoopbackServer.StartAsync(receiver.HandleAsync, serverCertificate is null ? null : new LoopbackTls(serverCertificate)
        {
            ClientCertificates = requireClientCertificate ? ClientCertificateMode.RequireCertificate : ClientCertificateMode.NoCertificate,
        });
        return receiver;
    }

    private async Task HandleAsync(HttpContext context)
    {
        if (context.Request.Path != "/audit" || !HttpMethods.IsPost(context.Request.Method))
        {
            context.Response.StatusCode = 404;
            return;
        }
        if (context.Connection.ClientCertificate is { } cert)
        {
            ClientSubjects.Enqueue(cert.Subject);
        }
        Authorization.Enqueue(context.Request.Headers.Authorization.ToString());
        using var doc = await JsonDocument.ParseAsync(context.Request.Body);
        if (Interlocked.Increment(ref _calls) <= FailFirst)
        {
            context.Response.StatusCode = FailStatus;
            return;
        }
        var root = doc.RootElement;
        if (root.GetProperty("kind").GetString() != "EventList" || root.GetProperty("apiVersion").GetString() != "audit.k8s.io/v1"
            || context.Request.ContentType != "application/json")
        {
            context.Response.StatusCode = 400;
            return;
        }
        lock (Accepted)
        {
            LargestBatch = Math.Max(LargestBatch, root.GetProperty("items").GetArrayLength());
        }
        foreach (var item in root.GetProperty("items").EnumerateArray())
        {
            Accepted.AddOrUpdate(item.GetProperty("auditID").GetString()!, 1, (_, n) => n + 1);
        }
        context.Response.StatusCode = 200;
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
