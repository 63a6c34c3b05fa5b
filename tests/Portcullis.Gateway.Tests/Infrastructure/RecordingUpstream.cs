using System.Collections.Concurrent;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;

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
/// A stand-in kube-apiserver on a <see cref="LoopbackServer"/> with real TLS: asks for a client certificate of its CA, records every request,
/// and serves a few behaviours by path (JSON, watch stream, redirect, refused upgrade, WebSocket echo, slow answer).
/// </summary>
public sealed class RecordingUpstream : IAsyncDisposable
{
    private readonly ConcurrentQueue<RecordedRequest> _requests = new();
    private LoopbackServer _server = null!;

    /// <summary>Requests the gateway forwarded (the gateway's own readiness probes of /healthz left out).</summary>
    public IReadOnlyList<RecordedRequest> Requests => [.. _requests.Where(r => !(r.PathAndQuery == "/healthz" && r.Values("Impersonate-User").Length == 0))];

    /// <summary>Lets a test release the second watch event.</summary>
    public TaskCompletionSource SecondWatchEvent { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completed when a slow request has started (for graceful-shutdown tests).</summary>
    public TaskCompletionSource SlowStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource ReleaseSlow { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary><c>/hold</c>: each request waits for one release of this semaphore (the test frees them one by one).</summary>
    public SemaphoreSlim Hold { get; } = new(0);
    private int _holding;
    /// <summary>How many <c>/hold</c> requests are waiting at the upstream now.</summary>
    public int Holding => Volatile.Read(ref _holding);

    public Uri Uri => _server.Url;

    private RecordingUpstream()
    {
    }

    public static async Task<RecordingUpstream> StartAsync(X509Certificate2 serverCertificate, X509Certificate2 clientCA)
    {
        var upstream = new RecordingUpstream();
        upstream._server = await LoopbackServer.StartAsync(upstream.HandleAsync,
            // As kube-apiserver: a client certificate is asked for, not required.
            new LoopbackTls(serverCertificate) { ClientCertificates = ClientCertificateMode.AllowCertificate, ClientCa = clientCA },
            app =>
            {
                app.UseWebSockets();
                app.Use(upstream.RecordAsync);
            });
        return upstream;
    }

    private async Task RecordAsync(HttpContext context, RequestDelegate next)
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
        _requests.Enqueue(new RecordedRequest(
            context.Request.Method,
            context.Request.Path + context.Request.QueryString,
            context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.Select(v => v ?? "").ToArray(), StringComparer.OrdinalIgnoreCase),
            context.Connection.ClientCertificate?.Subject) { Body = body });
        await next(context);
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
        if (path == "/hold")
        {
            Interlocked.Increment(ref _holding);
            try
            {
                await Hold.WaitAsync(context.RequestAborted);
            }
            finally
            {
                Interlocked.Decrement(ref _holding);
            }
            await context.Response.WriteAsync("held");
            return;
        }
        if (path == "/slow")
        {
            SlowStarted.TrySetResult();
            await ReleaseSlow.Task.WaitAsync(context.RequestAborted);
            await context.Response.WriteAsync("slow done");
            return;
        }
        if (context.Request.Query["watch"] == "true" && context.Request.Query["resourceVersion"] == "empty")
        {
            // A watch with nothing to say yet: kube-apiserver sends (flushes) its headers at once.
            context.Response.ContentType = "application/json";
            await context.Response.Body.FlushAsync();
            await SecondWatchEvent.Task.WaitAsync(context.RequestAborted);
            await context.Response.WriteAsync("{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"two\"}}}\n");
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
        await _server.DisposeAsync();
    }
}
