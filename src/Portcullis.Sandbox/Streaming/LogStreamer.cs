using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Portcullis.Sandbox.Storage;

namespace Portcullis.Sandbox.Streaming;

/// <summary>Serves pods/{name}/log: a few start-up lines, then with follow=true one line per interval until the client goes away.</summary>
internal sealed class LogStreamer
{
    private readonly TimeSpan _followInterval;
    private readonly TimeProvider _time;

    public LogStreamer(TimeSpan followInterval, TimeProvider time)
    {
        _followInterval = followInterval;
        _time = time;
    }

    public async Task StreamAsync(HttpContext context, JsonObject pod, CancellationToken stopping)
    {
        var query = context.Request.Query;
        var container = EchoContainer.ResolveContainer(pod, query["container"]);
        var podName = pod["metadata"]?["namespace"] + "/" + pod["metadata"]?["name"];
        var lines = new List<string>
        {
            $"sandbox container {container} of pod {podName} starting",
            "this is not a real container: the Portcullis sandbox makes up these lines",
            "listening on :8080",
            "ready",
        };
        if (query.TryGetValue("tailLines", out var tailText))
        {
            if (!int.TryParse(tailText, NumberStyles.None, CultureInfo.InvariantCulture, out var tail))
            {
                throw ApiException.BadRequest($"invalid tailLines \"{tailText}\"");
            }
            lines = lines.Skip(Math.Max(0, lines.Count - tail)).ToList();
        }
        var timestamps = QueryFlag.IsTrue(query["timestamps"]);
        var follow = QueryFlag.IsTrue(query["follow"]);

        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
        var response = context.Response;
        response.StatusCode = (int)HttpStatusCode.OK;
        response.ContentType = "text/plain";
        try
        {
            foreach (var line in lines)
            {
                await WriteLineAsync(response, line, timestamps, cancel.Token);
            }
            if (!follow)
            {
                return;
            }
            await response.Body.FlushAsync(cancel.Token);
            using var timer = new PeriodicTimer(_followInterval, _time);
            for (var beat = 1; await timer.WaitForNextTickAsync(cancel.Token); beat++)
            {
                await WriteLineAsync(response, $"heartbeat {beat}", timestamps, cancel.Token);
                await response.Body.FlushAsync(cancel.Token);
            }
        }
        catch (OperationCanceledException)
        {
            // The client stopped following or the server is stopping.
        }
    }

    private Task WriteLineAsync(HttpResponse response, string line, bool timestamps, CancellationToken cancel)
    {
        var text = timestamps
            ? _time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture) + " " + line + "\n"
            : line + "\n";
        return response.WriteAsync(text, cancel);
    }
}
