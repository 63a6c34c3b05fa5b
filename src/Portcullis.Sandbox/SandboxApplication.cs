using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Portcullis.Sandbox.Api;
using Portcullis.Sandbox.Diagnostics;
using Portcullis.Sandbox.Discovery;
using Portcullis.Sandbox.Identity;
using Portcullis.Sandbox.Security;
using Portcullis.Sandbox.Storage;
using Portcullis.Sandbox.Streaming;

namespace Portcullis.Sandbox;

/// <summary>The request pipeline: record the request, then route by path to discovery, health, debug or resources.</summary>
internal sealed class SandboxApplication
{
    private readonly RequestLog _requests;
    private readonly ResourceHandler _resources;
    private readonly TimeProvider _time;
    private readonly ApiServerSecurity? _security;

    public SandboxApplication(ObjectStore store, RequestLog requests, SandboxOptions options, CancellationToken stopping, ApiServerSecurity? security = null)
    {
        _requests = requests;
        _security = security;
        _time = options.TimeProvider;
        _resources = new ResourceHandler(store, new LogStreamer(options.LogFollowInterval, options.TimeProvider), options.TimeProvider, stopping);
    }

    public async Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        var path = request.Path.Value ?? "/";
        if (_security is not null)
        {
            // Webhook mode: nothing is answered before the request is authenticated and authorized.
            var admitted = await _security.AdmitAsync(context);
            if (path != "/sandbox/requests")
            {
                Record(context);
            }
            if (!admitted)
            {
                return;
            }
        }
        else if (path != "/sandbox/requests")
        {
            Record(context);
        }
        try
        {
            await DelayAsync(context);
            await RouteAsync(context, path);
        }
        catch (ApiException e) when (!context.Response.HasStarted)
        {
            await KubeResponses.WriteStatusAsync(context, e);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away.
        }
        catch (Exception e) when (!context.Response.HasStarted && e is not OperationCanceledException)
        {
            // A bug in the sandbox: say so in a Status rather than an empty 500.
            await KubeResponses.WriteStatusAsync(context, new ApiException(HttpStatusCode.InternalServerError, "InternalError",
                "sandbox internal error: " + e.GetType().Name + ": " + e.Message));
        }
    }

    /// <summary>The longest <c>sandboxDelayMs</c> honoured.</summary>
    internal const int MaxDelayMilliseconds = 10_000;

    /// <summary>
    /// A slow endpoint for load tests: <c>?sandboxDelayMs=N</c> on any request holds it N ms (at most
    /// <see cref="MaxDelayMilliseconds"/>; not a number or negative is a 400) before it is answered as usual. The client
    /// going away ends the wait.
    /// </summary>
    private async Task DelayAsync(HttpContext context)
    {
        if (!context.Request.Query.TryGetValue("sandboxDelayMs", out var values))
        {
            return;
        }
        if (!int.TryParse(values.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
        {
            throw new ApiException(HttpStatusCode.BadRequest, "BadRequest", $"sandboxDelayMs: \"{values}\" is not a number of milliseconds");
        }
        await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(ms, MaxDelayMilliseconds)), _time, context.RequestAborted);
    }

    private async Task RouteAsync(HttpContext context, string path)
    {
        var method = context.Request.Method;
        switch (path)
        {
            case "/version" or "/version/":
                await KubeResponses.WriteJsonAsync(context, DiscoveryDocuments.Version());
                return;
            case "/healthz" or "/livez" or "/readyz":
                context.Response.ContentType = "text/plain; charset=utf-8";
                await context.Response.WriteAsync("ok", context.RequestAborted);
                return;
            case "/sandbox/requests" when method == "GET":
                await WriteRequestsAsync(context);
                return;
            case "/api" or "/api/":
                await KubeResponses.WriteJsonAsync(context, DiscoveryDocuments.ApiVersions(context.Request.Host.Value ?? "127.0.0.1"));
                return;
            case "/apis" or "/apis/":
                await KubeResponses.WriteJsonAsync(context, DiscoveryDocuments.ApiGroupList());
                return;
        }
        if (method == "POST" && path is "/apis/authentication.k8s.io/v1/selfsubjectreviews" or "/apis/authentication.k8s.io/v1beta1/selfsubjectreviews")
        {
            await WriteSelfSubjectReviewAsync(context, path.Split('/')[3]);
            return;
        }
        var segments = path.Trim('/').Split('/');
        if (segments.Length == 2 && segments[0] == "apis" && DiscoveryDocuments.ApiGroup(segments[1]) is { } group)
        {
            await KubeResponses.WriteJsonAsync(context, group);
            return;
        }
        var apiPath = ApiPath.Parse(segments);
        if (apiPath is null)
        {
            await KubeResponses.WriteNotFoundAsync(context);
            return;
        }
        if (apiPath.IsGroupVersion)
        {
            await KubeResponses.WriteJsonAsync(context, DiscoveryDocuments.ApiResourceList(apiPath.ApiVersion));
            return;
        }
        await _resources.HandleAsync(context, apiPath);
    }

    /// <summary><c>kubectl auth whoami</c>: the user the request was authenticated as (in webhook mode, after impersonation).</summary>
    private static async Task WriteSelfSubjectReviewAsync(HttpContext context, string version)
    {
        var identity = RequestIdentity.From(context);
        var userInfo = new JsonObject { ["username"] = identity.Username };
        if (identity.Uid is { Length: > 0 } uid)
        {
            userInfo["uid"] = uid;
        }
        if (identity.Groups.Count > 0)
        {
            userInfo["groups"] = new JsonArray([.. identity.Groups.Select(g => (JsonNode)JsonValue.Create(g))]);
        }
        if (identity.Extra.Count > 0)
        {
            var extra = new JsonObject();
            foreach (var (key, values) in identity.Extra)
            {
                extra[key] = new JsonArray([.. values.Select(v => (JsonNode)JsonValue.Create(v))]);
            }
            userInfo["extra"] = extra;
        }
        await KubeResponses.WriteJsonAsync(context, new JsonObject
        {
            ["kind"] = "SelfSubjectReview",
            ["apiVersion"] = "authentication.k8s.io/" + version,
            ["metadata"] = new JsonObject { ["creationTimestamp"] = null },
            ["status"] = new JsonObject { ["userInfo"] = userInfo },
        }, HttpStatusCode.Created);
    }

    private void Record(HttpContext context)
    {
        var headers = new Dictionary<string, IReadOnlyList<string>>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, values) in context.Request.Headers)
        {
            headers[name] = [.. values.Where(v => v is not null).Select(v => RequestLog.RecordedValue(name, v!))];
        }
        _requests.Add(new RecordedRequest(
            _time.GetUtcNow(),
            context.Request.Method,
            context.Request.Path.Value + context.Request.QueryString.Value,
            headers,
            RequestIdentity.From(context)));
    }

    private async Task WriteRequestsAsync(HttpContext context)
    {
        var limit = 100;
        if (context.Request.Query.TryGetValue("limit", out var limitText)
            && !int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit))
        {
            throw ApiException.BadRequest($"invalid limit \"{limitText}\"");
        }
        var items = new JsonArray();
        foreach (var recorded in _requests.Recent(limit))
        {
            items.Add(ToJson(recorded));
        }
        await KubeResponses.WriteJsonAsync(context, new JsonObject { ["items"] = items });
    }

    private static JsonObject ToJson(RecordedRequest recorded)
    {
        var headers = new JsonObject();
        foreach (var (name, values) in recorded.Headers)
        {
            headers[name] = new JsonArray([.. values.Select(v => (JsonNode)JsonValue.Create(v))]);
        }
        var identity = recorded.Identity;
        var extra = new JsonObject();
        foreach (var (key, values) in identity.Extra)
        {
            extra[key] = new JsonArray([.. values.Select(v => (JsonNode)JsonValue.Create(v))]);
        }
        return new JsonObject
        {
            ["time"] = recorded.Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture),
            ["method"] = recorded.Method,
            ["path"] = recorded.Path,
            ["headers"] = headers,
            ["identity"] = new JsonObject
            {
                ["username"] = identity.Username,
                ["groups"] = new JsonArray([.. identity.Groups.Select(g => (JsonNode)JsonValue.Create(g))]),
                ["uid"] = identity.Uid,
                ["extra"] = extra,
                ["source"] = identity.Source,
            },
        };
    }
}
