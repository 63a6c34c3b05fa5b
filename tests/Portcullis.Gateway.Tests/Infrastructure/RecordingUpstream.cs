using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Portcullis.Gateway.Tests.Infrastructure;

/// <summary>One request as the upstream saw it.</summary>
public sealed record RecordedRequest(string Method, string PathAndQuery, IReadOnlyDictionary<string, string[]> Headers, string? ClientCertificateSubject)
{
    /// <summary>The request body as it arrived (empty for none; never read for upgrades).</summary>
    public byte[] Body { get; init; } = [];

    public string[] Values(string name) =>
        Headers.TryGetValue(name, out var v) ? v : [];

    /// <summary>Header names compared case-insensitively and with '_' as '-'.</summary>
    public IEnumerable<string> NamesLike(string prefix) =>
        Headers.Keys.Where(k => k.Replace('_', '-').StartsWith(prefix, StringComparison.OrdinalIgnoreCase));
}

/// <summary>
/// A stand-in kube-apiserver on 127.0.0.1:0 with real TLS: requires a client certificate of its CA, records every request,
/// and serves a few behaviours by path (JSON, watch stream, redirect, refused upgrade, WebSocket echo, slow answer).
/// </summary>
public sealed class RecordingUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<RecordedRequest> _requests = new();

    /// <summary>Requests the gateway forwarded (the gateway's own readiness probes of /healthz left out).</summary>
    public IReadOnlyList<RecordedRequest> Requests => [.. _requests.Where(r => !(r.PathAndQuery == "/healthz" && r.Values("Impersonate-User").Length == 0))];

    /// <summary>Lets a test release the second watch event.</summary>
    public TaskCompletionSource SecondWatchEvent { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completed when a slow request has started (for graceful-shutdown tests).</summary>
    public TaskCompletionSource SlowStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource ReleaseSlow { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Uri Uri { get; private set; } = null!;

    private RecordingUpstream(WebApplication app) => _app = app;

    public static async Task<RecordingUpstream> StartAsync(X509Certificate2 serverCertificate, X509Certificate2 clientCA)
    {
        // The gateway's host options: no watch of the working directory, which ConfigurationWatcherTests checks for
        // the whole test process.
        var builder = WebApplication.CreateSlimBuilder(Portcullis.Gateway.Hosting.GatewayHost.HostOptionsWithoutFiles());
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, lo =>
        {
            lo.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1AndHttp2;
            lo.UseHttps(new HttpsConnectionAdapterOptions
            {
                ServerCertificate = serverCertificate,
                ClientCertificateMode = ClientCertificateMode.AllowCertificate, // as kube-apiserver: asked for, not required
                ClientCertificateValidation = (cert, _, _) =>
                {
                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.Add(clientCA);
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    return chain.Build(cert);
                },
            });
        }));
        var app = builder.Build();
        var upstream = new RecordingUpstream(app);
        app.UseWebSockets();
        app.Use(async (context, next) =>
        {
            byte[] body = [];
            if (context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0)
            {
                context.Request.EnableBuffering();
                using var copy = new MemoryStream();
                await context.Request.Body.CopyToAsync(copy, context.RequestAborted);
                context.Request.Body.Position = 0;
                body = copy.ToArray();
            }
            upstream._requests.Enqueue(new RecordedRequest(
                context.Request.Method,
                context.Request.Path + context.Request.QueryString,
                context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.Select(v => v ?? "").ToArray(), StringComparer.OrdinalIgnoreCase),
                context.Connection.ClientCertificate?.Subject) { Body = body });
            await next(context);
        });
        app.Run(upstream.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        upstream.Uri = new Uri(address);
        return upstream;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "";
        if (context.WebSockets.IsWebSocketRequest)
        {
            using var socket = await context.WebSockets.AcceptWebSocketAsync("v5.channel.k8s.io");
            var buffer = new byte[1024];
            var received = await socket.ReceiveAsync(buffer, context.RequestAborted);
            await socket.SendAsync(buffer.AsMemory(0, received.Count), System.Net.WebSockets.WebSocketMessageType.Binary, true, context.RequestAborted);
            await socket.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "done", context.RequestAborted);
            return;
        }
        if (context.Request.Headers.Upgrade.Count > 0)
        {
            // An upgrade the upstream refuses: a plain 403, never 101.
            context.Response.StatusCode = 403;
            await context.Response.WriteAsync("{\"kind\":\"Status\",\"code\":403}");
            return;
        }
        if (path.EndsWith("/selfsubjectaccessreviews", StringComparison.Ordinal) && HttpMethods.IsPost(context.Request.Method))
        {
            // kube-apiserver's answer: the review as sent, with a status; the body proves what was forwarded.
            using var reader = new StreamReader(context.Request.Body);
            var text = await reader.ReadToEndAsync(context.RequestAborted);
            var review = context.Request.ContentType?.StartsWith("application/json", StringComparison.Ordinal) == true
                ? System.Text.Json.Nodes.JsonNode.Parse(text)!.AsObject()
                : new System.Text.Json.Nodes.JsonObject { ["kind"] = "SelfSubjectAccessReview", ["apiVersion"] = "authorization.k8s.io/v1" }; // protobuf: not echoed
            review["status"] = new System.Text.Json.Nodes.JsonObject { ["allowed"] = true, ["reason"] = "allowed by the upstream" };
            context.Response.StatusCode = 201;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(review.ToJsonString());
            return;
        }
        if (path == "/redirect")
        {
            context.Response.StatusCode = 302;
            context.Response.Headers.Location = "https://198.51.100.7/elsewhere";
            return;
        }
        if (path == "/slow")
        {
            SlowStarted.TrySetResult();
            await ReleaseSlow.Task.WaitAsync(context.RequestAborted);
            await context.Response.WriteAsync("slow done");
            return;
        }
        if (context.Request.Query["watch"] == "true")
        {
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync("{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"one\"}}}\n");
            await context.Response.Body.FlushAsync();
            await SecondWatchEvent.Task.WaitAsync(context.RequestAborted);
            await context.Response.WriteAsync("{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"two\"}}}\n");
            return;
        }
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync("{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"items\":[]}");
    }

    public async ValueTask DisposeAsync()
    {
        ReleaseSlow.TrySetResult();
        SecondWatchEvent.TrySetResult();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
