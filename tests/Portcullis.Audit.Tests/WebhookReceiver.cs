using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Portcullis.Audit.Tests;

/// <summary>An audit webhook receiver on real Kestrel (127.0.0.1:0) that can fail its first requests.</summary>
internal sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
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

    public Uri Url { get; private set; } = null!;

    private WebhookReceiver(WebApplication app) => _app = app;

    public static async Task<WebhookReceiver> StartAsync(X509Certificate2? serverCertificate = null, bool requireClientCertificate = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0, listen =>
        {
            if (serverCertificate is not null)
            {
                listen.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = serverCertificate,
                    ClientCertificateMode = requireClientCertificate ? ClientCertificateMode.RequireCertificate : ClientCertificateMode.NoCertificate,
                    ClientCertificateValidation = (_, _, _) => true,
                });
            }
        }));
        var app = builder.Build();
        var receiver = new WebhookReceiver(app);
        app.MapPost("/audit", receiver.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        receiver.Url = new Uri(new Uri(address), "/audit");
        return receiver;
    }

    private async Task HandleAsync(HttpContext context)
    {
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

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
